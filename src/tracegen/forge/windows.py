"""From reference-camera tracks of one query frame to a training triplet: window, retarget, filter.

This is the last stage every trace source shares (a tracker's output after compensation, or the simulator's exact
ground truth): cut a window of up to ``window`` frames after the query frame, retarget it by speed, apply the
official sample filters, and package the observation, trace and instructions as a :class:`TraceSample`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from tracegen.io.episode import Episode
from tracegen.io.trace_dataset import TraceSample
from tracegen.traces import DEFAULT_GRID, RetargetConfig, official_filter_reason, retarget, static_grid


@dataclass(frozen=True)
class WindowConfig:
    """How query frames become samples (defaults: the paper's)."""

    grid: int = DEFAULT_GRID  # G: a G x G query grid
    query_every: int = 5  # a query frame every 5 frames
    window: int = 128  # frames followed after each query frame (including it)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    apply_filters: bool = True  # the official sample filters (valid steps > 3, some track moving > 0.1)

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
    uvz = np.array(uvz[:, : config.window], dtype=np.float64)
    uvz = _fill_untracked(uvz, H, W, ep.depth[frame] if ep.depth is not None else None, config.grid)
    if not has_depth:
        uvz[..., 2] = 0.0
    if uvz.shape[1] < 2:
        return "window shorter than two frames"
    result = retarget(uvz if has_depth else uvz[..., :2], H, W, config.retarget)
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
