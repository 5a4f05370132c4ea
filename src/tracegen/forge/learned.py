"""Hooks for learned models: camera / depth estimators (VGGT, Depth Anything 3, MoGe) and point trackers
(CoTracker3, TAPIR / BootsTAPIR). None of them is a dependency of tracegen, and none downloads anything.

A hook needs two things a user provides: the model's own Python package (installed from its repository), and its
weights in a local folder -- ``--weights DIR`` (``weights`` in the config) or ``$TRACEGEN_WEIGHTS`` -- under the
file names of :data:`MODELS`. ``setup()`` (once per worker, before any clip) loads them and fails with a message
saying exactly what is missing and where it was looked for. Licences differ (CoTracker3 is CC-BY-NC; TAPIR is
Apache-2.0; check VGGT's, DA3's and MoGe's before commercial use), which is why they are hooks and not defaults.

The adapters call each project's documented inference entry point and convert to tracegen's conventions (OpenCV
axes, integer pixel centres, metres). They are exercised only where the weights exist; on the project's machines
(no model hubs) tests check the failure path.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracegen.forge.clip import Clip, ClipError, Tracks
from tracegen.forge.config import CameraConfig, DepthConfig, TrackerConfig
from tracegen.forge.windows import WindowConfig

WEIGHTS_ENV = "TRACEGEN_WEIGHTS"


@dataclass(frozen=True)
class LearnedModel:
    key: str
    title: str
    package: str  # import name of the model's own package
    install: str  # where to get it
    files: tuple[str, ...]  # accepted weight files or folders inside the weights directory


MODELS = {
    "vggt": LearnedModel(
        "vggt",
        "VGGT",
        "vggt",
        "pip install git+https://github.com/facebookresearch/vggt",
        ("vggt/model.pt", "VGGT-1B/model.pt", "model.pt"),
    ),
    "da3": LearnedModel(
        "da3",
        "Depth Anything 3",
        "depth_anything_3",
        "pip install git+https://github.com/ByteDance-Seed/Depth-Anything-3",
        ("depth-anything-3", "DA3-LARGE", "da3"),
    ),
    "moge": LearnedModel(
        "moge",
        "MoGe",
        "moge",
        "pip install git+https://github.com/microsoft/MoGe",
        ("moge/model.pt", "moge-vitl/model.pt", "moge-2-vitl/model.pt"),
    ),
    "cotracker3": LearnedModel(
        "cotracker3",
        "CoTracker3",
        "cotracker",
        "pip install git+https://github.com/facebookresearch/co-tracker",
        ("cotracker3/scaled_offline.pth", "scaled_offline.pth"),
    ),
    "tapir": LearnedModel(
        "tapir",
        "TAPIR / BootsTAPIR",
        "tapnet",
        "pip install git+https://github.com/google-deepmind/tapnet",
        ("tapir/bootstapir_checkpoint_v2.pt", "bootstapir_checkpoint_v2.pt", "causal_bootstapir_checkpoint.pt"),
    ),
}


class ModelUnavailable(RuntimeError):
    """A learned model's package or weights are missing (raised before any clip is processed)."""


def weights_dirs(weights: str | None) -> list[Path]:
    dirs = [Path(weights)] if weights else []
    if os.environ.get(WEIGHTS_ENV):
        dirs.append(Path(os.environ[WEIGHTS_ENV]))
    return dirs


def locate(key: str, weights: str | None) -> Path:
    """The weight file / folder of model ``key`` and check its package imports; :class:`ModelUnavailable` if not."""
    model = MODELS[key]
    dirs = weights_dirs(weights)
    found = next((d / f for d in dirs for f in model.files if (d / f).exists()), None)
    if found is None:
        where = ", ".join(str(d) for d in dirs) or f"nowhere (pass --weights DIR or set ${WEIGHTS_ENV})"
        raise ModelUnavailable(
            f"{model.title} weights not found: looked for {', '.join(model.files)} in {where}. Download them "
            f"from the model's release page into that folder, or use a CPU component instead "
            f"(--camera given/static/colmap, --depth sensor/none, --tracker forge)"
        )
    try:
        importlib.import_module(model.package)
    except ImportError as e:
        raise ModelUnavailable(
            f"{model.title} weights found at {found}, but its package {model.package!r} is not "
            f"installed ({e}); install it with: {model.install}"
        ) from None
    return found


def _torch_video(rgb: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float()  # (T, 3, H, W) 0..255


# ---------------------------------------------------------------------------------------------- geometry models


class _Geometry:
    """Shared by the camera and depth hooks: one forward pass per clip gives depth and (maybe) cameras."""

    def __init__(self, key: str, weights: str | None):
        if key not in ("vggt", "da3", "moge"):
            raise ValueError(f"no learned geometry model {key!r}")
        self.key, self.weights, self.model = key, weights, None
        self.metric = key == "da3"  # depth in metres: DA3's metric model, MoGe-2 (set when loaded); VGGT's own scale

    def setup(self) -> None:
        path = locate(self.key, self.weights)
        if self.key == "vggt":
            import torch
            from vggt.models.vggt import VGGT

            self.model = VGGT()
            self.model.load_state_dict(torch.load(path, map_location="cpu"))
            self.model.eval()
        elif self.key == "da3":
            from depth_anything_3.api import DepthAnything3

            self.model = DepthAnything3.from_pretrained(str(path))
        else:  # MoGe-1 predicts affine-invariant geometry, MoGe-2 metric: the weights' folder says which
            from moge.model import import_model_class_by_version

            version = "v2" if "moge-2" in str(path) else "v1"
            self.model = import_model_class_by_version(version).from_pretrained(str(path)).eval()
            self.metric = version == "v2"

    def predict(self, clip: Clip) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``depth (T, H, W)``, ``K (T, 3, 3)`` or None, ``w2c (T, 4, 4)`` or None at the clip's resolution."""
        import cv2
        import torch

        T, H, W = clip.num_frames, clip.height, clip.width
        with torch.no_grad():
            if self.key == "vggt":
                from vggt.utils.pose_enc import pose_encoding_to_extri_intri

                h, w = 14 * max(1, round(H * 518 / W / 14)), 518
                video = torch.nn.functional.interpolate(_torch_video(clip.rgb) / 255, (h, w), mode="bilinear")
                out = self.model(video)
                extri, intri = pose_encoding_to_extri_intri(out["pose_enc"], (h, w))
                depth = out["depth"][0, ..., 0].numpy()
                K = intri[0].numpy().astype(np.float64)
                K[:, :2, 2] -= 0.5  # VGGT's principal point is the image centre (w/2, h/2) with pixel corners at
                # integers; ours has pixel centres at integers (as MoGe's conversion below)
                w2c = np.tile(np.eye(4), (T, 1, 1))
                w2c[:, :3] = extri[0].numpy()
                from tracegen.geometry import resize_intrinsics

                K = resize_intrinsics(K, (h, w), (H, W))
            elif self.key == "da3":
                pred = self.model.inference(list(clip.rgb))
                depth, K = np.asarray(pred.depth), np.asarray(pred.intrinsics, np.float64)
                w2c = np.tile(np.eye(4), (T, 1, 1))
                w2c[:, :3] = np.asarray(pred.extrinsics)
                from tracegen.geometry import resize_intrinsics

                K = resize_intrinsics(K, depth.shape[1:], (H, W))
            else:
                depth, Ks = [], []
                for frame in clip.rgb:
                    out = self.model.infer(torch.from_numpy(frame).permute(2, 0, 1).float() / 255)
                    depth.append(out["depth"].numpy())
                    Kn = out["intrinsics"].numpy().astype(np.float64)  # normalised by the image size
                    Ks.append(np.diag([W, H, 1.0]) @ Kn - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]))
                depth, K, w2c = np.stack(depth), np.stack(Ks), None
        depth = np.stack([cv2.resize(d.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST) for d in depth])
        return np.nan_to_num(np.maximum(depth, 0), nan=0.0, posinf=0.0), K, w2c


class LearnedCamera:
    """Cameras from VGGT or Depth Anything 3 (MoGe predicts intrinsics only: the camera is then static)."""

    name = "camera"

    def __init__(self, cfg: CameraConfig):
        self.geometry = _Geometry(cfg.kind, cfg.weights)

    def setup(self) -> None:
        self.geometry.setup()

    def process(self, clip: Clip) -> Clip:
        depth, K, w2c = self.geometry.predict(clip)
        if w2c is not None and clip.depth is not None:  # sensor depth: the poses to its metric scale, as the depth
            from tracegen.forge.depth import median_ratio_scale  # (a learned depth stage then leaves them)

            scale = median_ratio_scale(depth, clip.depth)
            w2c = w2c.copy()
            w2c[:, :3, 3] *= scale
            clip.info["camera_scale"] = round(scale, 6)
        clip.K = K
        clip.w2c = w2c if w2c is not None else np.repeat(np.eye(4)[None], clip.num_frames, 0)
        clip.camera_static = w2c is None
        clip.info["camera"] = self.geometry.key
        clip.meta["_predicted_depth"] = depth  # reused by a learned depth stage of the same model
        return clip


class LearnedDepth:
    """Depth from VGGT, Depth Anything 3 or MoGe, rescaled to sensor depth when the source has it."""

    name = "depth"

    def __init__(self, cfg: DepthConfig):
        self.cfg = cfg
        self.geometry = _Geometry(cfg.kind, cfg.weights)

    def setup(self) -> None:
        self.geometry.setup()

    def process(self, clip: Clip) -> Clip:
        from tracegen.forge.depth import clean_clip_depth, median_ratio_scale

        predicted = clip.meta.pop("_predicted_depth", None)
        if predicted is None:
            predicted = self.geometry.predict(clip)[0]
        if clip.depth is not None and self.cfg.rescale_to_sensor:
            s = median_ratio_scale(predicted, clip.depth)
            predicted = predicted * s
            same_model = clip.info.get("camera") == self.geometry.key and "camera_scale" not in clip.info
            if clip.w2c is not None and same_model:
                clip.w2c = clip.w2c.copy()
                clip.w2c[:, :3, 3] *= s  # the same model's poses share its depth scale
            clip.info["depth_scale"] = round(s, 6)
            clip.depth_metric = True
        else:
            clip.depth_metric = self.geometry.metric  # metric-depth models (DA3, MoGe-2); VGGT's scale is its own
        clip.depth = predicted.astype(np.float32)
        if self.cfg.clean_edges != "off":
            clean_clip_depth(clip, self.cfg)
        clip.info["depth"] = self.geometry.key
        return clip


# ---------------------------------------------------------------------------------------------- trackers


class LearnedTracker:
    """CoTracker3 (offline) or TAPIR through their predictors; queries are the grids of every query frame."""

    name = "tracker"

    def __init__(self, cfg: TrackerConfig, window: WindowConfig):
        if cfg.kind not in ("cotracker3", "tapir"):
            raise ValueError(f"no learned tracker {cfg.kind!r}")
        self.cfg, self.window, self.model = cfg, window, None

    def setup(self) -> None:
        import torch

        path = locate(self.cfg.kind, self.cfg.weights)
        if self.cfg.kind == "cotracker3":
            from cotracker.predictor import CoTrackerPredictor

            self.model = CoTrackerPredictor(checkpoint=str(path), offline=True, window_len=60)
        else:
            from tapnet.torch import tapir_model

            self.model = tapir_model.TAPIR(pyramid_level=1)
            self.model.load_state_dict(torch.load(path, map_location="cpu"))
            self.model.eval()

    def process(self, clip: Clip) -> Clip:
        import torch

        from tracegen.forge.flow import nearest_depth
        from tracegen.forge.tracker import query_frames
        from tracegen.geometry import pixels_to_world
        from tracegen.traces import grid_points

        if self.model is None:
            raise ClipError(f"{self.cfg.kind}: setup() was not called")
        T, H, W = clip.num_frames, clip.height, clip.width
        queries = query_frames(T, self.window)
        grid = grid_points(H, W, self.window.grid)
        lengths = np.minimum(self.window.window, T - queries)
        Q, N, L = len(queries), len(grid), int(lengths.max())
        uv, vis = np.full((Q, N, L, 2), np.nan), np.zeros((Q, N, L), bool)
        lift = clip.depth is not None and clip.has_cameras
        world = np.full((Q, N, L, 3), np.nan) if lift else None
        with torch.no_grad():
            for q, f in enumerate(queries):
                video = _torch_video(clip.rgb[f : f + lengths[q]])[None]
                pts = torch.from_numpy(np.concatenate([np.zeros((N, 1)), grid], 1)).float()[None]  # (1, N, 3) t, x, y
                if self.cfg.kind == "cotracker3":
                    tracks, visible = self.model(video, queries=pts)
                    tracks, visible = tracks[0].numpy(), visible[0].numpy() > 0.5  # (L, N, 2), (L, N)
                else:
                    v = video[0].permute(0, 2, 3, 1)[None] / 127.5 - 1  # (1, L, H, W, 3) in [-1, 1]
                    out = self.model(v, pts[..., [0, 2, 1]])  # TAPIR queries are (t, y, x)
                    tracks = out["tracks"][0].permute(1, 0, 2).numpy()
                    occ, dist = out["occlusion"][0].T, out["expected_dist"][0].T
                    visible = ((1 - torch.sigmoid(occ)) * (1 - torch.sigmoid(dist)) > 0.5).numpy()
                uv[q, :, : lengths[q]] = np.swapaxes(tracks, 0, 1)
                vis[q, :, : lengths[q]] = visible.T
                if lift:
                    for s in range(lengths[q]):
                        z = nearest_depth(clip.depth[f + s], uv[q, :, s])
                        X = pixels_to_world(
                            np.concatenate([uv[q, :, s], z[:, None]], 1), clip.K[f + s], clip.w2c[f + s]
                        )
                        world[q, :, s] = np.where((z > 0)[:, None], X, np.nan)
        clip.tracks = Tracks(queries, uv, vis, lengths, world)
        return clip
