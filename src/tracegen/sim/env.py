"""One small interface over Meta-World and robosuite: reset, step, render, cameras, end effector, success.

Subclasses wrap a real simulator and expose its raw ``mujoco.MjModel`` / ``MjData`` (for rendering and the
ground-truth tracks). Everything camera-related lives here, so both suites render, project and store cameras
the same way: images come from :class:`~tracegen.sim.render.SceneRenderer`; ``K`` and ``w2c`` are in the
project's OpenCV convention (:mod:`tracegen.geometry`).
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import NamedTuple

import mujoco
import numpy as np

from tracegen.sim.cameras import CameraPose, CameraSpec, model_camera, resolve
from tracegen.sim.render import Frame, SceneRenderer

SUITES = ("metaworld", "robosuite")
STATE_NAMES = ("ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz", "gripper_open")


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> ValueError:
    """A ValueError that lists the valid names (closest matches first)."""
    close = difflib.get_close_matches(name, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ValueError(f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(valid)}")


class SimEnv(ABC):
    """A task in a simulator with one embodiment, rendering ``height x width`` images.

    Attributes set by subclasses: ``suite``, ``fps`` (frames per second when recording one frame per step),
    ``max_steps``, ``action_dim``, ``upright_cameras`` (re-aimed upright by default), ``visible_geom_groups``.
    """

    suite: str
    upright_cameras: tuple[str, ...] = ()
    visible_geom_groups: tuple[int, ...] = (0, 1, 2)

    def __init__(self, task: str, embodiment: str, height: int = 224, width: int = 224, fast_render: bool = True):
        self.task, self.embodiment = task, embodiment
        self.height, self.width, self.fast_render = height, width, fast_render
        self._renderer: SceneRenderer | None = None

    # ------------------------------------------------------------------ simulator (subclasses)

    @property
    @abstractmethod
    def model(self) -> mujoco.MjModel: ...

    @property
    @abstractmethod
    def data(self) -> mujoco.MjData: ...

    @abstractmethod
    def reset(self, seed: int) -> None:
        """Start a new episode; the same seed always gives the same initial state."""

    @abstractmethod
    def step(self, action: np.ndarray) -> None:
        """Apply one action (``(action_dim,)`` in [-1, 1])."""

    @abstractmethod
    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state."""

    @property
    @abstractmethod
    def success(self) -> bool: ...

    @property
    def episode_over(self) -> bool:
        """Whether the simulator refuses further steps (its own episode limit); False for one without a limit."""
        return False

    @abstractmethod
    def ee_pose(self) -> np.ndarray:
        """``(4, 4)`` end-effector (tool centre point) -> world pose."""

    @property
    @abstractmethod
    def effector_body(self) -> int:
        """Id of the body that carries the tool centre point (the arm's last link)."""

    def effector_action(self, command: np.ndarray) -> np.ndarray:
        """The env's action for an effector command ``(4,)`` in Meta-World's convention: world-axis displacement
        in [-1, 1] (1 = 1 cm per step) and a gripper effort in [-1, 1] (positive closes). Meta-World: itself."""
        return command

    @abstractmethod
    def gripper_opening(self) -> float:
        """Gripper opening in [0, 1]: finger-pad distance / 10 cm, clipped (Meta-World's definition)."""

    @abstractmethod
    def close_sim(self) -> None:
        """Release the simulator's resources."""

    # ------------------------------------------------------------------ shared

    def proprio(self) -> np.ndarray:
        """``(8,)`` state (:data:`STATE_NAMES`): end-effector xyz (m), quaternion wxyz, gripper opening."""
        T = self.ee_pose()
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, T[:3, :3].ravel())
        return np.concatenate([T[:3, 3], quat, [self.gripper_opening()]])

    @property
    def camera_names(self) -> list[str]:
        return [self.model.camera(i).name for i in range(self.model.ncam)]

    def camera_spec(self, camera: str | CameraSpec) -> CameraSpec:
        spec = CameraSpec(camera) if isinstance(camera, str) else camera
        if spec.name not in self.camera_names:
            raise unknown_name("camera", spec.name, self.camera_names)
        return spec

    def camera(self, camera: str | CameraSpec) -> CameraPose:
        """The pose of a camera now (cameras attached to moving bodies move)."""
        spec = self.camera_spec(camera)
        base = model_camera(self.model, self.data, spec.name)
        return resolve(spec, base, upright_default=spec.name in self.upright_cameras)

    def intrinsics(self, camera: str | CameraSpec) -> np.ndarray:
        """``(3, 3)`` K of the rendered images (integer pixel centres)."""
        return self.camera(camera).K(self.height, self.width)

    def extrinsics(self, camera: str | CameraSpec) -> np.ndarray:
        """``(4, 4)`` world -> camera, OpenCV axes."""
        return self.camera(camera).w2c()

    def render(
        self, camera: str | CameraSpec, depth: bool = True, seg: bool = False, pose: CameraPose | None = None
    ) -> Frame:
        """RGB (+ metric planar depth, + segmentation) of the current state; ``pose`` overrides the
        camera's."""
        if self._renderer is None:
            self._renderer = SceneRenderer(
                self.model, self.height, self.width, self.fast_render, self.visible_geom_groups
            )
        return self._renderer.render(self.data, pose or self.camera(camera), depth=depth, seg=seg)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.close_sim()

    def __enter__(self) -> SimEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> dict:
        return {"suite": self.suite, "task": self.task, "embodiment": self.embodiment}


class SuiteNames(NamedTuple):
    tasks: tuple[str, ...]
    embodiments: tuple[str, ...]  # Meta-World embodiment variants, or robosuite robots
    cameras: tuple[str, ...]


def suite_names(suite: str) -> SuiteNames:
    """The valid task, embodiment (robot) and camera names of a suite."""
    if suite == "metaworld":
        from tracegen.sim.embodiments import EMBODIMENTS
        from tracegen.sim.metaworld_env import CAMERAS, TASKS

        return SuiteNames(TASKS, tuple(EMBODIMENTS), CAMERAS)
    if suite == "robosuite":
        from tracegen.sim.robosuite_env import CAMERAS, ROBOTS, TASKS

        return SuiteNames(TASKS, ROBOTS, CAMERAS)
    raise unknown_name("suite", suite, SUITES)


def make_env(
    suite: str,
    task: str,
    embodiment: str | None = None,
    height: int = 224,
    width: int = 224,
    fast_render: bool = True,
    **kwargs,
) -> SimEnv:
    """Build an environment. ``embodiment``: a Meta-World embodiment variant, or a robosuite robot name."""
    if suite == "metaworld":
        from tracegen.sim.metaworld_env import MetaWorldEnv

        return MetaWorldEnv(task, embodiment or "sawyer", height, width, fast_render, **kwargs)
    if suite == "robosuite":
        from tracegen.sim.robosuite_env import RobosuiteEnv

        return RobosuiteEnv(task, embodiment or "Panda", height, width, fast_render, **kwargs)
    raise unknown_name("suite", suite, SUITES)
