"""Depth stages: per-frame planar depth ``(T, H, W)`` metres for lifting tracks to 3D.

* ``sensor``: the source's depth (simulator, RGB-D camera); fails when there is none.
* ``none``: no depth. Traces come out 2D-only (z masked); a moving camera is still compensated when its poses are
  known (tracks are triangulated, see :mod:`tracegen.forge.compensate`).
* ``vggt`` / ``da3`` / ``moge``: learned monocular depth from local weights (:mod:`tracegen.forge.learned`). When
  the source also has sensor depth, the prediction is rescaled to it (:func:`median_ratio_scale`, PAPER.md §3.3).
* ``auto``: ``sensor`` when the source has depth, else ``none``.

Edge cleaning (:func:`clean_depth_edges`, PAPER.md §3.3) replaces "flying pixels" -- pixels that are both a depth
edge and a normal edge -- by the nearest clean depth. ``clean_edges = auto`` applies it to predicted depth only:
simulator depth has no flying pixels, and cleaning it would move exact depths.
"""

from __future__ import annotations

import cv2
import numpy as np

from tracegen.forge.clip import Clip, ClipError, StatelessStage
from tracegen.forge.config import DepthConfig


def median_ratio_scale(predicted: np.ndarray, sensor: np.ndarray) -> float:
    """Factor taking ``predicted (T, H, W)`` depth to the units of ``sensor`` depth: per frame,
    median(sensor) / median(predicted) over pixels valid in both, averaged over frames (PAPER.md §3.3)."""
    ratios = []
    for p, s in zip(predicted, sensor, strict=True):
        ok = (p > 0) & (s > 0) & np.isfinite(p) & np.isfinite(s)
        if ok.sum() >= 16:
            ratios.append(float(np.median(s[ok]) / np.median(p[ok])))
    if not ratios:
        raise ClipError("cannot rescale predicted depth: no pixel has both a prediction and a sensor measurement")
    return float(np.mean(ratios))


def depth_normals(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Unit normals ``(H, W, 3)`` of the surface seen in ``depth (H, W)`` (camera frame; 0 where undefined)."""
    H, W = depth.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    X = np.stack([(u - K[0, 2]) * depth / K[0, 0], (v - K[1, 2]) * depth / K[1, 1], depth], -1)
    dx = np.zeros_like(X)
    dy = np.zeros_like(X)
    dx[:, 1:-1] = X[:, 2:] - X[:, :-2]
    dy[1:-1] = X[2:] - X[:-2]
    n = np.cross(dx, dy)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def neighbour_jump(depth: np.ndarray) -> np.ndarray:
    """``(H, W)`` the largest absolute depth difference of each pixel to its 4-neighbours (NaN neighbours ignored)."""
    d = np.asarray(depth)
    H, W = d.shape
    pad = np.pad(d, 1, mode="edge")
    jump = np.zeros((H, W), d.dtype)
    for dy, dx in ((0, 1), (1, 0), (2, 1), (1, 2)):
        jump = np.fmax(jump, np.abs(pad[dy : dy + H, dx : dx + W] - d))
    return jump


def edge_mask(depth: np.ndarray, K: np.ndarray, rel_tol: float = 0.08, normal_deg: float = 15.0) -> np.ndarray:
    """``(H, W)`` True at pixels that are both a depth edge (relative jump > ``rel_tol`` to a 4-neighbour) and a
    normal edge (angle > ``normal_deg`` to a 4-neighbour's normal)."""
    d = depth.astype(np.float32)
    n = depth_normals(d, K)
    pad_n = np.pad(n, ((1, 1), (1, 1), (0, 0)), mode="edge")
    cos_max = np.cos(np.radians(normal_deg))
    H, W = d.shape
    normal_edge = np.zeros((H, W), bool)
    for dy, dx in ((0, 1), (1, 0), (2, 1), (1, 2)):
        normal_edge |= (pad_n[dy : dy + H, dx : dx + W] * n).sum(-1) < cos_max
    depth_edge = neighbour_jump(d) > rel_tol * np.maximum(d, 1e-6)
    return depth_edge & normal_edge & (d > 0)


def clean_depth_edges(depth: np.ndarray, K: np.ndarray, rel_tol: float = 0.08, normal_deg: float = 15.0) -> np.ndarray:
    """``depth (H, W)`` with every edge pixel (:func:`edge_mask`) replaced by the nearest non-edge depth."""
    edges = edge_mask(depth, K, rel_tol, normal_deg)
    if not edges.any():
        return depth
    _, labels = cv2.distanceTransformWithLabels(
        (~edges).astype(np.uint8) ^ 1, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    clean = np.flatnonzero(~edges.ravel())
    # labels number the zero pixels (the clean ones) in raster order, starting at 1
    source = clean[labels.ravel() - 1]
    return depth.ravel()[source].reshape(depth.shape).astype(depth.dtype)


def clean_clip_depth(clip: Clip, cfg: DepthConfig) -> None:
    K = clip.K if clip.K is not None else None
    if K is None:
        from tracegen.forge.camera import default_intrinsics

        K = np.repeat(default_intrinsics(clip.height, clip.width)[None], clip.num_frames, 0)
    clip.depth = np.stack(
        [clean_depth_edges(d, k, cfg.edge_rel_tol, cfg.edge_normal_deg) for d, k in zip(clip.depth, K, strict=True)]
    )


class SensorDepth(StatelessStage):
    name = "depth"

    def __init__(self, cfg: DepthConfig = DepthConfig()):
        self.cfg = cfg

    def process(self, clip: Clip) -> Clip:
        if clip.depth is None:
            raise ClipError("the source has no depth; use --depth none (2D-only traces) or a learned depth model")
        if self.cfg.clean_edges == "on":
            clean_clip_depth(clip, self.cfg)
        clip.depth_metric = True
        clip.info["depth"] = "sensor"
        return clip


class NoDepth(StatelessStage):
    name = "depth"

    def process(self, clip: Clip) -> Clip:
        clip.depth, clip.depth_metric = None, False
        clip.info["depth"] = "none (2D-only traces)"
        return clip


class AutoDepth(StatelessStage):
    name = "depth"

    def __init__(self, cfg: DepthConfig = DepthConfig()):
        self.cfg = cfg

    def process(self, clip: Clip) -> Clip:
        return (SensorDepth(self.cfg) if clip.depth is not None else NoDepth()).process(clip)


def make_depth(cfg: DepthConfig):
    """The depth stage named by ``cfg.kind``."""
    if cfg.kind == "auto":
        return AutoDepth(cfg)
    if cfg.kind == "sensor":
        return SensorDepth(cfg)
    if cfg.kind == "none":
        return NoDepth()
    from tracegen.forge.learned import LearnedDepth

    return LearnedDepth(cfg)
