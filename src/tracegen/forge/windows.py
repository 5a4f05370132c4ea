"""From reference-camera tracks of one query frame to a training triplet: window, retarget, filter.

This is the last stage every trace source shares (a tracker's output after compensation, or the simulator's exact
ground truth): cut a window of up to ``window`` frames after the query frame, retarget it by speed, apply the
official sample filters, and package the observation, trace and instructions as a :class:`TraceSample`.

TraceForge's ``windows`` stage (:class:`Windows`) wraps it: it first drops query frames in the clip's leading and
trailing static spans (a motion-magnitude filter on the compensated tracks) and degenerate windows (most points
non-finite or behind the camera), and counts every dropped window by reason; the tracked windows it keeps are
smoothed along time (``WindowConfig.smooth_frames``) so that tracker jitter does not inflate the arc length that
retargeting steps along. :func:`retarget_frames` exposes the fractional frames retargeting resamples at, so
evaluation can resample the ground truth at the same times.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from tracegen.forge.clip import StatelessStage
from tracegen.io.episode import Episode
from tracegen.io.trace_dataset import TraceSample
from tracegen.traces import (
    DEFAULT_GRID,
    RetargetConfig,
    official_filter_reason,
    retarget,
    smooth_tracks,
    static_grid,
)


@dataclass(frozen=True)
class WindowConfig:
    """How query frames become samples (defaults: the paper's)."""

    grid: int = DEFAULT_GRID  # G: a G x G query grid
    query_every: int = 5  # a query frame every 5 frames
    window: int = 128  # frames followed after each query frame (including it)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    apply_filters: bool = True  # the official sample filters (valid steps > 3, some track moving > 0.1)
    smooth_frames: float = 2.0  # TraceForge's tracked windows only: Gaussian sigma (frames) along time before
    # retargeting, so tracker jitter does not inflate the arc length (0 = off); exact ground truth is never smoothed

    def to_dict(self) -> dict:
        return asdict(self)


def window_sample(ep: Episode, frame: int, uvz: np.ndarray, has_depth: bool, config: WindowConfig) -> TraceSample | str:
    """The triplet for query ``frame``, or the reason it is dropped.

    Args:
        uvz: ``(N, T', 3)`` tracks of the query grid from ``frame`` on, in camera ``frame`` (pixels, metres);
            rows of NaN are points without a track (e.g. sky), kept as static points as the official files keep
            every grid point.
    """
    H, W = ep.height, ep.width
    uvz = retarget_input(ep, frame, uvz, has_depth, config)
    if uvz.shape[1] < 2:
        return "window shorter than two frames"
    result = retarget(uvz, H, W, config.retarget)
    traj = result.traj if has_depth else np.concatenate([result.traj, np.zeros(result.traj.shape[:-1] + (1,))], -1)
    if config.apply_filters and (reason := official_filter_reason(traj, result.valid_steps, H, W)):
        return reason
    meta = {
        **{k: ep.meta[k] for k in ("episode_id", "source", "suite", "task", "embodiment", "camera") if k in ep.meta},
        "query_frame": int(frame),
    }
    return TraceSample(
        rgb=ep.rgb[frame],
        traj=traj.astype(np.float32),
        valid_steps=result.valid_steps,
        instructions=list(ep.instructions),
        has_depth=has_depth,
        depth=ep.depth[frame] if ep.depth is not None else None,
        K=ep.K[frame] if ep.K is not None else None,
        w2c=ep.w2c[frame] if ep.w2c is not None else None,
        traj_2d=uvz[..., :2].astype(np.float32),
        meta=meta,
    )


def retarget_input(ep: Episode, frame: int, uvz: np.ndarray, has_depth: bool, config: WindowConfig) -> np.ndarray:
    """What :func:`window_sample` retargets: ``uvz (N, T', 3)`` cut to ``config.window`` frames, untracked rows as
    static points; ``(N, L, 3)`` float64, or ``(N, L, 2)`` without depth."""
    uvz = np.array(uvz[:, : config.window], dtype=np.float64)
    uvz = _fill_untracked(uvz, ep.height, ep.width, ep.depth[frame] if ep.depth is not None else None, config.grid)
    return uvz if has_depth else uvz[..., :2]


def _fill_untracked(uvz: np.ndarray, height: int, width: int, depth: np.ndarray | None, grid: int) -> np.ndarray:
    """Rows with any NaN become static points at their query pixel, with the depth map's value there (or 0)."""
    missing = ~np.isfinite(uvz).all(axis=(1, 2))
    if missing.any():
        uvz[missing] = static_grid(height, width, depth, grid)[missing, None, :]
    return uvz


def gt_samples(ep: Episode, config: WindowConfig = WindowConfig()) -> tuple[list[TraceSample], Counter]:
    """Triplets from a simulated episode's exact ground-truth tracks, and the count of dropped windows by reason."""
    if ep.gt is None or ep.K is None:
        raise ValueError(f"episode {ep.meta.get('episode_id', '?')} has no ground-truth tracks or cameras")
    if ep.gt.grid != config.grid:
        raise ValueError(f"ground truth has a {ep.gt.grid}x{ep.gt.grid} grid, the config asks for {config.grid}")
    samples, dropped = [], Counter()
    for q, frame in enumerate(ep.gt.query_frames):
        uvz, _ = ep.gt_reference_tracks(q)
        out = window_sample(ep, int(frame), uvz, ep.depth is not None, config)
        if isinstance(out, str):
            dropped[out.split(" (")[0]] += 1
        else:
            samples.append(out)
    return samples, dropped


# ---------------------------------------------------------------------------------------------- TraceForge stage


def robust_speeds(
    reference: list[np.ndarray], query_frames: np.ndarray, num_frames: int, top_fraction: float = 0.02
) -> np.ndarray:
    """Per-frame motion ``(T,)`` of the clip in pixels per frame: the mean step length of the fastest
    ``top_fraction`` of points (camera-compensated), averaged over the windows covering each frame."""
    total, count = np.zeros(num_frames), np.zeros(num_frames)
    for uvz, f in zip(reference, query_frames, strict=True):
        uv = uvz[..., :2]
        if uv.shape[1] < 2:
            continue
        seg = np.linalg.norm(np.diff(uv, axis=1), axis=-1)  # (N, L - 1)
        seg = np.where(np.isfinite(seg), seg, 0.0)
        k = max(1, int(np.ceil(top_fraction * len(seg))))
        speed = np.sort(seg, axis=0)[-k:].mean(0)  # (L - 1,)
        frames = int(f) + np.arange(len(speed))
        total[frames] += speed
        count[frames] += 1
    return np.divide(total, count, out=np.zeros(num_frames), where=count > 0)


def static_span_queries(speed: np.ndarray, query_frames: np.ndarray, threshold: float, margin: int) -> np.ndarray:
    """``(Q,)`` True for query frames in the clip's leading or trailing static span (speed below ``threshold``
    throughout), keeping ``margin`` frames before the first and after the last motion."""
    moving = np.flatnonzero(speed >= threshold)
    if not len(moving):
        return np.ones(len(query_frames), bool)
    return (query_frames < moving[0] - margin) | (query_frames > moving[-1] + margin)


def sanitize_window(uvz: np.ndarray, has_depth: bool) -> tuple[np.ndarray, float]:
    """Rows with non-finite values or (with depth) points at or behind the reference camera become NaN rows
    (kept as static points by :func:`window_sample`). Returns the window and the fraction of tracked rows lost."""
    uvz = np.array(uvz, dtype=np.float64)
    tracked = np.isfinite(uvz).any(axis=(1, 2))
    bad = ~np.isfinite(uvz).all(axis=(1, 2))
    if has_depth:
        with np.errstate(invalid="ignore"):
            bad |= (uvz[..., 2] <= 0).any(1)
    lost = bad & tracked
    uvz[bad] = np.nan
    return uvz, float(lost.sum() / max(tracked.sum(), 1))


def tracked_window(uvz: np.ndarray, has_depth: bool, config: WindowConfig) -> tuple[np.ndarray, float]:
    """A tracker's reference-camera window ``(N, L, 3)`` as TraceForge retargets it: sanitised
    (:func:`sanitize_window`), cut to ``config.window`` frames and smoothed along time by ``config.smooth_frames``
    (:func:`tracegen.traces.smooth_tracks`). Returns the window and the fraction of tracked rows lost."""
    uvz, lost = sanitize_window(uvz[:, : config.window], has_depth)
    return smooth_tracks(uvz, config.smooth_frames), lost


def clip_has_depth(clip) -> bool:
    """Whether a compensated clip's traces are 3D: metric depth and world points from the tracker."""
    return clip.depth is not None and clip.depth_metric and clip.tracks.world is not None


class Windows(StatelessStage):
    """Stage ``windows``: reference-camera tracks -> retargeted, filtered triplets (``clip.samples``), with every
    dropped window counted by reason in ``clip.dropped``."""

    name = "windows"

    def __init__(
        self,
        window: WindowConfig = WindowConfig(),
        trim_static: bool = True,
        static_speed: float = 0.002,
        max_invalid_fraction: float = 0.5,
    ):
        self.window, self.trim_static = window, trim_static
        self.static_speed, self.max_invalid_fraction = static_speed, max_invalid_fraction

    def process(self, clip):
        has_depth = clip_has_depth(clip)
        for _, f, uvz in self.candidates(clip):
            out = window_sample(clip, f, uvz, has_depth, self.window)
            if isinstance(out, str):
                clip.dropped[out.split(" (")[0]] += 1
            else:
                clip.samples.append(out)
        return clip

    def candidates(self, clip) -> list[tuple[int, int, np.ndarray]]:
        """``(q, frame, uvz)`` of every window that is neither in a static span nor degenerate, ``uvz`` as
        :func:`tracked_window` gives it; the others are counted in ``clip.dropped``."""
        queries = clip.tracks.query_frames
        drop_static = np.zeros(len(queries), bool)
        if self.trim_static:
            speed = robust_speeds(clip.reference, queries, clip.num_frames, self.window.retarget.top_fraction)
            threshold = self.static_speed * float(np.hypot(clip.height, clip.width))
            drop_static = static_span_queries(speed, queries, threshold, self.window.query_every)
        out, has_depth = [], clip_has_depth(clip)
        for q, f in enumerate(queries):
            if drop_static[q]:
                clip.dropped["static span"] += 1
                continue
            uvz, lost = tracked_window(clip.reference[q], has_depth, self.window)
            if lost > self.max_invalid_fraction:
                clip.dropped["degenerate window (most points non-finite or behind the camera)"] += 1
                continue
            out.append((q, int(f), uvz))
        return out


def retarget_frames(
    traj: np.ndarray, height: int, width: int, config: RetargetConfig = RetargetConfig()
) -> tuple[np.ndarray, int]:
    """The fractional frame index of every retargeted step of :func:`tracegen.traces.retarget` and the number of
    valid steps: ``retarget(traj).traj[:, :count]`` equals ``traj`` linearly interpolated at these frames.

    Evaluation uses it to resample the ground truth at exactly the times the estimated trace was resampled at.
    """
    import math

    from tracegen.traces import robust_speed

    speed = robust_speed(traj, height, width, config.top_fraction)
    arc = np.concatenate([[0.0], np.cumsum(speed)])
    total = arc[-1]
    if config.mode == "arc_step":
        count = min(int(math.floor(total / config.step)) + 1, config.max_steps)
        targets = config.step * np.arange(count, dtype=np.float64)
        targets[-1] = min(targets[-1], total)
    else:
        count = config.num_points
        targets = np.linspace(0.0, total, count)
    if traj.shape[1] == 1:
        return np.zeros(count), count
    idx = np.clip(np.searchsorted(arc, targets, side="right") - 1, 0, traj.shape[1] - 2)
    seg = speed[idx]
    alpha = np.divide(targets - arc[idx], seg, out=np.zeros_like(targets), where=seg > 0)
    return idx + alpha, count


def resample_frames(traj: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``traj (N, T, D)`` linearly interpolated at fractional frames ``(S,)`` -> ``(N, S, D)``."""
    i = np.clip(np.floor(frames).astype(int), 0, traj.shape[1] - 1)
    j = np.minimum(i + 1, traj.shape[1] - 1)
    a = (frames - i)[None, :, None]
    return traj[:, i] * (1 - a) + traj[:, j] * a
