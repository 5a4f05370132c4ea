"""Simulated demonstrations filmed by a moving camera, with exact ground truth: the benchmark of camera-motion
compensation (``--camera colmap`` must give traces as if the camera were static).

The camera orbits the point it looks at (the scene point on its initial viewing ray at ``distance`` metres)
about the vertical axis and bobs up and down, smoothly, like a hand-held phone: azimuth
``amplitude_deg * sin(2 pi t / period)``, height ``bob * sin(4 pi t / period)``. Everything else -- expert, rendering,
ground-truth tracks, the episode format -- is :mod:`tracegen.sim`'s; this module only moves its camera, by wrapping
the environment so that its ``camera()`` returns the pose of the current frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CameraPath:
    amplitude_deg: float = 12.0
    bob: float = 0.04  # metres
    period: float = 120.0  # frames
    distance: float = 1.0  # metres from the camera to the orbit centre

    def pose(self, base, frame: int):
        """The camera of ``frame``: ``base`` (a :class:`tracegen.sim.cameras.CameraPose`) moved along the path."""
        from tracegen.sim.cameras import look_at

        target = base.pos + self.distance * base.forward
        a = np.radians(self.amplitude_deg * np.sin(2 * np.pi * frame / self.period))
        rel = base.pos - target
        rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
        eye = target + rot @ rel + np.array([0.0, 0.0, self.bob * np.sin(4 * np.pi * frame / self.period)])
        return look_at(eye, target, base.fovy)


class MovingCameraEnv:
    """A :class:`tracegen.sim.env.SimEnv` whose cameras follow ``path`` (frame = steps since reset)."""

    def __init__(self, env, path: CameraPath):
        self._env, self._path, self._frame = env, path, 0

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, seed: int) -> None:
        self._env.reset(seed)
        self._frame = 0

    def step(self, action: np.ndarray) -> None:
        self._env.step(action)
        self._frame += 1

    def camera(self, camera):
        return self._path.pose(self._env.camera(camera), self._frame)


def record_moving(
    suite: str,
    task: str,
    camera: str,
    seed: int,
    out: str | Path,
    path: CameraPath = CameraPath(),
    height: int = 224,
    width: int = 224,
    max_steps: int | None = None,
    embodiment: str | None = None,
    stop_on_success: bool = True,
) -> Path:
    """Record one expert rollout seen by ``camera`` moving along ``path`` as an episode under ``out``; returns its
    directory (named like the recorder's, with ``-moving`` after the camera). Existing episodes are kept."""
    from tracegen.io.episode import is_episode, write_episode
    from tracegen.sim.cameras import CameraSpec
    from tracegen.sim.env import make_env
    from tracegen.sim.recorder import RecordConfig, episode_name, record_rollout

    env = make_env(suite, task, embodiment, height, width)
    try:
        name = episode_name(env.suite, env.task, env.embodiment, f"{camera}-moving", seed)
        target = Path(out) / name
        if is_episode(target):
            return target
        cfg = RecordConfig(height=height, width=width, max_steps=max_steps, stop_on_success=stop_on_success)
        rollout = record_rollout(MovingCameraEnv(env, path), [CameraSpec(camera)], seed, cfg)
        ep = rollout.episodes[camera]
        ep.meta.update(camera=f"{camera}-moving", episode_id=name, camera_path=vars(path))
        write_episode(target, ep)
        return target
    finally:
        env.close()
