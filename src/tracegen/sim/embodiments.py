"""Embodiment variants in the same Meta-World scenes: the sim analogue of human -> robot transfer.

Every variant runs the *same* mocap-driven motion as the stock Sawyer: the physics model is untouched (same
bodies, joints, masses, collision geoms; edits only move geoms between visibility groups or add massless,
non-colliding visual geoms), so the same seed and the same actions give the same trajectory. Only the look
changes:

* ``sawyer``: the stock Sawyer arm with its two-finger gripper.
* ``floating_gripper``: the arm links are invisible; the gripper floats in the scene (as in many "gripper
  only" datasets).
* ``hand``: arm and gripper are invisible and a skin-coloured hand takes the gripper's place: a palm on the
  hand body, four fingers on the left claw and a thumb on the right claw (so it visibly closes when the
  gripper closes), a wrist and a blue sleeve going up.

Invisible geoms are moved to :data:`HIDDEN_GROUP`, which the renderer never draws, so they are absent from
RGB, depth and segmentation alike (and ground-truth points never attach to them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

# Geom groups. Meta-World counts only groups 4-5 towards body inertia (compiler inertiagrouprange), so
# hiding a geom in group 3 or adding one in group 2 leaves every mass and inertia unchanged.
HIDDEN_GROUP = 3  # never shown by tracegen's Meta-World renderer (it shows groups 0-2, as MuJoCo's default)
VISUAL_GROUP = 2

SKIN = (0.89, 0.69, 0.57, 1.0)
SLEEVE = (0.16, 0.32, 0.75, 1.0)

# Meta-World Sawyer bodies: the arm is the 'base' subtree minus the gripper subtree starting at 'right_hand'.
ARM_ROOT, GRIPPER_ROOT = "base", "right_hand"
GRIPPER_BODIES = ("right_hand", "hand", "rightclaw", "rightpad", "leftclaw", "leftpad")


@dataclass(frozen=True)
class Embodiment:
    """A named visual variant applied to the model spec before it is compiled."""

    name: str
    description: str
    edit: Callable[[mujoco.MjSpec], None]


def _subtree(body: mujoco.MjsBody) -> list[mujoco.MjsBody]:
    out, stack = [], [body]
    while stack:
        b = stack.pop()
        out.append(b)
        stack.extend(b.bodies)
    return out


def _hide(bodies: list[mujoco.MjsBody]) -> None:
    """Move the bodies' visible geoms (groups 0-2) to the hidden group; collision-only geoms stay."""
    for body in bodies:
        for geom in body.geoms:
            if geom.group < HIDDEN_GROUP:
                geom.group = HIDDEN_GROUP


def _arm_bodies(spec: mujoco.MjSpec) -> list[mujoco.MjsBody]:
    keep = {b.name for b in _subtree(spec.body(GRIPPER_ROOT))}
    return [b for b in _subtree(spec.body(ARM_ROOT)) if b.name not in keep]


def _visual(body: mujoco.MjsBody, rgba: tuple, **kwargs) -> None:
    """Add a massless, non-colliding visual geom."""
    body.add_geom(contype=0, conaffinity=0, group=VISUAL_GROUP, density=0.0, rgba=rgba, **kwargs)


def _capsule(body: mujoco.MjsBody, start: tuple, end: tuple, radius: float, rgba: tuple = SKIN) -> None:
    _visual(body, rgba, type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[*start, *end], size=[radius, 0, 0])


def _edit_sawyer(spec: mujoco.MjSpec) -> None:
    del spec  # the stock robot


def _edit_floating_gripper(spec: mujoco.MjSpec) -> None:
    _hide(_arm_bodies(spec))


def _edit_hand(spec: mujoco.MjSpec) -> None:
    """Hand body frame: +x points down (towards the fingertips), +y from right to left claw, +z sideways."""
    _hide(_arm_bodies(spec))
    _hide([spec.body(name) for name in GRIPPER_BODIES])
    hand = spec.body("hand")
    palm = dict(type=mujoco.mjtGeom.mjGEOM_BOX, pos=[-0.055, 0, 0], size=[0.035, 0.058, 0.022])
    _visual(hand, SKIN, **palm)
    _capsule(hand, (-0.09, 0, 0), (-0.16, 0, 0), 0.032)  # wrist
    _capsule(hand, (-0.17, 0, 0), (-0.40, 0, 0), 0.042, SLEEVE)  # sleeve
    fingers = spec.body("leftclaw")
    for z, length in zip((-0.027, -0.009, 0.009, 0.027), (0.040, 0.050, 0.052, 0.044), strict=True):
        _capsule(fingers, (-0.03, 0.006, z), (-0.03 + length + 0.02, 0.006, z), 0.0085)
    _capsule(spec.body("rightclaw"), (-0.04, -0.008, 0.0), (0.03, -0.008, 0.0), 0.011)  # thumb


EMBODIMENTS: dict[str, Embodiment] = {
    e.name: e
    for e in (
        Embodiment("sawyer", "stock Sawyer arm and two-finger gripper", _edit_sawyer),
        Embodiment("floating_gripper", "Sawyer gripper only; arm links invisible", _edit_floating_gripper),
        Embodiment("hand", "skin-coloured hand (palm, 4 fingers, thumb), sleeve; robot invisible", _edit_hand),
    )
}


def get_embodiment(name: str) -> Embodiment:
    if name not in EMBODIMENTS:
        raise ValueError(f"unknown embodiment {name!r}; valid embodiments: {', '.join(EMBODIMENTS)}")
    return EMBODIMENTS[name]


def compile_model(xml_path: str, embodiment: str) -> mujoco.MjModel:
    """Compile a Meta-World scene with an embodiment's edits applied."""
    spec = mujoco.MjSpec.from_file(xml_path)
    get_embodiment(embodiment).edit(spec)
    return spec.compile()


def effector_geoms(model: mujoco.MjModel) -> np.ndarray:
    """``(G,)`` ids of the visible geoms of the robot / effector (everything under the arm root)."""
    root = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, ARM_ROOT)
    body_in_robot = np.zeros(model.nbody, bool)
    for b in range(model.nbody):  # parents precede children in MuJoCo's body order
        body_in_robot[b] = b == root or (b > 0 and body_in_robot[model.body_parentid[b]])
    visible = model.geom_group != HIDDEN_GROUP
    return np.flatnonzero(body_in_robot[model.geom_bodyid] & visible)
