"""Typed settings of a TraceForge run, saved as ``forge_config.json`` beside its outputs.

Every stage reads only its own section. ``ForgeConfig.from_dict(cfg.to_dict())`` round-trips, so a run can be
repeated exactly from the saved file. Defaults follow the paper (PAPER.md §3) where it says something, and the
measured CPU budget (docs/FORGE.md) where it does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tracegen.forge.windows import WindowConfig
from tracegen.io.files import load_json, save_json
from tracegen.settings import apply_settings
from tracegen.traces import RetargetConfig

CAMERAS = ("auto", "given", "static", "colmap", "vggt", "da3", "moge")
DEPTHS = ("auto", "sensor", "none", "vggt", "da3", "moge")
TRACKERS = ("forge", "lk", "cotracker3", "tapir")
RUNNERS = ("local", "ray")


@dataclass(frozen=True)
class SourceConfig:
    """How videos are read and sampled (PAPER.md §3.1)."""

    stride: int = 1  # take every stride-th frame; 0: ceil(num_frames / max_frames_per_video)
    max_frames_per_video: int = 50  # only with stride 0
    max_frames: int = 384  # at most this many frames after striding
    max_size: int = 518  # longest image side after resizing (the paper's 518); smaller images are not upscaled
    camera_key: str | None = None  # LeRobot: which camera (default: the first video key)
    episodes: tuple[int, ...] | None = None  # LeRobot: which episode indices (default: all)
    depth_path: str | None = None  # videos / frame folders: aligned depth (folder of 16-bit PNGs, or .npz)
    depth_png_scale: float = 10000.0  # PNG depth units per metre (the official TraceForge default)
    intrinsics: str | None = None  # videos / frame folders: a K file (.json fx/fy/cx/cy or K, .npy/.npz, .txt)
    scan_depth: int = 1  # official input layouts: 0 = SRC is one clip, 1 = SRC holds clips, 2 = groups of clips
    fps: float = 30.0  # frame rate assumed for frame folders


@dataclass(frozen=True)
class CameraConfig:
    """Per-frame intrinsics and extrinsics (stage ``camera``)."""

    kind: str = "auto"  # auto: given when the source has cameras, else static
    colmap_max_images: int = 40  # SfM on at most this many frames; the others get interpolated poses
    colmap_min_registered: float = 0.6  # fail the clip when SfM registers a smaller fraction of its frames
    colmap_refine_focal: bool = True  # estimate the focal length (always when no intrinsics are known)
    colmap_seed: int = 0
    colmap_dense_align: bool = True  # with metric depth: refine SfM's poses by aligning the depth maps (rgbd_align)
    colmap_align_sweeps: int = 20  # Gauss-Seidel sweeps of that alignment
    weights: str | None = None  # learned estimators: folder holding the weights (else $TRACEGEN_WEIGHTS)


@dataclass(frozen=True)
class DepthConfig:
    """Per-frame metric depth (stage ``depth``)."""

    kind: str = "auto"  # auto: sensor depth when the source has it, else none (2D-only traces)
    clean_edges: str = "auto"  # on / off / auto (= predicted depth only): flying pixels at depth + normal edges
    edge_rel_tol: float = 0.08  # depth edge: relative depth jump to a neighbour (PAPER.md §3.3)
    edge_normal_deg: float = 15.0  # normal edge: angle between neighbouring normals
    rescale_to_sensor: bool = True  # predicted depth (learned / SfM) is scaled to sensor depth when both exist
    weights: str | None = None


@dataclass(frozen=True)
class TrackerConfig:
    """The point tracker (stage ``tracker``). See :mod:`tracegen.forge.tracker` for the method."""

    kind: str = "forge"
    window_radius: int = 9  # patch half-size of the refinement: a 19 x 19 pixel patch...
    window_stride: int = 2  # ...sampled every other pixel (10 x 10 samples: larger support, 3.6x fewer samples)
    lk_iters: int = 4  # photometric refinement iterations (the geometric step follows: 4 score as well as 6)
    fb_max_px: float = 1.0  # forward-backward error above which a step is rejected
    depth_abs_tol: float = 0.02  # metres: depth disagreement marking an occlusion (plus depth_rel_tol * z)
    depth_rel_tol: float = 0.03
    residual_max: float = 12.0  # grey levels: mean patch residual above which a step is rejected
    static_diff: float = 2.5  # grey levels: a patch that changed less than this has not moved (static camera)
    static_residual: float = 6.0  # moving camera: grey levels within which the anchor patch matches where the
    # point's world position projects (then the point is static in the world)
    reacquire_every: int = 2  # frames between re-acquisition attempts of occluded points
    snap_radius: int = 1  # a step that lands just across a depth edge moves back onto its surface (pixels)...
    snap_max_run: int = 5  # ...at most this many steps in a row (an occluder's edge would hold it)
    surface_depth: bool = True  # a fitted point's depth is its surface's (not its own pixel's: edges flicker)
    surface_align: bool = True  # moving points with depth: their surface fitted rigidly to each frame's depth
    surface_radius: int = 18  # the surface lifted around each point: 37 x 37 pixels (masked to the point's own
    surface_stride: int = 3  # surface), every third pixel: 13 x 13 samples (more support, fewer samples than 19 x 19)
    surface_prior: float = 2e-4  # metres of depth residual worth one pixel off the photometric position
    surface_rot_damping: float = 2e-3
    surface_iters: int = 8  # Gauss-Newton iterations of the geometric step (4: 88.1 %, 8: 88.8 % within 4 px)
    hidden_surface: bool = True  # hidden points follow their surface's fit to the depth (88.8 -> 90.1 % within 4 px)
    weights: str | None = None  # learned trackers


@dataclass(frozen=True)
class FilterConfig:
    """Which windows are kept (stage ``windows``); every drop is counted with its reason."""

    trim_static: bool = True  # drop query frames in the clip's leading / trailing static spans
    static_speed: float = 0.002  # robust speed (fastest 2 % of points) per frame, fraction of the image diagonal
    min_clip_frames: int = 16  # a clip shorter than one minimal window is a failed episode


@dataclass(frozen=True)
class LanguageConfig:
    """Instructions per episode (stage ``language``)."""

    expand: bool = True  # fill the three styles from templates when the source gives fewer
    captioner: Literal["none", "vlm"] = "none"  # a VLM writes them (off by default; needs a local model)
    weights: str | None = None
    default: str = "Can you move the robot gripper or human hand to solve the task?"


@dataclass(frozen=True)
class ForgeConfig:
    """Everything that determines a run's output."""

    source: SourceConfig = field(default_factory=SourceConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)

    def __post_init__(self) -> None:
        check_choice("camera", self.camera.kind, CAMERAS)
        check_choice("depth", self.depth.kind, DEPTHS)
        check_choice("tracker", self.tracker.kind, TRACKERS)
        if self.camera.kind == "colmap" and self.depth.kind in ("vggt", "da3", "moge"):
            raise ValueError(
                f"camera=colmap with depth={self.depth.kind}: SfM's poses are put in metres by the depth that exists "
                "when the camera stage runs, before a learned depth does; use colmap with sensor depth (depth=sensor "
                f"or auto), or camera={self.depth.kind} with its own depth"
            )
        if self.source.stride < 0 or self.source.max_frames < 2 or self.source.max_size < 16:
            raise ValueError("stride must be >= 0, max_frames >= 2 and max_size >= 16")
        if self.window.query_every < 1 or self.window.window < 2:
            raise ValueError("query_every must be >= 1 and window >= 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ForgeConfig:
        return _build(cls, d)

    def save(self, path: str | Path) -> None:
        save_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> ForgeConfig:
        return cls.from_dict(load_json(path))


def with_settings(cfg: ForgeConfig, items: list[str]) -> ForgeConfig:
    """``cfg`` with dotted ``key=value`` settings applied (``tracker.snap_radius=0``, ``window.retarget.step=0.1``);
    an unknown key or a bad value raises ValueError naming it."""
    return apply_settings(cfg, items, example="tracker.snap_radius")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _build(cls: type, d: dict[str, Any]) -> Any:
    """A (nested) frozen dataclass from a dict; unknown keys are an error, lists become tuples."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown setting(s) {unknown}")
    nested = {
        "source": SourceConfig,
        "camera": CameraConfig,
        "depth": DepthConfig,
        "tracker": TrackerConfig,
        "window": WindowConfig,
        "filters": FilterConfig,
        "language": LanguageConfig,
        "retarget": RetargetConfig,
    }
    kwargs = {}
    for key, value in d.items():
        if key in nested and isinstance(value, dict):
            value = _build(nested[key], value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)
