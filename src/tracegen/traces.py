"""The trace space: query grid, camera-motion compensation, speed retargeting, the model's target encoding, filters.

A *trace* follows the points of a query grid laid on a reference image (20x20 by default, row-major: index =
row * G + col) and records every point, at every step, as ``(u, v, z)`` in the **reference** camera: ``u, v`` pixels
(integer pixel centres, see :mod:`tracegen.geometry`) and ``z`` metres of planar depth along the reference optical
axis. Arrays are **point-major**, as in the official TraceGen files: ``traj (N, T, 3)``.

Steps are not video frames: :func:`retarget` re-parameterises time by the arc length of the fastest 2 % of the
scene, so that a human and a robot doing the same motion at different speeds give the same trace. Only the first
``L + 1 = 33`` retargeted points go to the model, encoded by :func:`encode_deltas` as per-step increments of
``(u / W, v / H, z)`` divided by ``(0.05, 0.05, 0.04)`` and clamped to [-1, 1]; :func:`decode_deltas` is its inverse.

**2D-only traces** (no depth anywhere) keep the same layout with ``D = 2`` or with a ``has_depth=False`` flag: their
z channel is masked out of the target (zero deltas, mask False), and decoding them returns ``z = NaN`` because
there is no metric depth to anchor it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tracegen.geometry import array_namespace, pixels_to_world, world_to_pixels

DEFAULT_GRID = 20
DEFAULT_HORIZON = 32  # L: future steps the model predicts (L + 1 points per track)
DELTA_SCALE = np.array([0.05, 0.05, 0.04])  # per-step normalisation of (u / W, v / H, z metres)


# --- query grid


def grid_points(height: int, width: int, grid: int = DEFAULT_GRID) -> np.ndarray:
    """Query pixels ``(grid * grid, 2)`` float64 ``(u, v)``: linspace(0, W - 1) x linspace(0, H - 1), row-major."""
    u = np.linspace(0.0, width - 1.0, grid)
    v = np.linspace(0.0, height - 1.0, grid)
    uu, vv = np.meshgrid(u, v, indexing="xy")  # (grid rows = v, grid cols = u)
    return np.stack([uu.ravel(), vv.ravel()], -1)


def grid_pixel_indices(height: int, width: int, grid: int = DEFAULT_GRID) -> tuple[np.ndarray, np.ndarray]:
    """Nearest integer ``(rows, cols)`` ``(N,)`` of the query grid, for sampling depth or segmentation maps."""
    uv = np.rint(grid_points(height, width, grid)).astype(np.int64)
    return uv[:, 1], uv[:, 0]


def grid_start_depth(depth: np.ndarray, grid: int = DEFAULT_GRID) -> np.ndarray:
    """``(..., N)`` float64 metres of ``depth (..., H, W)`` at the query grid; 0 (no measurement) becomes NaN."""
    rows, cols = grid_pixel_indices(*depth.shape[-2:], grid)
    z = depth[..., rows, cols].astype(np.float64)
    return np.where(z > 0, z, np.nan)


def static_grid(height: int, width: int, depth: np.ndarray | None = None, grid: int = DEFAULT_GRID) -> np.ndarray:
    """``(N, 3)`` ``(u, v, z)`` of the query grid standing still: z read from ``depth (H, W)`` at the grid (0 if None).

    Used for grid points that have no track (e.g. rays that hit no surface): the official files keep every point.
    """
    out = np.zeros((grid * grid, 3))
    out[:, :2] = grid_points(height, width, grid)
    if depth is not None:
        rows, cols = grid_pixel_indices(height, width, grid)
        out[:, 2] = depth[rows, cols]
    return out


# --- camera motion


def world_to_reference(X_world: np.ndarray, K_ref: np.ndarray, w2c_ref: np.ndarray) -> np.ndarray:
    """World tracks ``(N, T, 3)`` metres -> ``uvz (N, T, 3)`` in the fixed reference camera at every step.

    Projecting every step with the reference frame's K and w2c removes camera ego-motion: a moving camera's video
    becomes "as if filmed by a static camera at the reference frame".
    """
    return world_to_pixels(np.asarray(X_world, dtype=np.float64), K_ref, w2c_ref)


def compensate(uvz: np.ndarray, K: np.ndarray, w2c: np.ndarray, ref: int = 0) -> np.ndarray:
    """Tracks observed in each frame's own camera -> the reference frame's camera.

    Args:
        uvz: ``(N, T, 3)`` pixels and planar depth of every point in frame t's camera.
        K: ``(T, 3, 3)`` per-frame intrinsics.  w2c: ``(T, 4, 4)`` per-frame world->camera.
        ref: index of the reference frame.
    Returns:
        ``(N, T, 3)`` ``(u, v, z)`` in camera ``ref``.
    """
    uvz_tn = np.swapaxes(np.asarray(uvz, dtype=np.float64), 0, 1)  # (T, N, 3)
    X_world = pixels_to_world(uvz_tn, np.asarray(K, np.float64), np.asarray(w2c, np.float64))  # (T, N, 3)
    return world_to_reference(np.swapaxes(X_world, 0, 1), K[ref], w2c[ref])


# --- retargeting


@dataclass(frozen=True)
class RetargetConfig:
    """Speed retargeting settings. ``mode="arc_step"`` is the official code; ``"fixed_count"`` the paper's text."""

    mode: Literal["arc_step", "fixed_count"] = "arc_step"
    step: float = 0.05  # arc-length step in normalised (u / (W-1), v / (H-1), z) units  (arc_step)
    max_steps: int = 128  # cap on the number of retargeted points                       (arc_step)
    num_points: int = DEFAULT_HORIZON + 1  # points spread evenly over the whole arc       (fixed_count)
    top_fraction: float = 0.02  # robust speed = mean segment length of the fastest 2 % of points


@dataclass
class Retargeted:
    """A retargeted trace. ``traj (N, S, D)`` is padded by repeating the last valid point; ``valid_steps (S,)``."""

    traj: np.ndarray
    valid_steps: np.ndarray

    @property
    def num_valid(self) -> int:
        return int(self.valid_steps.sum())


def robust_speed(
    traj: np.ndarray, height: int, width: int, top_fraction: float = 0.02, clip: bool = True
) -> np.ndarray:
    """Per-segment speed ``(T - 1,)`` of the fastest ``top_fraction`` of tracks, in normalised units.

    Segments are measured in ``(u / (W - 1), v / (H - 1), z)`` with u, v clipped to the image (``clip``), as in the
    official code.
    """
    n = _normalise_for_arc(traj, height, width, clip)
    seg = np.linalg.norm(np.diff(n, axis=1), axis=-1)  # (N, T-1)
    k = max(1, math.ceil(top_fraction * len(n)))
    return np.sort(seg, axis=0)[-k:].mean(0) if seg.shape[1] else np.zeros(0)


def _normalise_for_arc(traj: np.ndarray, height: int, width: int, clip: bool = True) -> np.ndarray:
    n = np.array(traj, dtype=np.float64, copy=True)
    n[..., 0] /= width - 1
    n[..., 1] /= height - 1
    if clip:
        n[..., :2] = np.clip(n[..., :2], 0.0, 1.0)
    return n


def retarget(traj: np.ndarray, height: int, width: int, config: RetargetConfig = RetargetConfig()) -> Retargeted:
    """Re-parameterise a time-domain trace ``(N, T, D)`` (D = 3: u, v px, z m; D = 2: u, v) by robust arc length.

    ``arc_step`` (official): targets every ``step`` along the cumulative robust speed, at most ``max_steps``; all
    tracks are resampled at the *same* fractional frame indices. The output has ``max_steps`` points; those past
    the valid count repeat the last valid point. ``fixed_count``: ``num_points`` targets spread evenly from 0 to the
    total arc length, all valid. Pixel coordinates come back clipped to the image, as in the official code.
    """
    traj = np.asarray(traj, dtype=np.float64)
    if traj.ndim != 3 or traj.shape[-1] not in (2, 3) or traj.shape[1] < 1:
        raise ValueError(f"retarget expects a trace of shape (N, T, 2|3) with T >= 1, got {traj.shape}")
    if not np.isfinite(traj).all():
        raise ValueError("retarget expects finite trace values (fill or drop missing points first)")
    n = _normalise_for_arc(traj, height, width)
    speed = robust_speed(traj, height, width, config.top_fraction)  # (T-1,)
    arc = np.concatenate([[0.0], np.cumsum(speed)])  # (T,)
    total = arc[-1]
    if config.mode == "arc_step":
        count = min(int(math.floor(total / config.step)) + 1, config.max_steps)
        targets = config.step * np.arange(count, dtype=np.float64)
        targets[-1] = min(targets[-1], total)
        size = config.max_steps
    elif config.mode == "fixed_count":
        count = size = config.num_points
        targets = np.linspace(0.0, total, count)
    else:
        raise ValueError(f"unknown retarget mode {config.mode!r}; use 'arc_step' or 'fixed_count'")

    out = _resample_at_arc(n, arc, speed, targets)  # (N, count, D)
    out[..., 0] *= width - 1
    out[..., 1] *= height - 1
    padded = np.concatenate([out, np.repeat(out[:, -1:], size - count, axis=1)], axis=1)
    valid = np.zeros(size, dtype=bool)
    valid[:count] = True
    return Retargeted(padded, valid)


def _resample_at_arc(n: np.ndarray, arc: np.ndarray, speed: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear interpolation of all tracks at the frame positions where the arc length reaches each target."""
    if n.shape[1] == 1:
        return np.repeat(n, len(targets), axis=1)
    idx = np.clip(np.searchsorted(arc, targets, side="right") - 1, 0, n.shape[1] - 2)
    seg = speed[idx]
    alpha = np.divide(targets - arc[idx], seg, out=np.zeros_like(targets), where=seg > 0)  # zero speed: stay put
    return n[:, idx] + alpha[None, :, None] * (n[:, idx + 1] - n[:, idx])


def smooth_tracks(traj: np.ndarray, sigma: float, truncate: float = 3.0) -> np.ndarray:
    """Tracks ``(N, T, D)`` smoothed along time by a Gaussian of ``sigma`` frames, their end points anchored.

    Tracker jitter adds to the summed frame-to-frame arc length that :func:`retarget` steps along; smoothing first
    removes most of it. Each track is extended past both ends by its point reflection about the end sample
    (``2 x_0 - x_k``): the first and last samples stay exactly where they are (the first is the query point) and
    a constant velocity passes unchanged, ends included. A sample is missing when any coordinate is non-finite:
    gaps are bridged linearly (held before the first and after the last valid sample) for smoothing, and missing
    samples come back as they were. ``sigma <= 0`` returns a copy. Returns ``(N, T, D)`` float64.
    """
    traj = np.array(traj, dtype=np.float64)
    T = traj.shape[1]
    radius = min(math.ceil(truncate * sigma), T - 1)
    if sigma <= 0 or radius < 1:
        return traj
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    missing = ~np.isfinite(traj).all(-1)  # (N, T)
    filled, gaps = traj.copy(), missing.any(1) & ~missing.all(1)  # rows missing throughout stay as they are
    if gaps.any():
        filled[gaps] = _bridge_gaps(traj[gaps], missing[gaps])
    ahead = 2 * filled[:, :1] - filled[:, radius:0:-1]
    behind = 2 * filled[:, -1:] - filled[:, -2 : -radius - 2 : -1]
    extended = np.concatenate([ahead, filled, behind], axis=1)  # (N, T + 2 radius, D)
    out = kernel[0] * extended[:, :T]
    for k in range(1, len(kernel)):
        out += kernel[k] * extended[:, k : k + T]
    out[:, [0, -1]] = filled[:, [0, -1]]  # exact, not up to rounding
    out[missing] = traj[missing]
    return out


def _bridge_gaps(traj: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``traj (N, T, D)`` with its ``missing (N, T)`` samples linearly interpolated between the valid samples around
    them, held before the first and after the last; rows with no valid sample stay non-finite."""
    T = traj.shape[1]
    t = np.arange(T)[None]
    prev = np.maximum.accumulate(np.where(missing, -1, t), axis=1)  # (N, T) last valid index at or before t
    nxt = np.minimum.accumulate(np.where(missing, T, t)[:, ::-1], axis=1)[:, ::-1]  # first valid at or after t
    prev, nxt = np.where(prev < 0, nxt, prev), np.where(nxt >= T, prev, nxt)
    prev, nxt = np.minimum(prev, T - 1), np.minimum(nxt, T - 1)  # rows with no valid sample: any index
    rows = np.arange(len(traj))[:, None]
    span = np.maximum(nxt - prev, 1)
    a = np.where(nxt > prev, (t - prev) / span, 0.0)[..., None]  # (N, T, 1); 0 at valid and held samples
    with np.errstate(invalid="ignore"):
        return traj[rows, prev] * (1 - a) + traj[rows, nxt] * a


def forward_fill(traj: np.ndarray, valid_steps: np.ndarray) -> np.ndarray:
    """Replace every step after the last valid one by the last valid point (``traj (N, S, D)``, ``valid (S,)``)."""
    valid_steps = np.asarray(valid_steps, dtype=bool)
    if not valid_steps.any():
        raise ValueError("a trace needs at least one valid step")
    last = int(np.flatnonzero(valid_steps)[-1])
    out = np.array(traj, copy=True)
    out[:, last + 1 :] = out[:, last : last + 1]
    return out


def restore_speed(
    traj: np.ndarray, height: int, width: int, config: RetargetConfig = RetargetConfig(), min_fraction: float = 0.25
) -> np.ndarray:
    """A generated trace ``(N, S, 3)`` (u, v px; z m) with the speed every retargeted trace has, restored.

    In a retargeted trace the fastest ``top_fraction`` of points advance ``config.step`` normalised units at every
    valid step (:func:`retarget`). A model that averages over what it is unsure of (where exactly, how soon) predicts
    shorter steps in roughly the right direction. This rescales every step whose robust speed reaches ``min_fraction``
    of ``config.step`` to exactly ``config.step`` (all points of that step alike, so the scene's relative motion is
    kept); slower steps -- the end of the motion, or noise -- are left as they are. The start is unchanged; unknown
    depths (NaN z) stay unknown. Speeds are measured without clipping to the image (so that they scale with the
    steps); points that leave the image are not brought back.
    """
    traj = np.asarray(traj, dtype=np.float64)
    known = np.where(np.isfinite(traj), traj, 0.0)  # unknown depth (NaN z) adds no speed; it stays NaN below
    speed = robust_speed(known, height, width, config.top_fraction, clip=False)  # (S - 1,): scales linearly
    moving = speed >= min_fraction * config.step
    factor = np.where(moving, config.step / np.where(moving, speed, 1.0), 1.0)  # (S - 1,)
    steps = np.diff(traj, axis=1) * factor[None, :, None]
    return np.concatenate([traj[:, :1], traj[:, :1] + np.cumsum(steps, axis=1)], axis=1)


# --- target encoding


def encode_deltas(
    traj: np.ndarray,
    valid_steps: np.ndarray,
    height: int,
    width: int,
    horizon: int = DEFAULT_HORIZON,
    has_depth: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's target: normalised per-step increments of the first ``horizon + 1`` points.

    Args:
        traj: ``(N, S, 3)`` retargeted ``(u px, v px, z m)`` (``(N, S, 2)`` for 2D-only); S may be shorter or longer
            than ``horizon + 1`` (shorter traces are padded with their last point and masked).
        valid_steps: ``(S,)`` bool.
        has_depth: False for 2D-only traces: the z channel is zeroed and masked.
    Returns:
        ``x (N, horizon, 3)`` float32 in [-1, 1] = clamp(Δ(u/W, v/H, z) / (0.05, 0.05, 0.04)), and
        ``mask (N, horizon, 3)`` bool, True where the increment ends on a valid step (and, for z, depth exists).
    """
    traj = np.asarray(traj, dtype=np.float64)
    valid = np.asarray(valid_steps, dtype=bool)
    if traj.shape[-1] == 2:
        traj, has_depth = np.concatenate([traj, np.zeros(traj.shape[:-1] + (1,))], -1), False
    steps = horizon + 1
    if traj.shape[1] < steps:
        pad = steps - traj.shape[1]
        traj = np.concatenate([traj, np.repeat(traj[:, -1:], pad, axis=1)], 1)
        valid = np.concatenate([valid, np.zeros(pad, dtype=bool)])
    traj, valid = forward_fill(traj[:, :steps], valid[:steps]), valid[:steps]
    norm = traj / np.array([width, height, 1.0])
    x = np.clip(np.diff(norm, axis=1) / DELTA_SCALE, -1.0, 1.0)  # (N, horizon, 3)
    mask = np.broadcast_to(valid[1:, None], x.shape).copy()
    if not has_depth:
        x[..., 2] = 0.0
        mask[..., 2] = False
    return x.astype(np.float32), mask


def decode_deltas(x, start_uv, start_z, height: int, width: int):
    """Inverse of :func:`encode_deltas`: ``x (..., N, L, 3)`` normalised increments -> ``(..., N, L + 1, 3)`` trace.

    ``start_uv (..., N, 2)`` pixels is the query grid; ``start_z (..., N)`` metres is the depth at the grid (from the
    observation's depth map), or ``None`` for 2D-only predictions, whose z comes back as NaN. Works on numpy arrays
    and torch tensors alike.
    """
    xp = array_namespace(x)
    scale = DELTA_SCALE * np.array([width, height, 1.0])  # back to pixels and metres
    if xp is not np:
        scale = x.new_tensor(scale)
    if start_z is None:
        start_z = start_uv[..., 0] * float("nan")
    broadcast = np.broadcast_arrays if xp is np else xp.broadcast_tensors
    start = xp.stack(broadcast(start_uv[..., 0], start_uv[..., 1], start_z), -1)[..., None, :]  # (..., N, 1, 3)
    path = start + (x * scale).cumsum(-2)  # (..., N, L, 3)
    return xp.concatenate([start + xp.zeros_like(path[..., :1, :]), path], -2)  # start broadcast to the batch


# --- filters


def official_filter_reason(
    traj: np.ndarray,
    valid_steps: np.ndarray,
    height: int,
    width: int,
    min_valid_steps: int = 4,
    min_track_motion: float = 0.1,
) -> str | None:
    """Why a retargeted sample fails the official TraceGen sample filters, or None when it passes.

    Kept samples have more than 3 valid steps and at least one track whose summed ``|Δu| / W + |Δv| / H`` over all
    valid steps exceeds 0.1 (a tenth of the image).
    """
    valid = np.asarray(valid_steps, dtype=bool)
    if len(traj) == 0:
        return "no keypoints"
    if valid.sum() < min_valid_steps:
        return f"too few valid steps ({int(valid.sum())} < {min_valid_steps})"
    last = int(np.flatnonzero(valid)[-1])
    d = np.abs(np.diff(np.asarray(traj, np.float64)[:, : last + 1, :2], axis=1)) / np.array([width, height])
    motion = d.sum(axis=(1, 2))  # (N,)
    if motion.max(initial=0.0) <= min_track_motion:
        return f"no track moves more than {min_track_motion} of the image (max {motion.max(initial=0.0):.3f})"
    return None
