"""Camera stages: per-frame intrinsics ``K (T, 3, 3)`` and world -> camera ``w2c (T, 4, 4)`` for a clip.

* ``given``: the source's own cameras (simulator, calibrated rigs); fails when the source has none.
* ``static``: a fixed camera (identity motion); K from the source, else a guess (COLMAP's default focal length,
  1.2 x the longest side, principal point at the centre). The depth map then defines the world.
* ``colmap``: structure from motion (:mod:`tracegen.forge.sfm`) for moving cameras with unknown poses, with the
  source's intrinsics when known (else estimated). With metric sensor depth the reconstruction is scaled to
  metres (per-frame median depth ratio), aligned to the depth at its sparse points, and then every frame's depth
  map is aligned to its neighbours' (:mod:`tracegen.forge.rgbd_align`, dense point-to-plane ICP); without, world
  units are SfM's (traces then come out 2D-only).
* ``vggt`` / ``da3`` / ``moge``: learned estimators with local weights (:mod:`tracegen.forge.learned`).
* ``auto``: ``given`` when the source has cameras, else ``static``.
"""

from __future__ import annotations

import numpy as np

from tracegen.forge.clip import Clip, ClipError, StatelessStage
from tracegen.forge.config import CameraConfig
from tracegen.forge.rgbd_align import align_depth
from tracegen.forge.sfm import SfMResult, metric_scale, refine_with_depth, run_sfm, scale_result
from tracegen.geometry import intrinsics

DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's default focal length for unknown cameras, times the longest image side


def default_intrinsics(height: int, width: int) -> np.ndarray:
    f = DEFAULT_FOCAL_FACTOR * max(height, width)
    return intrinsics(f, f, (width - 1) / 2, (height - 1) / 2)


def is_static(K: np.ndarray, w2c: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether every frame has the first frame's camera."""
    return bool(np.abs(K - K[:1]).max() <= tol and np.abs(w2c - w2c[:1]).max() <= tol)


class GivenCamera(StatelessStage):
    name = "camera"

    def process(self, clip: Clip) -> Clip:
        if not clip.has_cameras:
            raise ClipError("the source has no cameras (K and w2c); use --camera static (fixed camera) or colmap")
        clip.camera_static = is_static(clip.K, clip.w2c)
        clip.info["camera"] = "given" + (" (static)" if clip.camera_static else "")
        return clip


class StaticCamera(StatelessStage):
    name = "camera"

    def process(self, clip: Clip) -> Clip:
        T, known = clip.num_frames, clip.K is not None
        K = clip.K[0] if known else default_intrinsics(clip.height, clip.width)
        clip.K = np.repeat(np.asarray(K, np.float64)[None], T, 0)
        clip.w2c = np.repeat(np.eye(4)[None], T, 0)
        clip.camera_static = True
        clip.info["camera"] = "static" if known else "static (guessed intrinsics)"
        return clip


class ColmapCamera:
    name = "camera"

    def __init__(self, cfg: CameraConfig = CameraConfig()):
        self.cfg = cfg

    def setup(self) -> None:
        import pycolmap  # noqa: F401  -- fail in the worker's setup, not on the first clip

    def process(self, clip: Clip) -> Clip:
        cfg = self.cfg
        result, metric = sfm_cameras(clip, cfg)
        w2c = result.w2c
        if metric and cfg.colmap_dense_align:
            w2c, stats = align_depth(clip.depth, result.K, w2c, result.registered, sweeps=cfg.colmap_align_sweeps)
            clip.info.update(stats)
        clip.K, clip.w2c, clip.camera_static = result.K, w2c, False
        clip.info.update(result.info, camera="colmap", camera_metric=metric)
        return clip


def sfm_cameras(clip: Clip, cfg: CameraConfig) -> tuple[SfMResult, bool]:
    """SfM's cameras of ``clip`` (with its intrinsics when known) and whether they are metric: with metric depth
    they are scaled to metres and aligned to the depth at their sparse points (the dense alignment comes after)."""
    K = clip.K[0] if clip.K is not None else None
    result = run_sfm(
        clip.rgb, K, cfg.colmap_max_images, cfg.colmap_min_registered, cfg.colmap_refine_focal, cfg.colmap_seed
    )
    metric = clip.depth is not None and clip.depth_metric
    if metric:
        result = refine_with_depth(scale_result(result, metric_scale(result, clip.depth)), clip.depth)
    return result, metric


class AutoCamera(StatelessStage):
    name = "camera"

    def process(self, clip: Clip) -> Clip:
        return (GivenCamera() if clip.has_cameras else StaticCamera()).process(clip)


def make_camera(cfg: CameraConfig):
    """The camera stage named by ``cfg.kind``."""
    if cfg.kind == "auto":
        return AutoCamera()
    if cfg.kind == "given":
        return GivenCamera()
    if cfg.kind == "static":
        return StaticCamera()
    if cfg.kind == "colmap":
        return ColmapCamera(cfg)
    from tracegen.forge.learned import LearnedCamera

    return LearnedCamera(cfg)
