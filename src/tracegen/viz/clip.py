"""Rollout clips: the robot's camera during a closed-loop episode with the current plan's trace drawn on every
frame (coloured tails, as :func:`tracegen.viz.overlay.draw_traces` draws them), written as a small animated GIF that
an HTML page can inline.

    recorder = ClipRecorder("corner")
    result = rollout(env, planner, "corner", seed, text, recorder=recorder)
    write_gif(recorder.frames(), "clip.gif")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracegen.io.files import atomic_path
from tracegen.sim.env import SimEnv
from tracegen.sim.render import Frame
from tracegen.viz.overlay import draw_traces, point_colors
from tracegen.viz.render import with_caption


@dataclass
class _Shot:
    rgb: np.ndarray  # (H, W, 3) uint8
    traj: np.ndarray  # (N, S, 3) the plan in force: u, v px of the camera; z m
    plan: int  # 1-based
    step: int  # executor env steps so far


class ClipRecorder:
    """A :class:`tracegen.act.rollout.RolloutRecorder`: keeps the observation of every plan and every
    ``every``-th executor step rendered from ``camera`` (the planning camera, static in Meta-World, so a plan's
    pixels stay valid on later frames), each to be drawn with the plan in force.

    :meth:`frames` gives RGB ``(H', W', 3)`` uint8 images whose longer side is about ``size`` px (smaller renders
    upscaled by whole pixels, larger ones downscaled), with a caption band (the plan's number, ``t=`` env steps so
    far); at most ``max_frames`` (evenly thinned when the episode runs long), so a clip stays small (40-240 KB at
    128 px in the default demo).
    """

    def __init__(self, camera: str, every: int = 3, max_frames: int = 40, size: int = 128):
        self.camera, self.every, self.max_frames, self.size = camera, every, max_frames, size
        self.plans = self.steps = 0
        self._shots: list[_Shot] = []

    def on_plan(self, frame: Frame, traj: np.ndarray) -> None:
        self.plans += 1
        self._shots.append(_Shot(frame.rgb, traj, self.plans, self.steps))

    def on_step(self, env: SimEnv) -> None:
        self.steps += 1
        if self._shots and self.steps % self.every == 0:
            rgb = env.render(self.camera, depth=False).rgb
            self._shots.append(_Shot(rgb, self._shots[-1].traj, self.plans, self.steps))

    def frames(self) -> list[np.ndarray]:
        n = len(self._shots)
        keep = np.unique(np.linspace(0, n - 1, min(n, self.max_frames)).round().astype(int))
        return [self._draw(self._shots[i]) for i in keep]

    def _draw(self, shot: _Shot) -> np.ndarray:
        """Only the points the plan moves (by >= 1 px), in their grid colours: 400 dots would hide a small scene."""
        rgb, uv = shot.rgb, np.clip(shot.traj[..., :2], -1e4, 1e4)  # far off-image points must not overflow int32
        moving = np.linalg.norm(uv - uv[:, :1], axis=-1).max(1) >= 1.0
        H, W = rgb.shape[:2]
        if max(H, W) > self.size:  # shrink the render, and the trace's pixel centres with it
            f = self.size / max(H, W)
            rgb = cv2.resize(rgb, (round(W * f), round(H * f)), interpolation=cv2.INTER_AREA)
            uv = (uv + 0.5) * f - 0.5
        image = draw_traces(rgb, uv[moving], min_size=self.size, colors=point_colors(len(uv))[moving])
        return with_caption(image, f"plan {shot.plan}", f"t={shot.step}")  # fits 128 px: "plan 40", "t=500"


def write_gif(frames: list[np.ndarray], path: str | Path, fps: float = 8.0, colors: int = 64) -> Path:
    """An endlessly looping GIF of ``frames`` (RGB uint8, equal sizes) at ``fps``, each frame reduced to a
    ``colors``-entry palette; the last frame is held for a second. Written atomically; returns ``path``."""
    from PIL import Image

    if not frames:
        raise ValueError(f"{path}: no frames to write")
    images = [Image.fromarray(f).quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for f in frames]
    durations = [round(1000 / fps)] * (len(images) - 1) + [1000]
    path = Path(path)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=True
        )
    return path
