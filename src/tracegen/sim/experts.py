"""Scripted waypoint experts for robosuite tasks, for any of the supported arms.

An expert is a generator of actions, written as a short script of waypoints (:class:`Waypoints`): move the
grasp point (midpoint of the finger pads) to a pose with the gripper open or closed, open or close the
gripper, and so on. Actions are operational-space deltas (see :mod:`tracegen.sim.robosuite_env`): a
proportional step towards the target position and orientation. Nothing here depends on the arm beyond the
finger pads' positions, which every robosuite gripper names.

Meta-World uses its own scripted policies (one per task; :mod:`tracegen.sim.metaworld_env`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tracegen.sim.robosuite_env import RobosuiteEnv

OPEN, CLOSE = -1.0, 1.0
POS_SCALE, ROT_SCALE = 0.05, 0.5  # metres / radians per unit action (robosuite OSC defaults)
Point = np.ndarray | Callable[[], np.ndarray]  # a fixed world point, or one that follows an object
Actions = Iterator[np.ndarray]


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` radians about unit ``axis`` (Rodrigues)."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _rotation_vector(R: np.ndarray) -> np.ndarray:
    """Axis-angle vector ``(3,)`` of a rotation matrix."""
    angle = np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-8:
        return np.zeros(3)
    axis = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2.0 * np.sin(angle))
    return axis * angle


def _heading(v: np.ndarray) -> float:
    """Angle of a vector's horizontal part, about world z."""
    return float(np.arctan2(v[1], v[0]))


def _wrap(angle: float, period: float) -> float:
    """``angle`` wrapped into ``[-period / 2, period / 2)``."""
    return (angle + period / 2.0) % period - period / 2.0


def _up(dz: float) -> np.ndarray:
    return np.array([0.0, 0.0, dz])


Z = np.array([0.0, 0.0, 1.0])


class Waypoints:
    """Action primitives on one robosuite environment: move the grasp point to a pose, open or close.

    Orientations are gripper -> world rotations, usually :meth:`down` (pointing down, turned by a yaw).
    """

    def __init__(self, env: RobosuiteEnv, gain: float = 1.5):
        self.env, self.gain = env, gain
        self.last_grip = OPEN
        R = env.ee_pose()[:3, :3]
        x = R[:, 0] - R[2, 0] * Z  # the arm's heading, without the tilt of the initial joint noise
        x /= np.linalg.norm(x)
        self.R_down = np.stack([x, np.cross(-Z, x), -Z], axis=1)
        left, right = env.pad_centres()
        self.close_heading = _heading(left - right)  # the direction the fingers close along

    def down(self, yaw: float = 0.0) -> np.ndarray:
        """Pointing straight down, turned by ``yaw`` about world z from the arm's initial heading."""
        return _axis_rotation(Z, yaw) @ self.R_down

    def yaw_to_close_along(self, direction: np.ndarray, symmetry: float = np.pi) -> float:
        """Smallest yaw that makes the fingers close along ``direction`` (modulo ``symmetry``)."""
        return _wrap(_heading(direction) - self.close_heading, symmetry)

    def grasp_point(self) -> np.ndarray:
        left, right = self.env.pad_centres()
        return (left + right) / 2.0

    def action(self, target: np.ndarray, R: np.ndarray, grip: float) -> np.ndarray:
        """One OSC action moving the grasp point towards ``target`` and the gripper towards ``R``."""
        dpos = self.gain * (target - self.grasp_point()) / POS_SCALE
        drot = self.gain * _rotation_vector(R @ self.env.ee_pose()[:3, :3].T) / ROT_SCALE
        R_base = self.env.base_rotation()  # OSC deltas are in the robot base frame
        self.last_grip = grip
        return np.concatenate([np.clip(R_base.T @ dpos, -1, 1), np.clip(R_base.T @ drot, -1, 1), [grip]])

    def move(
        self,
        target: Point,
        R: np.ndarray,
        grip: float,
        tol: float = 0.01,
        max_steps: int = 60,
        rot_tol: float = np.inf,
    ) -> Actions:
        """Step towards ``target`` until the grasp point is within ``tol`` metres and the orientation within
        ``rot_tol`` radians (or ``max_steps``)."""
        for _ in range(max_steps):
            goal = target() if callable(target) else target
            turn = np.linalg.norm(_rotation_vector(R @ self.env.ee_pose()[:3, :3].T))
            if np.linalg.norm(goal - self.grasp_point()) < tol and turn < rot_tol:
                return
            yield self.action(goal, R, grip)

    def path(
        self, poses: list[tuple[np.ndarray, np.ndarray]], grip: float, tol: float = 0.015, max_steps: int = 25
    ) -> Actions:
        """Visit ``(point, orientation)`` poses in order."""
        for point, R in poses:
            yield from self.move(point, R, grip, tol, max_steps)

    def grip(
        self,
        grip: float,
        R: np.ndarray,
        at: Point | None = None,
        wide: float | None = None,
        min_steps: int = 6,
        max_steps: int = 150,
    ) -> Actions:
        """Open or close the gripper until the fingers stop moving, or (opening) until the finger pads are
        ``wide`` metres apart. The grasp point stays where it is, or follows ``at`` (an object being grasped,
        which uneven fingers push around) by up to 2 cm. Grippers differ a lot in speed: Jaco's hand takes
        ~100 steps."""
        here, previous, still = self.grasp_point(), self.env.pad_distance(), 0
        for step in range(max_steps):
            if wide is not None and previous >= wide:
                return
            target = here
            if at is not None:
                shift = (at() if callable(at) else at) - here
                target = here + shift * min(1.0, 0.02 / max(np.linalg.norm(shift), 1e-9))
            yield self.action(target, R, grip)
            width = self.env.pad_distance()
            still = still + 1 if abs(width - previous) < 5e-5 else 0  # metres per step
            previous = width
            if step + 1 >= min_steps and still >= 5:
                return

    def hold(self, steps: int) -> Actions:
        """Stay in the current pose with the last gripper command."""
        here, R = self.grasp_point(), self.env.ee_pose()[:3, :3]
        for _ in range(steps):
            yield self.action(here, R, self.last_grip)


def arc(
    start: np.ndarray, R: np.ndarray, anchor: np.ndarray, axis: np.ndarray, angles: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Poses along a rotation of the pose ``(start, R)`` about the line through ``anchor`` along ``axis``."""
    poses = []
    for a in angles:
        Q = _axis_rotation(axis, a)
        poses.append((anchor + Q @ (start - anchor), Q @ R))
    return poses


# ---------------------------------------------------------------------------------------------- task scripts


def _pick(w: Waypoints, body: str, R: np.ndarray, width: float, approach: float = 0.08) -> Actions:
    """Open above ``body`` (``width`` metres across), descend to its centre and close."""
    env = w.env
    yield from w.move(lambda: env.body_pos(body) + _up(approach), R, OPEN, tol=0.012, max_steps=80)
    yield from w.grip(OPEN, R, wide=width + 0.03, min_steps=0)
    yield from w.move(lambda: env.body_pos(body), R, OPEN, tol=0.006, max_steps=40)
    yield from w.grip(CLOSE, R, at=lambda: env.body_pos(body))


def _box_grip(w: Waypoints, body: str) -> np.ndarray:
    """Downward orientation closing across a box's faces (boxes are symmetric under quarter turns)."""
    return w.down(w.yaw_to_close_along(w.env.body_mat(body)[:, 0], symmetry=np.pi / 2))


def lift(w: Waypoints) -> Actions:
    R = _box_grip(w, "cube_main")
    yield from _pick(w, "cube_main", R, width=0.044)
    yield from w.move(w.env.body_pos("cube_main") + _up(0.2), R, CLOSE, max_steps=80)


def _held(w: Waypoints, body: str, target: np.ndarray, max_offset: float = 0.03) -> Point:
    """A grasp-point target that brings the held ``body``'s origin to ``target`` (grasps are rarely centred;
    an offset beyond ``max_offset`` metres means the body slipped, and is ignored)."""

    def point() -> np.ndarray:
        offset = w.env.body_pos(body) - w.grasp_point()
        return target - (offset if np.linalg.norm(offset) < max_offset else 0.0)

    return point


def stack(w: Waypoints) -> Actions:
    env = w.env
    R = _box_grip(w, "cubeA_main")
    yield from _pick(w, "cubeA_main", R, width=0.04)
    b = env.body_pos("cubeB_main")
    yield from w.move(env.body_pos("cubeA_main") + _up(0.12), R, CLOSE, max_steps=60)
    yield from w.move(_held(w, "cubeA_main", b + _up(0.12)), R, CLOSE, max_steps=60)
    on_b = b + _up(0.02 + 0.025 + 0.008)  # cube A's centre when it rests on cube B
    yield from w.move(_held(w, "cubeA_main", on_b), R, CLOSE, tol=0.006, max_steps=40)
    yield from w.grip(OPEN, R)
    yield from w.move(b + _up(0.15), R, OPEN, max_steps=40)


def _joint_frame(env: RobosuiteEnv, joint: str) -> tuple[np.ndarray, np.ndarray]:
    """World anchor and unit axis of a hinge joint."""
    jid = env.model.joint(joint).id
    return env.data.xanchor[jid].copy(), env.data.xaxis[jid].copy()


DOOR_TILT = 60.0  # degrees from pointing down towards the door (at 90, UR5e's wrist folds onto its arm)


def door(w: Waypoints) -> Actions:
    """Grasp the lever from the front, turn it down to free the latch, pull the door open along its arc."""
    env = w.env
    lever = env.body_mat("Door_latch")  # x: along the lever; y: the door's normal (into the door: -y)
    out = -lever[:, 1] * np.sign(-lever[:, 1] @ (env.site_pos("Door_handle") - env.body_pos("Door_door")))
    tip = env.site_pos("Door_handle")
    grasp = tip - 0.03 * lever[:, 0] * np.sign(lever[:, 0] @ (tip - env.body_pos("Door_latch")))
    # Fingers closing along the door normal when pointing down, then tilted towards the door: they close
    # around the bar from above and in front, and the hand stays clear of the door.
    R_down = w.down(w.yaw_to_close_along(out))
    tilt = np.cross(-Z, -out)
    Q = _axis_rotation(tilt / np.linalg.norm(tilt), np.radians(DOOR_TILT))
    R, pointing = Q @ R_down, Q @ -Z
    yield from w.move(grasp - 0.10 * pointing, R, OPEN, tol=0.012, max_steps=80)
    yield from w.grip(OPEN, R, wide=0.07, min_steps=0)
    yield from w.move(grasp, R, OPEN, tol=0.008, max_steps=40)
    yield from w.grip(CLOSE, R)
    anchor, axis = _joint_frame(env, "Door_latch_joint")
    down = -np.sign(np.cross(axis, grasp - anchor)[2])  # turning this way moves the lever's end down
    here = w.grasp_point()
    turn = np.radians(85)  # the latch clears the frame beyond ~75 degrees
    yield from w.path(arc(here, R, anchor, axis, down * np.linspace(0.25, 1.0, 5) * turn), CLOSE, max_steps=20)
    hinge, hinge_axis = _joint_frame(env, "Door_hinge")
    here, R = w.grasp_point(), _axis_rotation(axis, down * turn) @ R
    yield from w.path(arc(here, R, hinge, hinge_axis, np.linspace(0.08, 0.45, 6)), CLOSE, max_steps=25)


def pick_place_can(w: Waypoints) -> Actions:
    """Pick the can out of the left bin and drop it over its compartment of the right bin."""
    env = w.env.env
    R = w.down(0.0)  # a can is round: any yaw grips it
    yield from _pick(w, "Can_main", R, width=0.066)
    # The can's compartment is the quarter of the right bin at +x, +y of its centre (robosuite's not_in_bin);
    # drop near the compartment's corner closest to the robot, which every arm reaches.
    goal = env.bin2_pos[:2] + np.array([0.045, 0.06])
    high = env.bin2_pos[2] + 0.25
    can = w.env.body_pos("Can_main")
    yield from w.path(
        [(np.array([can[0], can[1], high]), R), (np.array([goal[0], goal[1], high]), R)],
        CLOSE,
        tol=0.02,
        max_steps=60,
    )
    yield from w.move(np.array([goal[0], goal[1], env.bin2_pos[2] + 0.12]), R, CLOSE, tol=0.015, max_steps=40)
    yield from w.grip(OPEN, R)
    yield from w.move(np.array([goal[0], goal[1], high]), R, OPEN, max_steps=40)


def nut_assembly_square(w: Waypoints) -> Actions:
    """Grasp the square nut by its handle, turn it square to the peg, carry it over the peg, let it drop."""
    env = w.env
    nut, handle = "SquareNut_main", lambda: env.site_pos("SquareNut_handle_site")
    R = w.down(w.yaw_to_close_along(env.body_mat(nut)[:, 1]))  # close across the handle
    yield from w.move(lambda: handle() + _up(0.08), R, OPEN, tol=0.012, max_steps=80)
    yield from w.grip(OPEN, R, wide=0.032 + 0.03, min_steps=0)
    yield from w.move(handle, R, OPEN, tol=0.006, max_steps=40)
    yield from w.grip(CLOSE, R, at=handle)
    peg = env.body_pos("peg1")
    above = peg + _up(0.16)  # the peg's top is 10 cm above its centre
    lifted = w.grasp_point() + _up(0.12)
    yield from w.move(lifted, R, CLOSE, max_steps=40)
    # Turn the nut square to the peg (quarter-turn symmetry) in place, by the turn (within 100 degrees) that
    # points its handle (the nut's +x) most towards the robot, so the grasp stays within reach.
    nut_heading = _heading(env.body_mat(nut)[:, 0])
    square = _wrap(_heading(env.body_mat("peg1")[:, 0]) - nut_heading, np.pi / 2)
    home = _heading(env.robot.base_pos - peg) - nut_heading
    turns = [t for t in square + np.pi / 2 * np.arange(-2, 3) if abs(t) < np.radians(100)]
    turn = min(turns, key=lambda t: abs(_wrap(home - t, 2 * np.pi)))
    R = _axis_rotation(Z, turn) @ R
    yield from w.move(lifted, R, CLOSE, max_steps=40, rot_tol=np.radians(5))
    yield from w.move(_held(w, nut, above, max_offset=0.09), R, CLOSE, tol=0.008, max_steps=80)
    yield from w.move(_held(w, nut, peg - _up(0.05), max_offset=0.09), R, CLOSE, tol=0.01, max_steps=40)
    yield from w.grip(OPEN, R)
    yield from w.move(w.grasp_point() + _up(0.1), R, OPEN, max_steps=30)


EXPERTS: dict[str, Callable[[Waypoints], Actions]] = {
    "Lift": lift,
    "Stack": stack,
    "Door": door,
    "PickPlaceCan": pick_place_can,
    "NutAssemblySquare": nut_assembly_square,
}


def make_expert(env: RobosuiteEnv) -> Actions:
    """An endless action generator for the environment's task (after the script ends it holds still)."""
    w = Waypoints(env)
    script = EXPERTS[env.task](w)

    def forever() -> Actions:
        yield from script
        yield from w.hold(10**9)

    return forever()
