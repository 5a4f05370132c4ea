"""Language for every supported task, written by hand (never generated at run time), in TraceGen's three
styles.

* ``short``: a short imperative, at most 10 words ("open the drawer");
* ``steps``: an explicit step-by-step description, at most 20 words;
* ``casual``: a casual request, at most 15 words.

Every task has two short instructions, one step-by-step and one casual request. Episodes store all of them
(:func:`instructions`), short ones first.
"""

from __future__ import annotations

from typing import NamedTuple

MAX_WORDS = {"short": 10, "steps": 20, "casual": 15}


class TaskText(NamedTuple):
    short: tuple[str, str]
    steps: str
    casual: str

    def all(self) -> list[str]:
        return [*self.short, self.steps, self.casual]


def _t(short1: str, short2: str, steps: str, casual: str) -> TaskText:
    return TaskText((short1, short2), steps, casual)


METAWORLD: dict[str, TaskText] = {
    "assembly": _t(
        "put the ring on the peg",
        "assemble the nut onto the peg",
        "grab the ring by its handle, lift it, move it over the peg and lower it down",
        "could you slide that ring onto the peg for me?",
    ),
    "basketball": _t(
        "dunk the ball into the hoop",
        "put the basketball in the basket",
        "grasp the ball, lift it up, carry it above the hoop and drop it in",
        "shoot some hoops: get the ball in the basket",
    ),
    "bin-picking": _t(
        "move the cube to the other bin",
        "transfer the block between the bins",
        "pick the cube out of the first bin, carry it over and drop it in the other bin",
        "can you grab that block and put it in the other bin?",
    ),
    "box-close": _t(
        "close the box with its lid",
        "put the lid on the box",
        "grip the lid by its handle, lift it, move it over the box and set it down",
        "would you pop the lid back on that box?",
    ),
    "button-press": _t(
        "press the button",
        "push the button in from the front",
        "move the gripper in front of the button, then push forward until it clicks",
        "hey, can you hit that button?",
    ),
    "button-press-topdown": _t(
        "press the button from above",
        "push the button down",
        "move the gripper above the button, then push straight down until it is pressed",
        "just press that button down from the top, please",
    ),
    "button-press-topdown-wall": _t(
        "press the button down behind the wall",
        "push the button from above",
        "reach over the wall, hold above the button, then push straight down on it",
        "could you press the button past that little wall?",
    ),
    "button-press-wall": _t(
        "press the button behind the wall",
        "push the button past the wall",
        "move around the wall to the front of the button, then push it in",
        "mind the wall and press that button for me",
    ),
    "coffee-button": _t(
        "press the coffee machine button",
        "start the coffee machine",
        "move in front of the coffee machine and push its button in",
        "make me a coffee by hitting the machine's button",
    ),
    "coffee-pull": _t(
        "pull the mug out of the coffee machine",
        "take the cup away from the machine",
        "grasp the mug under the coffee machine and slide it back towards you",
        "can you pull my mug out from under the coffee maker?",
    ),
    "coffee-push": _t(
        "push the mug under the coffee machine",
        "slide the cup into the machine",
        "grasp the mug, then slide it forward until it sits under the coffee spout",
        "could you put my cup under the coffee machine?",
    ),
    "dial-turn": _t(
        "turn the dial",
        "rotate the knob",
        "put the gripper against the dial's edge and push it around to rotate it",
        "give that dial a turn, would you?",
    ),
    "disassemble": _t(
        "take the ring off the peg",
        "pull the nut off the peg",
        "grab the ring by its handle and lift it straight up until it leaves the peg",
        "can you get that ring off the peg?",
    ),
    "door-close": _t(
        "close the door",
        "shut the door",
        "move the gripper to the open door and push it around until it is shut",
        "mind closing that door for me?",
    ),
    "door-lock": _t(
        "lock the door",
        "turn the lock down",
        "move the gripper above the lock knob and push it down to lock the door",
        "could you lock the door, please?",
    ),
    "door-open": _t(
        "open the door",
        "pull the door open",
        "hook the gripper around the door handle and pull it along the swing until open",
        "hey, can you get the door open?",
    ),
    "door-unlock": _t(
        "unlock the door",
        "turn the lock to unlock",
        "move the gripper to the lock knob and push it sideways to unlock the door",
        "please unlock that door for me",
    ),
    "drawer-close": _t(
        "close the drawer",
        "push the drawer shut",
        "move the gripper in front of the open drawer and push it back in",
        "can you shut that drawer?",
    ),
    "drawer-open": _t(
        "open the drawer",
        "pull the drawer out",
        "move the gripper to the drawer handle, grip it and pull the drawer towards you",
        "could you open the drawer for me?",
    ),
    "faucet-close": _t(
        "turn the faucet off",
        "close the faucet",
        "put the gripper beside the faucet handle and push it around to the closed side",
        "can you turn off the tap?",
    ),
    "faucet-open": _t(
        "turn the faucet on",
        "open the faucet",
        "put the gripper beside the faucet handle and push it around to the open side",
        "could you turn on the tap for me?",
    ),
    "hammer": _t(
        "hammer the nail in",
        "hit the nail with the hammer",
        "pick up the hammer by its handle, swing it to the nail and knock the nail in",
        "grab the hammer and bang that nail in",
    ),
    "hand-insert": _t(
        "put the block in the hole",
        "insert the object into the hole",
        "grasp the block, carry it above the hole in the table and lower it in",
        "could you drop that block into the hole?",
    ),
    "handle-press": _t(
        "press the handle down",
        "push the handle down",
        "move the gripper above the raised handle and push it all the way down",
        "can you push that handle down?",
    ),
    "handle-press-side": _t(
        "press the handle down from the side",
        "push the side handle down",
        "approach the handle from the side, move above it and push it down",
        "mind pressing down that handle on the side?",
    ),
    "handle-pull": _t(
        "pull the handle up",
        "lift the handle",
        "put the gripper under the handle and lift it up as far as it goes",
        "could you pull that handle up?",
    ),
    "handle-pull-side": _t(
        "pull the side handle up",
        "lift the handle from the side",
        "approach the handle from the side, get under it and lift it up",
        "can you lift that handle on the side?",
    ),
    "lever-pull": _t(
        "pull the lever up",
        "raise the lever",
        "put the gripper under the end of the lever and lift it up along its arc",
        "could you flip that lever up?",
    ),
    "peg-insert-side": _t(
        "insert the peg into the hole",
        "push the peg into the side hole",
        "grasp the peg, line it up with the hole in the box and slide it in",
        "can you plug the peg into that hole?",
    ),
    "peg-unplug-side": _t(
        "unplug the peg",
        "pull the peg out of the hole",
        "grasp the end of the peg sticking out and pull it sideways out of the hole",
        "could you pull that peg out?",
    ),
    "pick-out-of-hole": _t(
        "pick the puck out of the hole",
        "lift the puck from the hole",
        "reach into the hole, grasp the puck, lift it out and move it to the goal",
        "can you fish the puck out of that hole?",
    ),
    "pick-place": _t(
        "pick up the puck and place it at the goal",
        "move the puck to the target",
        "grasp the puck, lift it, carry it to the goal spot and hold it there",
        "could you pick that puck up and put it over there?",
    ),
    "pick-place-wall": _t(
        "move the puck over the wall",
        "pick the puck and place it past the wall",
        "grasp the puck, lift it above the wall, carry it across and place it at the goal",
        "can you lift the puck over that wall?",
    ),
    "plate-slide": _t(
        "slide the plate into the goal",
        "push the plate forward into the net",
        "put the gripper behind the plate and slide it forward along the table into the goal",
        "could you slide that plate into the net?",
    ),
    "plate-slide-back": _t(
        "slide the plate back out",
        "pull the plate back",
        "put the gripper on the plate in the goal and drag it back towards you",
        "can you pull the plate back out of the net?",
    ),
    "plate-slide-back-side": _t(
        "slide the plate back out sideways",
        "pull the plate out to the side",
        "put the gripper on the plate and drag it sideways out of the goal",
        "mind pulling that plate back out to the side?",
    ),
    "plate-slide-side": _t(
        "slide the plate sideways into the goal",
        "push the plate in from the side",
        "put the gripper beside the plate and push it sideways across the table into the goal",
        "could you shove the plate sideways into the net?",
    ),
    "push": _t(
        "push the puck to the goal",
        "slide the puck to the target",
        "put the gripper behind the puck and push it across the table to the goal",
        "can you nudge that puck over to the goal?",
    ),
    "push-back": _t(
        "push the puck back",
        "slide the puck backwards to the goal",
        "put the gripper in front of the puck and push it back to the goal spot",
        "could you push the puck back towards you?",
    ),
    "push-wall": _t(
        "push the puck around the wall",
        "slide the puck past the wall",
        "put the gripper behind the puck and push it around the wall to the goal",
        "can you get the puck around that wall to the goal?",
    ),
    "reach": _t(
        "reach the goal",
        "move the gripper to the target",
        "move the gripper through the air until its fingertips are at the goal point",
        "just reach over to that spot, please",
    ),
    "reach-wall": _t(
        "reach the goal over the wall",
        "move the gripper past the wall",
        "raise the gripper above the wall, move across it and go down to the goal",
        "could you reach over the wall to that spot?",
    ),
    "shelf-place": _t(
        "put the block on the shelf",
        "place the cube on the shelf",
        "grasp the block, lift it to shelf height, move it onto the shelf and release",
        "can you pop that block up on the shelf?",
    ),
    "soccer": _t(
        "kick the ball into the goal",
        "push the soccer ball into the net",
        "put the gripper behind the ball and push it across the field into the goal",
        "score a goal with that ball, would you?",
    ),
    "stick-pull": _t(
        "pull the container with the stick",
        "use the stick to drag the container",
        "grasp the stick, hook it into the container's handle and pull the container back",
        "can you grab the stick and pull that container over?",
    ),
    "stick-push": _t(
        "push the container with the stick",
        "use the stick to push the container",
        "grasp the stick, put its end against the container and push it to the goal",
        "could you use the stick to push that container away?",
    ),
    "sweep": _t(
        "sweep the puck off the table",
        "push the puck off the edge",
        "grasp the puck and drag it sideways until it drops off the table edge",
        "can you sweep that puck off the table?",
    ),
    "sweep-into": _t(
        "sweep the puck into the hole",
        "push the puck into the hole",
        "grasp the puck and drag it across the table until it falls in the hole",
        "could you sweep the puck into that hole?",
    ),
    "window-close": _t(
        "close the window",
        "slide the window shut",
        "put the gripper against the window handle and slide the window closed",
        "can you shut the window?",
    ),
    "window-open": _t(
        "open the window",
        "slide the window open",
        "put the gripper against the window handle and slide the window open",
        "could you open the window for some air?",
    ),
}

ROBOSUITE: dict[str, TaskText] = {
    "Lift": _t(
        "lift the red cube",
        "pick up the cube",
        "move above the red cube, lower the gripper, close it and lift the cube up",
        "can you pick that little red cube up?",
    ),
    "Stack": _t(
        "stack the red cube on the green cube",
        "put the red block on the green one",
        "grasp the red cube, lift it, move it above the green cube and set it down",
        "could you stack the red block onto the green block?",
    ),
    "Door": _t(
        "open the door",
        "pull the door open",
        "grasp the door handle, turn it down to unlatch, then pull the door open",
        "hey, can you open that door?",
    ),
    "PickPlaceCan": _t(
        "put the can in its bin",
        "move the soda can to the right bin",
        "grasp the can, lift it out of the bin, carry it over and drop it in its compartment",
        "could you sort the can into its spot in the other bin?",
    ),
    "NutAssemblySquare": _t(
        "put the square nut on the square peg",
        "fit the nut onto the peg",
        "grab the nut by its handle, lift it, turn it square over the peg and lower it",
        "can you slide that square nut onto its peg?",
    ),
}


def instructions(suite: str, task: str) -> list[str]:
    """All instructions of a task: two short, one step-by-step, one casual."""
    table = METAWORLD if suite == "metaworld" else ROBOSUITE
    if task not in table:
        raise ValueError(f"no instructions for {suite} task {task!r}; known: {', '.join(table)}")
    return table[task].all()
