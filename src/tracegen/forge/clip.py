"""The unit of work flowing through TraceForge, and the one interface every stage has.

A :class:`Clip` starts as decoded frames (plus whatever the source knows: depth, cameras, instructions) and is
filled in stage by stage: cameras, depth, point tracks, reference-camera traces, samples. A stage is any object
with ``name``, ``setup()`` (called once per worker, e.g. to load model weights) and ``process(clip) -> clip``.

A stage that cannot handle a clip raises :class:`ClipError` with a one-line reason; the runner records it as the
episode's failure and moves on to the next episode.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tracegen.io.episode import GroundTruthTracks, VideoFrames
from tracegen.io.trace_dataset import TraceSample


class ClipError(Exception):
    """This clip cannot be turned into traces; ``str(err)`` is the reason recorded in the run summary."""


@dataclass
class Tracks:
    """Point tracks of every query grid, in the image of each frame (not yet camera-compensated).

    Q query frames, N = G * G points, L = the longest window (frames after each query frame, the query frame
    included). Entries past a window's end are NaN / False.

    Attributes:
        query_frames: ``(Q,)`` int frame index of each query grid (in the clip's frame numbering).
        uv: ``(Q, N, L, 2)`` float64 pixels of the point in frame ``query_frames[q] + l``.
        visible: ``(Q, N, L)`` bool, the tracker sees the point (not occluded, inside the image).
        world: ``(Q, N, L, 3)`` float64 world points (metres, or SfM units) or None without depth; while a point
            is hidden it holds the tracker's prediction.
        lengths: ``(Q,)`` int window length of each query.
    """

    query_frames: np.ndarray
    uv: np.ndarray
    visible: np.ndarray
    lengths: np.ndarray
    world: np.ndarray | None = None


@dataclass
class Clip(VideoFrames):
    """One episode on its way to traces. T frames of H x W pixels (after striding and resizing).

    Attributes:
        name: unique, file-name-safe id (the shard name of its output).
        rgb: ``(T, H, W, 3)`` uint8.
        fps: frames per second after striding.
        instructions: the task in one or more phrasings.
        depth: ``(T, H, W)`` float32 metres (0 = no measurement), or None.
        depth_metric: whether ``depth`` is metric (sensor or rescaled); SfM-only depth is not.
        K: ``(T, 3, 3)`` intrinsics, w2c: ``(T, 4, 4)`` world -> camera; None until the camera stage ran.
        camera_static: the camera does not move (identity motion).
        frame_index: ``(T,)`` index of each frame in the source video.
        gt: exact ground-truth tracks in the clip's frame numbering (simulated episodes; evaluation only).
        tracks: the tracker's output.  reference: per query, ``(N, L_q, 3)`` (u, v, z) in the query camera.
        samples / dropped: the kept triplets and the count of dropped windows by reason.
        timings: seconds spent per stage.  info: per-stage facts for the run summary (e.g. SfM statistics).
    """

    name: str
    rgb: np.ndarray
    fps: float
    instructions: list[str] = field(default_factory=list)
    depth: np.ndarray | None = None
    depth_metric: bool = True
    K: np.ndarray | None = None
    w2c: np.ndarray | None = None
    camera_static: bool = False
    frame_index: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    gt: GroundTruthTracks | None = None
    tracks: Tracks | None = None
    reference: list[np.ndarray] | None = None
    samples: list[TraceSample] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def has_cameras(self) -> bool:
        return self.K is not None and self.w2c is not None


class Stage(Protocol):
    """A swappable pipeline component."""

    name: str

    def setup(self) -> None:
        """Called once per worker before the first clip (load weights, warm caches)."""

    def process(self, clip: Clip) -> Clip:
        """Return the clip with this stage's output filled in; raise :class:`ClipError` to fail the clip."""


class StatelessStage:
    """Base for stages with nothing to load: ``setup()`` does nothing."""

    def setup(self) -> None:
        """Nothing to load."""


def run_stage(stage: Stage, clip: Clip) -> Clip:
    """``stage.process(clip)``, adding the time it took to ``clip.timings[stage.name]``."""
    start = time.perf_counter()
    clip = stage.process(clip)
    clip.timings[stage.name] = clip.timings.get(stage.name, 0.0) + time.perf_counter() - start
    return clip
