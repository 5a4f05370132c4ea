"""Cross-painting: the robot's current state drawn with another embodiment's look.

A model warmed up on videos of one embodiment (a hand) and run on another (the Sawyer) meets an observation unlike
any it was trained on: the arm it never saw, the gripper in place of the hand. Cross-painting (Mirage, Chen et al.,
2024) closes that gap at test time: the planner's observation shows the robot *as the demonstrator*, drawn at the
robot's own pose. On a real robot that takes the calibrated camera, the joint angles and a model of the
demonstrator's effector to render over the masked robot; in the simulator, the embodiment variants of
:mod:`tracegen.sim.embodiments` share the Sawyer's bodies and joints (only the geoms' looks differ), so the variant's
simulator posed with the robot's state *is* that rendering, depth and segmentation included.

    view = PaintedView(env, "hand")       # env: a Meta-World SimEnv (any embodiment)
    frame = view.render("corner", depth=True, seg=True)  # env's state, drawn as the hand
"""

from __future__ import annotations

import mujoco

from tracegen.sim.env import SimEnv, make_env
from tracegen.sim.render import Frame

_STATE = ("qpos", "qvel", "mocap_pos", "mocap_quat")  # what poses every body (data)
_LAYOUT = ("body_pos", "body_quat")  # where a task placed its fixtures at reset (model: Meta-World moves them)


class PaintedView:
    """Renders ``env``'s current state with ``embodiment``'s look (a Meta-World embodiment variant).

    ``model``: the painted simulator's model; a frame's geom ids refer to it (its bodies are ``env``'s)."""

    def __init__(self, env: SimEnv, embodiment: str):
        if env.suite != "metaworld":
            raise ValueError(
                f"cross-painting draws Meta-World's embodiment variants over the Sawyer; {env.suite} robots differ "
                "in their joints, so one cannot be posed with another's state"
            )
        self.env, self.embodiment = env, embodiment
        self.view = make_env(env.suite, env.task, embodiment, env.height, env.width, env.fast_render)
        self._check_same_bodies()

    @property
    def model(self) -> mujoco.MjModel:
        return self.view.model

    def _check_same_bodies(self) -> None:
        ours, theirs = self.env.model, self.view.model
        sizes = ("nbody", "nq", "nv", "nmocap")
        if any(getattr(ours, n) != getattr(theirs, n) for n in sizes):
            raise ValueError(
                f"the {self.embodiment} variant of {self.env.task} does not share the robot's bodies and joints "
                f"({', '.join(f'{n} {getattr(ours, n)} vs {getattr(theirs, n)}' for n in sizes)})"
            )

    def sync(self) -> None:
        """Pose the painted simulator exactly as ``env`` is now (its fixtures' placement included)."""
        for name in _LAYOUT:
            getattr(self.view.model, name)[:] = getattr(self.env.model, name)
        for name in _STATE:
            getattr(self.view.data, name)[:] = getattr(self.env.data, name)
        mujoco.mj_forward(self.view.model, self.view.data)

    def render(self, camera: str, depth: bool = True, seg: bool = False) -> Frame:
        """:meth:`SimEnv.render` of ``env``'s current state, drawn as ``embodiment`` (the robot's camera pose)."""
        self.sync()
        return self.view.render(camera, depth=depth, seg=seg, pose=self.env.camera(camera))

    def close(self) -> None:
        self.view.close()
