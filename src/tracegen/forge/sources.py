"""Where clips come from: tracegen episodes, videos, frame folders, LeRobot datasets, official TraceForge inputs.

:func:`discover` lists the clips under a path as small picklable :class:`SourceItem` records (cheap: nothing is
decoded); :func:`load_clip` decodes one in a worker. Supported inputs:

* **tracegen episodes** (``episode.json``; a folder of them, or one): frames, depth, cameras, instructions and, for
  simulated episodes, exact ground truth.
* **a video file** (mp4 / webm / mov / mkv / avi) or **a folder of frames** (png / jpg, natural sort order), with
  optional aligned depth (``depth_path``: a folder of 16-bit PNGs divided by ``depth_png_scale``, or an ``.npz``
  with ``depth (T, H, W)`` metres) and optional intrinsics (``intrinsics``: a file; see :func:`read_intrinsics`).
* **the official TraceForge input layouts** (``scan_depth``): 0 = SRC is one video / frame folder; 1 = SRC holds
  videos and frame folders; 2 = SRC holds groups of those. With several clips, ``depth_path`` holds one depth
  folder or ``.npz`` per clip, named like the clip.
* **LeRobot v3 (and v2.1) datasets** (``meta/info.json``): one clip per episode of one camera.

Frame sampling follows the official code (PAPER.md §3.1): every ``stride``-th frame (``stride = 0``: a stride of
``ceil(T / max_frames_per_video)``), at most ``max_frames`` frames, then resized so the longest side is at most
``max_size`` (intrinsics follow; depth uses nearest-neighbour resampling so no depth is ever invented).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracegen.errors import DataError
from tracegen.forge.clip import Clip, ClipError
from tracegen.forge.config import SourceConfig
from tracegen.geometry import resize_intrinsics
from tracegen.io import lerobot
from tracegen.io.episode import GroundTruthTracks, is_episode, read_episode
from tracegen.io.files import entries, load_npz
from tracegen.io.video import read_video

VIDEO_EXTS = (".mp4", ".webm", ".mov", ".mkv", ".avi")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class SourceItem:
    """One clip to process. ``kind``: episode, video, frames or lerobot."""

    name: str
    kind: str
    path: str
    depth: str | None = None
    index: int | None = None  # LeRobot episode index


# ---------------------------------------------------------------------------------------------- discovery


def discover(src: str | Path, cfg: SourceConfig = SourceConfig()) -> list[SourceItem]:
    """Every clip under ``src`` (see the module docstring); a :class:`DataError` when there is none."""
    src = Path(src)
    if not src.exists():
        raise DataError(src, "does not exist")
    if lerobot.is_lerobot_dataset(src):
        return _lerobot_items(src, cfg)
    if is_episode(src):
        return [SourceItem(safe_name(src.name), "episode", str(src))]
    if src.is_dir() and (episodes := [p for p in entries(src) if is_episode(p)]):
        return [SourceItem(safe_name(p.name), "episode", str(p)) for p in episodes]
    clips = _clips(src, cfg.scan_depth)
    if not clips:
        raise DataError(
            src,
            f"no clips found (scan depth {cfg.scan_depth}): expected tracegen episodes, a LeRobot dataset, video files "
            f"({', '.join(VIDEO_EXTS)}) or folders of frames ({', '.join(IMAGE_EXTS)})",
        )
    items = []
    for path, name in clips:
        kind = "video" if path.is_file() else "frames"
        items.append(SourceItem(name, kind, str(path), _depth_for(cfg.depth_path, name, len(clips))))
    names = [i.name for i in items]
    if len(set(names)) != len(names):
        raise DataError(src, "two clips map to the same output name; rename them")
    return items


def _lerobot_items(src: Path, cfg: SourceConfig) -> list[SourceItem]:
    info = lerobot.lerobot_info(src)
    camera = cfg.camera_key
    if camera is not None and camera not in info["camera_keys"]:
        raise DataError(src / "meta" / "info.json", f"unknown camera {camera!r}; valid: {info['camera_keys']}")
    indices = list(cfg.episodes) if cfg.episodes is not None else list(range(info["num_episodes"]))
    bad = [i for i in indices if not 0 <= i < info["num_episodes"]]
    if bad:
        raise DataError(src, f"episode index(es) {bad} out of range; the dataset has {info['num_episodes']}")
    cam = (camera or "default").replace("observation.images.", "")
    return [SourceItem(safe_name(f"{src.name}_ep{i:06d}_{cam}"), "lerobot", str(src), index=i) for i in indices]


def _clips(src: Path, scan_depth: int) -> list[tuple[Path, str]]:
    """(path, name) of the videos / frame folders ``scan_depth`` levels below ``src`` (0: ``src`` itself)."""
    if _is_clip(src):
        return [(src, safe_name(src.stem if src.is_file() else src.name))]
    if scan_depth <= 0 or not src.is_dir():
        return []
    out = []
    for child in sorted(entries(src), key=lambda p: natural_key(p.name)):
        if child.name.startswith("."):
            continue
        if scan_depth == 1 and _is_clip(child):
            out.append((child, safe_name(child.stem if child.is_file() else child.name)))
        elif scan_depth >= 2 and child.is_dir():
            out += [(p, safe_name(f"{child.name}_{n}")) for p, n in _clips(child, scan_depth - 1)]
    return out


def _is_clip(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in VIDEO_EXTS
    return path.is_dir() and bool(_image_files(path))


def _depth_for(depth_path: str | None, name: str, num_clips: int) -> str | None:
    if depth_path is None:
        return None
    root = Path(depth_path)
    if num_clips == 1:
        return str(root)
    for candidate in (root / name, root / f"{name}.npz"):
        if candidate.exists():
            return str(candidate)
    return str(root / name)  # reported as missing when the clip loads


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "clip"


def natural_key(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def _image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=lambda p: natural_key(p.name))


# ---------------------------------------------------------------------------------------------- loading


def load_clip(item: SourceItem, cfg: SourceConfig = SourceConfig(), keep_gt: bool = True) -> Clip:
    """Decode one clip, sample and resize its frames. Bad data raises :class:`ClipError` naming the problem."""
    try:
        clip = _read(item, cfg, keep_gt)
    except DataError as e:
        raise ClipError(str(e)) from None
    return resize(sample_frames(clip, cfg), cfg.max_size)


def _read(item: SourceItem, cfg: SourceConfig, keep_gt: bool) -> Clip:
    path = Path(item.path)
    if item.kind == "episode":
        ep = read_episode(path)
        return Clip(
            item.name,
            ep.rgb,
            ep.fps,
            list(ep.instructions),
            ep.depth,
            True,
            ep.K,
            ep.w2c,
            meta={**ep.meta, "source_path": str(path)},
            gt=ep.gt if keep_gt else None,
        )
    if item.kind == "lerobot":
        ep = lerobot.read_lerobot_episode(path, int(item.index), cfg.camera_key)
        return Clip(item.name, ep.rgb, ep.fps, list(ep.instructions), meta=dict(ep.meta))
    if item.kind == "video":
        rgb, fps = read_video(path), _video_fps(path)
    else:
        rgb, fps = read_frames(path), cfg.fps
    T, H, W = rgb.shape[:3]
    depth = read_depth(Path(item.depth), T, (H, W), cfg.depth_png_scale) if item.depth else None
    K = read_intrinsics(Path(cfg.intrinsics), T) if cfg.intrinsics else None
    meta = {"episode_id": item.name, "source": item.kind, "source_path": str(path)}
    return Clip(item.name, rgb, fps, [], depth, True, K, None, meta=meta)


def _video_fps(path: Path) -> float:
    import av

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else 30.0


def read_frames(folder: Path) -> np.ndarray:
    """RGB frames ``(T, H, W, 3)`` uint8 of a folder of images, in natural order."""
    frames = []
    for f in _image_files(folder):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f, "cannot decode image (corrupt or not an image?)")
        if frames and bgr.shape != frames[0].shape:
            raise DataError(f, f"frame size {bgr.shape[:2]} differs from the first frame's {frames[0].shape[:2]}")
        frames.append(bgr)
    if not frames:
        raise DataError(folder, "no image files")
    return np.stack(frames)[..., ::-1].copy()


def read_depth(path: Path, num_frames: int, hw: tuple[int, int], png_scale: float) -> np.ndarray:
    """Aligned depth ``(T, H, W)`` float32 metres from a folder of 16-bit PNGs (``value / png_scale``) or of
    per-frame ``.npy`` / ``.npz``, or one ``.npz`` with ``depth (T, H, W)``. NaN or missing frames are errors."""
    if not path.exists():
        raise DataError(path, "depth not found")
    if path.is_file():
        depth = load_npz(path, ("depth",))["depth"].astype(np.float32)
    else:
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in (".png", ".npy", ".npz")),
            key=lambda p: natural_key(p.name),
        )
        depth = np.stack([_depth_frame(f, png_scale) for f in files]) if files else np.zeros((0,) + hw, np.float32)
    if depth.ndim != 3 or len(depth) != num_frames:
        raise DataError(
            path,
            f"depth has {len(depth) if depth.ndim == 3 else depth.shape} frames, the video has "
            f"{num_frames} (missing or extra depth frames)",
        )
    if depth.shape[1:] != tuple(hw):
        raise DataError(path, f"depth size {depth.shape[1]}x{depth.shape[2]} does not match the frames {hw[0]}x{hw[1]}")
    if not np.isfinite(depth).all():
        raise DataError(path, f"depth has {int((~np.isfinite(depth)).sum())} NaN/inf values")
    if (depth < 0).any():
        raise DataError(path, "depth has negative values")
    return depth


def _depth_frame(f: Path, png_scale: float) -> np.ndarray:
    if f.suffix.lower() == ".png":
        d = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if d is None or d.ndim != 2:
            raise DataError(f, "not a single-channel depth PNG")
        return d.astype(np.float32) / png_scale
    if f.suffix.lower() == ".npy":
        return np.load(f, allow_pickle=False).astype(np.float32)
    return load_npz(f, ("depth",))["depth"].astype(np.float32)


def read_intrinsics(path: Path, num_frames: int) -> np.ndarray:
    """K ``(T, 3, 3)`` from ``.json`` (``fx, fy, cx, cy`` or ``K``), ``.npy`` / ``.npz`` (``K`` or ``intrinsics``,
    ``(3, 3)`` or ``(T, 3, 3)``) or ``.txt`` (a 3 x 3 matrix), in integer-pixel-centre convention."""
    if not path.is_file():
        raise DataError(path, "intrinsics file not found")
    try:
        if path.suffix == ".json":
            d = json.loads(path.read_text())
            K = (
                np.asarray(d["K"], np.float64)
                if "K" in d
                else np.array([[d["fx"], 0, d["cx"]], [0, d["fy"], d["cy"]], [0, 0, 1]], np.float64)
            )
        elif path.suffix == ".npz":
            a = load_npz(path)
            K = np.asarray(a.get("K", a.get("intrinsics")), np.float64)
        elif path.suffix == ".npy":
            K = np.load(path, allow_pickle=False).astype(np.float64)
        else:
            K = np.loadtxt(path, dtype=np.float64)
    except (KeyError, ValueError, json.JSONDecodeError) as e:
        raise DataError(path, f"cannot read intrinsics: {e}") from None
    K = np.broadcast_to(K, (num_frames, 3, 3)).copy() if K.shape == (3, 3) else K
    if K.shape != (num_frames, 3, 3) or not np.isfinite(K).all() or (K[:, 0, 0] <= 0).any():
        raise DataError(path, f"intrinsics must be finite (3, 3) or ({num_frames}, 3, 3) with fx > 0, got {K.shape}")
    return K


# ---------------------------------------------------------------------------------------------- sampling


def frame_stride(num_frames: int, cfg: SourceConfig) -> int:
    return cfg.stride if cfg.stride > 0 else max(1, math.ceil(num_frames / cfg.max_frames_per_video))


def sample_frames(clip: Clip, cfg: SourceConfig) -> Clip:
    """Every ``stride``-th frame, at most ``max_frames``; ground truth follows (queries on dropped frames go)."""
    T = clip.num_frames
    s = frame_stride(T, cfg)
    keep = np.arange(0, T, s)[: cfg.max_frames]
    clip.frame_index = keep
    if len(keep) == T:
        return clip
    clip.rgb = clip.rgb[keep]
    clip.fps = clip.fps / s
    for key in ("depth", "K", "w2c"):
        if getattr(clip, key) is not None:
            setattr(clip, key, getattr(clip, key)[keep])
    if clip.gt is not None:
        clip.gt = _sample_gt(clip.gt, keep)
    return clip


def _sample_gt(gt: GroundTruthTracks, keep: np.ndarray) -> GroundTruthTracks | None:
    position = {int(f): i for i, f in enumerate(keep)}
    queries = [q for q, f in enumerate(gt.query_frames) if int(f) in position]
    if not queries:
        return None
    frames = np.array([position[int(gt.query_frames[q])] for q in queries], np.int64)
    return GroundTruthTracks(
        frames,
        gt.grid,
        gt.body_pose[keep],
        gt.point_body[queries],
        gt.point_local[queries],
        gt.visibility[queries][:, keep],
    )


def resize(clip: Clip, max_size: int) -> Clip:
    """Shrink frames (and depth, intrinsics) so the longest side is at most ``max_size``; sizes stay even."""
    H, W = clip.height, clip.width
    if max(H, W) <= max_size:
        return clip
    scale = max_size / max(H, W)
    h, w = max(2, int(round(H * scale / 2)) * 2), max(2, int(round(W * scale / 2)) * 2)
    clip.rgb = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in clip.rgb])
    if clip.depth is not None:
        clip.depth = np.stack([cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in clip.depth])
    if clip.K is not None:
        clip.K = resize_intrinsics(clip.K, (H, W), (h, w))
    clip.meta["resized_from"] = [H, W]
    return clip
