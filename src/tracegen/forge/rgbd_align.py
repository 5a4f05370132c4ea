"""Dense RGB-D refinement of a moving camera's poses: every frame's depth map is aligned to its neighbours' with
robust point-to-plane ICP (projective association, as in KinectFusion), starting from structure from motion.

SfM on small, low-parallax frames leaves each pose a few tenths of a degree off (0.37 deg median on the moving-camera
benchmark, after :func:`tracegen.forge.sfm.refine_with_depth`); at a metre that is over half a centimetre, the
largest error in a moving camera's traces. With metric depth every pixel is a constraint: aligning each frame to
several others, near and far in time (``NEIGHBOURS``), pins the poses down to the depth's own accuracy (0.01 deg
there; docs/BENCHMARKS.md).

The method, per sweep, frame by frame (Gauss--Seidel): the frame's sampled surface points ``P`` (its own camera)
are moved into each reference camera with the current poses, projected, and paired with the reference's surface
point ``Q`` and normal ``n`` at that pixel; one Gauss--Newton step on the point-to-plane residuals ``n . (M P - Q)``
(Cauchy-weighted; pairs further apart than ``max_pair_m`` dropped: the moving arm, disocclusions) updates the
frame's pose while the others hold still. Pixels at depth edges are never paired (their normals are meaningless).

Why not one joint Gauss--Newton step over all poses: on the benchmark it reached lower residuals but worse poses
(0.07 deg median against 0.02 with the same pairs), sliding along what a table-top scene barely constrains (a turn
about the table's normal); the per-frame steps, each from a pose SfM already placed, do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracegen.forge.depth import depth_normals, neighbour_jump
from tracegen.geometry import invert_rigid, project, transform_points, unproject

NEIGHBOURS = (1, 4, 16, 48)  # each frame is aligned to the frames this many steps before and after it


@dataclass
class _Frame:
    """One frame's surface: points ``P (H, W, 3)`` metres and unit normals ``N (H, W, 3)`` in its camera (float32:
    long, large clips stay in memory), ``ok (H, W)`` where both are usable, and the sampled points ``samples (n, 3)``
    (float64) it contributes as the moving side."""

    P: np.ndarray
    N: np.ndarray
    ok: np.ndarray
    samples: np.ndarray


def _frame_surface(depth: np.ndarray, K: np.ndarray, stride: int, edge_rel: float = 0.02) -> _Frame:
    """The :class:`_Frame` of ``depth (H, W)`` metres; pixels next to a relative depth jump > ``edge_rel`` are
    left out."""
    H, W = depth.shape
    d = depth.astype(np.float64)
    v, u = np.mgrid[0:H, 0:W]
    P = unproject(np.stack([u, v], -1).reshape(-1, 2), d.reshape(-1), K).reshape(H, W, 3)
    N = depth_normals(d, K)
    ok = (d > 0) & np.isfinite(d) & (neighbour_jump(d) <= edge_rel * np.maximum(d, 1e-6)) & (np.abs(N).sum(-1) > 0)
    ok[[0, -1]] = ok[:, [0, -1]] = False  # normals need both neighbours
    grid = np.zeros((H, W), bool)
    grid[stride // 2 :: stride, stride // 2 :: stride] = True
    return _Frame(P.astype(np.float32), N.astype(np.float32), ok, P[grid & ok])


def align_depth(
    depth: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    known: np.ndarray | None = None,
    sweeps: int = 20,
    stride: int = 6,
    max_pair_m: float = 0.03,
    scale_m: float = 0.003,
    neighbours: tuple[int, ...] = NEIGHBOURS,
) -> tuple[np.ndarray, dict]:
    """Refined ``w2c (T, 4, 4)`` for ``depth (T, H, W)`` metres with intrinsics ``K (T, 3, 3)``, starting from
    ``w2c``. ``known (T,)``: frames whose starting pose is measured (SfM registered them); the frames before the
    first and after the last known one are first tracked from their neighbour (odometry), because held poses can
    be degrees off. Returns the poses and statistics: the median point-to-plane residual in mm met by the first
    sweep and by the last (each frame's, before its step). Should the sweeps not lower it, the starting poses are
    returned (``icp_kept_start``).

    No frame is held: the poses are free up to a common rigid motion, which the traces (relative to each window's
    query camera) do not see; holding one frame would make the rest of the clip follow its error only slowly.
    The sweeps run to a fixed count: convergence is geometric (a tenth of the error every few sweeps) until the
    whole clip drifts together by ~1e-5 per sweep, which nothing measures."""
    T = len(depth)
    if (
        depth.ndim != 3
        or T == 0
        or K.shape != (T, 3, 3)
        or np.shape(w2c) != (T, 4, 4)
        or (known is not None and np.shape(known) != (T,))
    ):
        raise ValueError(
            f"align_depth needs depth (T, H, W) with T >= 1, K (T, 3, 3), w2c (T, 4, 4) and known (T,); "
            f"got {depth.shape}, {K.shape}, {np.shape(w2c)} and {np.shape(known)}"
        )
    frames = [_frame_surface(depth[t], K[t], stride) for t in range(T)]
    c2w = invert_rigid(np.asarray(w2c, np.float64))
    refs = [[t + s * o for s in (-1, 1) for o in neighbours if 0 <= t + s * o < T] for t in range(T)]
    known = np.ones(T, bool) if known is None or not np.any(known) else np.asarray(known, bool)
    first, last = int(np.argmax(known)), int(T - 1 - np.argmax(known[::-1]))
    ready = np.zeros(T, bool)
    ready[first : last + 1] = True
    for t in [*range(last + 1, T), *range(first - 1, -1, -1)]:  # odometry outwards from the known span
        previous = t - 1 if t > last else t + 1
        c2w[t] = c2w[previous]
        for _ in range(10):
            delta, _ = _frame_step(
                frames, K, c2w, t, [j for j in refs[t] if ready[j]] or [previous], max_pair_m, scale_m
            )
            c2w[t] = c2w[t] @ delta
        ready[t] = True
    medians = np.full((max(sweeps, 1), T), np.nan)  # (sweep, frame) median absolute residual, metres
    for sweep in range(sweeps):
        for t in range(T):
            delta, medians[sweep, t] = _frame_step(frames, K, c2w, t, refs[t], max_pair_m, scale_m)
            c2w[t] = c2w[t] @ delta
    before, after = (
        float(np.median(m[np.isfinite(m)])) if np.isfinite(m).any() else float("nan") for m in (medians[0], medians[-1])
    )
    kept = bool(np.isfinite(before) and not after < before)  # no better (or diverged): keep what we were given
    stats = {
        k: round(1000 * v, 4) if np.isfinite(v) else None
        for k, v in {"icp_residual_mm_before": before, "icp_residual_mm_after": after}.items()
    }
    return (np.asarray(w2c, np.float64).copy() if kept else invert_rigid(c2w)), {**stats, "icp_kept_start": kept}


def _frame_step(
    frames: list[_Frame], K: np.ndarray, c2w: np.ndarray, t: int, refs: list[int], max_pair_m: float, scale_m: float
) -> tuple[np.ndarray, float]:
    """One Gauss--Newton step for frame ``t`` against ``refs`` held still: the increment ``(4, 4)`` to right-multiply
    onto its camera-to-world (identity when it is unconstrained), and its median absolute residual (metres)."""
    H6, g6, residuals = np.zeros((6, 6)), np.zeros(6), []
    for j in refs:
        pair = _pair_terms(frames[t], frames[j], K[j], invert_rigid(c2w[j]) @ c2w[t], max_pair_m)
        if pair is None:
            continue
        res, J = pair
        w = 1.0 / (1.0 + (res / scale_m) ** 2)  # Cauchy: the moving arm, disocclusions
        H6 += (J * w[:, None]).T @ J
        g6 += (J * w[:, None]).T @ res
        residuals.append(np.abs(res))
    if not residuals or not np.isfinite(H6).all() or np.trace(H6) <= 0:
        return np.eye(4), float("nan")
    # a whisker of damping: directions the depth leaves free (a plane's slide) get no step, the others theirs
    step = -np.linalg.solve(H6 + 1e-9 * np.trace(H6) * np.eye(6), g6)
    return _exp_se3(step), float(np.median(np.concatenate(residuals)))


def _pair_terms(
    frame: _Frame, ref: _Frame, K_ref: np.ndarray, M: np.ndarray, max_pair_m: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Point-to-plane residuals ``(m,)`` metres of ``frame``'s samples against ``ref``'s surface, with ``M`` taking
    ``frame``'s camera to ``ref``'s, and their Jacobian ``(m, 6)`` with respect to ``frame``'s pose (a twist
    ``(omega, v)`` right-multiplied onto its camera-to-world); None when fewer than 12 points pair up."""
    P = frame.samples
    R = M[:3, :3]
    X = transform_points(M, P)  # (n, 3) in ref's camera
    h, w = ref.ok.shape
    uv, z = project(X, K_ref)
    c, r = np.rint(uv[:, 0]), np.rint(uv[:, 1])
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero((z > 1e-6) & (c >= 0) & (c < w) & (r >= 0) & (r < h))
    ci, ri = c[idx].astype(int), r[idx].astype(int)
    keep = ref.ok[ri, ci]
    idx, ci, ri = idx[keep], ci[keep], ri[keep]
    diff = X[idx] - ref.P[ri, ci]  # float64 - float32 -> float64
    close = np.linalg.norm(diff, axis=1) < max_pair_m
    idx, n, diff = idx[close], ref.N[ri[close], ci[close]], diff[close]
    if len(idx) < 12:
        return None
    n = n.astype(np.float64)
    n_frame = n @ R  # the normals in frame's camera
    return (n * diff).sum(1), np.concatenate([np.cross(P[idx], n_frame), n_frame], 1)


def _exp_se3(xi: np.ndarray) -> np.ndarray:
    """The rigid motion ``(4, 4)`` of a small twist ``xi = (omega, v)``: rotation vector omega, translation v."""
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = cv2.Rodrigues(np.asarray(xi[:3], np.float64))[0], xi[3:]
    return out
