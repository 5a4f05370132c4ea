"""Cross-painting: the robot's observation with the robot replaced by another embodiment.

A model warmed up on videos of one embodiment (a hand) and run on another (the Sawyer) meets an observation unlike
any it was trained on: an arm it never saw, a gripper in place of the hand. Cross-painting (Mirage, Chen et al.,
2024) closes that gap at test time: the robot is masked out of the camera image, the hole filled in, and the
demonstrator's effector drawn at the robot's own pose, so that the planner sees the robot *as the demonstrator*.
On a real robot that takes the robot's mask (its model rendered from the calibrated camera), an inpainting method
and a model of the demonstrator's effector. Here:

* the robot's mask is its own segmentation, and the hole is filled from the image around it (OpenCV's Telea
  inpainting, RGB and depth alike): what the arm hides stays unseen, as on a real robot;
* the effector is the embodiment variant's (:mod:`tracegen.sim.embodiments`): the variants share the Sawyer's
  bodies and joints (only the geoms' looks differ), so the variant's simulator posed with the robot's state draws
  it exactly, with its depth, where the scene does not hide it.

``reveal=True`` shows the variant's whole rendering instead: the scene behind the arm included, which no camera on a
real robot sees (an upper bound, for comparison).

    view = PaintedView(env, "hand")       # env: a Meta-World SimEnv (the Sawyer)
    frame = view.render("corner", depth=True, seg=True)  # env's observation, the robot drawn as the hand
"""

from __future__ import annotations

import cv2
import mujoco
import numpy as np

from tracegen.sim.embodiments import effector_geoms
from tracegen.sim.env import SimEnv, make_env
from tracegen.sim.render import Frame

_STATE = ("qpos", "qvel", "mocap_pos", "mocap_quat")  # what poses every body (data)
_LAYOUT = ("body_pos", "body_quat")  # where a task placed its fixtures at reset (model: Meta-World moves them)
INPAINT_RADIUS_PX = 3


class PaintedView:
    """``env``'s observation with the robot drawn as ``embodiment`` (a Meta-World embodiment variant). Frames come
    in ``env``'s terms: a segmented pixel names a geom of ``env``'s model on the body it shows."""

    def __init__(self, env: SimEnv, embodiment: str, reveal: bool = False):
        if env.suite != "metaworld":
            raise ValueError(
                f"cross-painting draws Meta-World's embodiment variants over the Sawyer; {env.suite} robots differ "
                "in their joints, so one cannot be posed with another's state"
            )
        self.env, self.embodiment, self.reveal = env, embodiment, reveal
        self.view = make_env(env.suite, env.task, embodiment, env.height, env.width, env.fast_render)
        self._check_same_bodies()
        robot, drawn = env.model, self.view.model
        self._robot_geom = np.zeros(robot.ngeom, bool)
        self._robot_geom[effector_geoms(robot)] = True  # (ngeom,) the robot's visible geoms, in env's model
        self._drawn_geom = np.zeros(drawn.ngeom, bool)
        self._drawn_geom[effector_geoms(drawn)] = True  # (ngeom',) the variant's, in its own model
        # (ngeom',) a geom of env's model on the same body as each of the variant's geoms (bodies share ids)
        body = drawn.geom_bodyid
        self._as_robot_geom = np.where(robot.body_geomnum[body] > 0, robot.body_geomadr[body], -1)

    def _check_same_bodies(self) -> None:
        ours, theirs = self.env.model, self.view.model
        sizes = ("nbody", "nq", "nv", "nmocap")
        if any(getattr(ours, n) != getattr(theirs, n) for n in sizes):
            raise ValueError(
                f"the {self.embodiment} variant of {self.env.task} does not share the robot's bodies and joints "
                f"({', '.join(f'{n} {getattr(ours, n)} vs {getattr(theirs, n)}' for n in sizes)})"
            )

    def sync(self) -> None:
        """Pose the variant's simulator exactly as ``env`` is now (its fixtures' placement included)."""
        for name in _LAYOUT:
            getattr(self.view.model, name)[:] = getattr(self.env.model, name)
        for name in _STATE:
            getattr(self.view.data, name)[:] = getattr(self.env.data, name)
        mujoco.mj_forward(self.view.model, self.view.data)

    def render(self, camera: str, depth: bool = True, seg: bool = False) -> Frame:
        """:meth:`SimEnv.render` of ``env``'s current state with the robot replaced by ``embodiment``."""
        self.sync()
        drawn = self.view.render(camera, depth=True, seg=True, pose=self.env.camera(camera))
        drawn_geom = drawn.geom_ids()
        if self.reveal:
            rgb, dep = drawn.rgb, drawn.depth
            geom = np.where(drawn_geom >= 0, self._as_robot_geom[np.maximum(drawn_geom, 0)], -1)
        else:
            rgb, dep, geom = self._composite(camera, drawn, drawn_geom)
        seg_out = None
        if seg:
            seg_out = np.stack([geom, np.where(geom >= 0, int(mujoco.mjtObj.mjOBJ_GEOM), -1)], -1).astype(np.int32)
        return Frame(rgb=rgb, depth=dep if depth else None, seg=seg_out)

    def _composite(self, camera: str, drawn: Frame, drawn_geom: np.ndarray) -> tuple[np.ndarray, ...]:
        """The robot's own frame with its pixels filled in from around them and the variant's effector drawn over:
        ``(H, W, 3)`` uint8, ``(H, W)`` metres, ``(H, W)`` env geom ids."""
        own = self.env.render(camera, depth=True, seg=True)
        own_geom = own.geom_ids()
        robot = (own_geom >= 0) & self._robot_geom[np.maximum(own_geom, 0)]  # (H, W)
        effector = (drawn_geom >= 0) & self._drawn_geom[np.maximum(drawn_geom, 0)]  # (H, W)
        hole = robot.astype(np.uint8)
        rgb = cv2.inpaint(own.rgb, hole, INPAINT_RADIUS_PX, cv2.INPAINT_TELEA)
        dep = cv2.inpaint(own.depth.astype(np.float32), hole, INPAINT_RADIUS_PX, cv2.INPAINT_TELEA)
        rgb[effector], dep[effector] = drawn.rgb[effector], drawn.depth[effector]
        geom = np.where(robot, -1, own_geom)  # the filled-in hole shows no known surface
        geom[effector] = self._as_robot_geom[drawn_geom[effector]]
        return rgb, dep, geom

    def close(self) -> None:
        self.view.close()
