"""Camera-motion compensation: every window's tracks as ``(u, v, z)`` in its query frame's camera at every step.

With world points (depth + cameras), each step is projected with the query frame's K and w2c
(:func:`tracegen.traces.world_to_reference`): a moving camera's video becomes "as if filmed by a static camera at
the query frame" (PAPER.md §2.3). A point's world position is held through frames where it has none.

Without depth the output is 2D-only (z = 0, masked later). A fixed camera needs no compensation; a moving camera
with known poses (e.g. from SfM) is compensated by **triangulating** each track from its visible observations as a
static point: a static scene then gives exactly static traces. Tracks that do not fit one static point (residual
above ``STATIC_RESIDUAL_PX``) move; in every frame they are lifted at the depth, in that frame's camera, of the
static points seen nearest to them (an approximation: exact for the camera's rotation, approximate for its
translation), and held where they were last seen while hidden.
"""

from __future__ import annotations

import numpy as np

from tracegen.forge.clip import Clip, ClipError, StatelessStage
from tracegen.geometry import invert_rigid, pixels_to_world, world_to_pixels
from tracegen.traces import world_to_reference

STATIC_RESIDUAL_PX = 2.0  # mean reprojection error (pixels) under which a track is one static point
MIN_PARALLAX_DEG = 1.0  # rays must span at least this angle to triangulate
MIN_KEPT = 0.6  # a static point explains at least this fraction of its observations


def hold_fill(X: np.ndarray) -> np.ndarray:
    """``X (N, L, D)`` with NaN steps filled by the last finite step (the first finite one before it).

    Rows that are NaN throughout stay NaN (points without a surface)."""
    X = X.copy()
    finite = np.isfinite(X).all(-1)  # (N, L)
    N, L = finite.shape
    idx = np.where(finite, np.arange(L)[None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = np.where(finite.any(1), finite.argmax(1), 0)
    idx = np.where(idx < 0, first[:, None], idx)
    return X[np.arange(N)[:, None], idx]


def triangulate(
    uv: np.ndarray, visible: np.ndarray, K: np.ndarray, w2c: np.ndarray, rounds: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Static 3D points of tracks ``uv (N, L, 2)`` seen (``visible (N, L)``) by cameras ``K (L, 3, 3)``,
    ``w2c (L, 4, 4)``: the point nearest to the viewing rays, refitted ``rounds`` times without the observations
    that reproject worse than ``STATIC_RESIDUAL_PX`` (tracker drift, lost points). Returns ``X (N, 3)`` world (NaN
    when the rays are too parallel) and the residual ``(N,)`` pixels: the mean reprojection error of the kept
    observations, or infinity when fewer than ``MIN_KEPT`` of them were kept (the point moves)."""
    c2w = invert_rigid(w2c)  # (L, 4, 4)
    centres = c2w[:, :3, 3]  # (L, 3)
    pixels = np.concatenate([np.nan_to_num(uv), np.ones(uv.shape[:-1] + (1,))], -1)  # (N, L, 3)
    rays = np.einsum("lij,nlj->nli", c2w[:, :3, :3] @ np.linalg.inv(K), pixels)  # world ray directions
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    seen = visible & np.isfinite(uv).all(-1)  # (N, L)
    w = seen.astype(np.float64)
    proj = np.eye(3) - rays[..., :, None] * rays[..., None, :]  # (N, L, 3, 3)
    X = np.full((len(uv), 3), np.nan)
    for _ in range(rounds):
        A = np.einsum("nl,nlij->nij", w, proj)
        b = np.einsum("nl,nlij,lj->ni", w, proj, centres)
        ok = (w.sum(1) >= 2) & (_ray_spread_deg(rays, w) >= MIN_PARALLAX_DEG)
        X[:] = np.nan
        if ok.any():
            X[ok] = np.linalg.solve(A[ok], b[ok][..., None])[..., 0]
        with np.errstate(invalid="ignore"):
            reproj = np.stack([world_to_pixels(X, K[t], w2c[t])[:, :2] for t in range(len(K))], 1)  # (N, L, 2)
            err = np.nan_to_num(np.linalg.norm(reproj - uv, axis=-1), nan=np.inf)
        w = (seen & (err < STATIC_RESIDUAL_PX)).astype(np.float64)
    kept = w.sum(1) / np.maximum(seen.sum(1), 1)
    residual = np.where(np.isfinite(err), err, 0.0)
    residual = (residual * w).sum(1) / np.maximum(w.sum(1), 1)
    return X, np.where(ok & (kept >= MIN_KEPT), residual, np.inf)


def _ray_spread_deg(rays: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Largest angle ``(N,)`` between a track's first visible ray and its others."""
    first = rays[np.arange(len(rays)), np.argmax(w > 0, axis=1)]  # (N, 3)
    cos = np.clip(np.einsum("nli,ni->nl", rays, first), -1, 1)
    return np.degrees(np.arccos(np.where(w > 0, cos, 1.0))).max(1)


class Compensate(StatelessStage):
    """Stage ``compensate``: ``clip.reference[q] (N, L_q, 3)`` from ``clip.tracks``."""

    name = "compensate"

    def process(self, clip: Clip) -> Clip:
        tr = clip.tracks
        if tr is None:
            raise ClipError("no tracks to compensate (the tracker stage did not run)")
        reference = []
        for q, f in enumerate(tr.query_frames):
            L = int(tr.lengths[q])
            if tr.world is not None:
                uvz = world_to_reference(hold_fill(tr.world[q, :, :L]), clip.K[f], clip.w2c[f])
            elif clip.has_cameras and not clip.camera_static:
                uvz = self._triangulated(clip, q, f, L)
            else:
                uvz = np.concatenate([tr.uv[q, :, :L], np.zeros((tr.uv.shape[1], L, 1))], -1)
            reference.append(uvz)
        clip.reference = reference
        return clip

    @staticmethod
    def _triangulated(clip: Clip, q: int, f: int, L: int) -> np.ndarray:
        tr = clip.tracks
        uv, vis = tr.uv[q, :, :L], tr.visible[q, :, :L]
        K, w2c = clip.K[f : f + L], clip.w2c[f : f + L]
        X, residual = triangulate(uv, vis, K, w2c)
        with np.errstate(invalid="ignore"):
            zq = world_to_pixels(X, clip.K[f], clip.w2c[f])[:, 2]  # (N,) depth in the query camera, NaN if none
            static = (residual < STATIC_RESIDUAL_PX) & (zq > 0)
        lifted = np.full(uv.shape[:2] + (3,), np.nan)  # (N, L, 3) moving tracks, lifted frame by frame
        z_default = float(np.median(zq[static])) if static.any() else 1.0
        for s in range(L):
            z = np.full(len(uv), z_default)
            ref = np.flatnonzero(static & vis[:, s])
            if len(ref):  # the depth, in camera s, of the static points seen nearest to each track in frame s
                z_ref = world_to_pixels(X[ref], K[s], w2c[s])[:, 2]
                d = np.linalg.norm(uv[:, s, None] - uv[None, ref, s], axis=-1)  # (N, R)
                nearest = np.argsort(d, axis=1)[:, : min(8, len(ref))]
                z = np.median(z_ref[nearest], axis=1)
            lifted[:, s] = pixels_to_world(np.concatenate([np.nan_to_num(uv[:, s]), z[:, None]], 1), K[s], w2c[s])
        lifted[~vis] = np.nan  # hidden or out of view: the last seen world position is held
        lifted = hold_fill(lifted)
        world = np.where(static[:, None, None], X[:, None, :], lifted)
        uvz = world_to_reference(world, clip.K[f], clip.w2c[f])
        uvz[..., 2] = 0.0  # SfM units are not metres: 2D-only
        clip.info["triangulated_static_fraction"] = round(float(static.mean()), 3)
        return uvz
