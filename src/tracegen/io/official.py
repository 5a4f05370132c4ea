"""The official TraceGen / TraceForge on-disk layout, read and written (PAPER.md §3.9, CONVENTIONS.md §4).

One directory per episode::

    <episode>/images/<episode>_<q>.png        query frame q (RGB)
    <episode>/depth/<episode>_<q>.png         uint16 depth x 10000 (for viewing only)
    <episode>/depth/<episode>_<q>_raw.npz     key "depth": float depth map, the model input
    <episode>/samples/<episode>_<q>.npz       image_path, frame_index, keypoints (N, 2) px,
                                              traj (N, 128, 3|2) retargeted (u, v[, z]) with -inf padding,
                                              traj_2d (N, T, 2) time-domain px, valid_steps (128,) bool
    <episode>/three_instructions.json         instruction_1, instruction_2, instruction_3
    <episode>/<episode>.npz                   per-episode cameras (written by tracegen: intrinsics (Q, 3, 3),
                                              extrinsics (Q, 4, 4) world -> camera, frame_index (Q,))

A ``traj`` with two channels is a 2D-only trace. Samples are paired with images and depth by file stem.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tracegen.errors import DataError, check
from tracegen.io.files import atomic_dir, atomic_path, entries, load_json, load_npz, save_json, save_npz
from tracegen.io.trace_dataset import TraceSample
from tracegen.traces import forward_fill

MAX_STEPS = 128
DEFAULT_INSTRUCTION = "Can you move the robot gripper or human hand to solve the task?"
DEPTH_PNG_SCALE = 10000.0


# --- detection


def is_official_episode(path: str | Path) -> bool:
    return (Path(path) / "samples").is_dir()


def official_episode_dirs(root: str | Path) -> list[Path]:
    """The episode directories under ``root`` (or ``root`` itself when it is one episode)."""
    root = Path(root)
    if is_official_episode(root):
        return [root]
    return [p for p in entries(root) if p.is_dir() and is_official_episode(p)] if root.is_dir() else []


def is_official(path: str | Path) -> bool:
    return bool(official_episode_dirs(path))


# --- writing


def write_official_episode(root: str | Path, name: str, samples: list[TraceSample]) -> Path:
    """Write the samples of one episode in the official layout at ``root/name`` (atomically)."""
    check(len(samples) > 0, Path(root) / name, "an episode needs at least one sample")
    with atomic_dir(Path(root) / name) as tmp:
        for d in ("images", "depth", "samples"):
            (tmp / d).mkdir()
        for i, sample in enumerate(samples):
            _write_sample(tmp, name, i, sample)
        instructions = samples[0].instructions or [DEFAULT_INSTRUCTION]
        padded = (instructions + [instructions[-1]] * 3)[:3]
        save_json(tmp / "three_instructions.json", {f"instruction_{k + 1}": t for k, t in enumerate(padded)})
        if samples[0].K is not None:
            save_npz(
                tmp / f"{name}.npz",
                intrinsics=np.stack([s.K for s in samples]),
                extrinsics=np.stack([s.w2c for s in samples]),
                frame_index=np.array([_frame_index(s, i) for i, s in enumerate(samples)], np.int64),
            )
    return Path(root) / name


def _frame_index(sample: TraceSample, i: int) -> int:
    return int(sample.meta.get("query_frame", i))


def _write_sample(ep_dir: Path, name: str, i: int, s: TraceSample) -> None:
    stem = f"{name}_{_frame_index(s, i)}"
    write_png(ep_dir / "images" / f"{stem}.png", s.rgb)
    if s.depth is not None:
        save_npz(ep_dir / "depth" / f"{stem}_raw.npz", depth=s.depth.astype(np.float32))
        write_png(ep_dir / "depth" / f"{stem}.png", np.clip(s.depth * DEPTH_PNG_SCALE, 0, 65535).astype(np.uint16))
    traj = s.traj if s.has_depth else s.traj[..., :2]
    n = min(s.num_valid, MAX_STEPS)
    padded = np.full((len(traj), MAX_STEPS, traj.shape[-1]), -np.inf, np.float32)
    padded[:, :n] = traj[:, :n]
    valid = np.zeros(MAX_STEPS, bool)
    valid[:n] = True
    arrays = {
        "image_path": np.array(f"images/{stem}.png"),
        "frame_index": np.array(_frame_index(s, i)),
        "keypoints": s.traj[:, 0, :2].astype(np.float32),
        "traj": padded,
        "valid_steps": valid,
    }
    if s.traj_2d is not None:
        arrays["traj_2d"] = s.traj_2d.astype(np.float32)
    save_npz(ep_dir / "samples" / f"{stem}.npz", **arrays)


def write_png(path: Path, image: np.ndarray) -> None:
    """RGB ``(H, W, 3)`` uint8 or single-channel uint8/uint16 image -> PNG, atomically."""
    data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", data)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def read_png(path: Path, rgb: bool = True) -> np.ndarray:
    """PNG -> RGB ``(H, W, 3)`` uint8 (``rgb``) or the stored single channel as is."""
    if not path.is_file():
        raise DataError(path, "image file not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR if rgb else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(path, "cannot decode image (corrupt or not an image?)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if rgb else image


# --- reading


def read_official_episode(ep_dir: str | Path) -> list[TraceSample]:
    """All samples of one official-layout episode directory, validated, in frame order."""
    ep_dir = Path(ep_dir)
    files = sorted(entries(ep_dir / "samples", "*.npz"), key=lambda p: _stem_frame(p.stem))
    check(len(files) > 0, ep_dir / "samples", "no sample .npz files")
    instructions = _read_instructions(ep_dir)
    cameras = _read_cameras(ep_dir)
    return [_read_sample(ep_dir, f, instructions, cameras) for f in files]


def _stem_frame(stem: str) -> tuple[int, str]:
    tail = stem.rsplit("_", 1)[-1]
    return (int(tail), stem) if tail.isdigit() else (0, stem)


def _read_instructions(ep_dir: Path) -> list[str] | None:
    path = ep_dir / "three_instructions.json"
    if not path.exists():
        return None
    data = load_json(path)
    check(isinstance(data, dict), path, "must hold a JSON object with instruction_1..3")
    texts = [str(data[k]) for k in sorted(data) if k.startswith("instruction_") and str(data[k]).strip()]
    return list(dict.fromkeys(texts))  # drop repeats, keep order


def _read_cameras(ep_dir: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    path = ep_dir / f"{ep_dir.name}.npz"
    if not path.exists():
        return {}
    arrays = load_npz(path)
    if "intrinsics" not in arrays or "extrinsics" not in arrays:
        return {}
    K, w2c = arrays["intrinsics"], arrays["extrinsics"]
    frames = arrays.get("frame_index", np.arange(len(K)))
    check(len(K) == len(w2c) == len(frames), path, "intrinsics, extrinsics and frame_index differ in length")
    return {int(f): (K[i].astype(np.float64), w2c[i].astype(np.float64)) for i, f in enumerate(frames)}


def _read_sample(ep_dir: Path, path: Path, instructions: list[str] | None, cameras: dict) -> TraceSample:
    arrays = load_npz(path, ("traj",))
    traj = arrays["traj"].astype(np.float64)
    check(traj.ndim == 3 and traj.shape[-1] in (2, 3), path, f"traj must be (N, S, 2|3), got {traj.shape}")
    finite_steps = np.isfinite(traj).all(axis=(0, 2))
    valid = arrays["valid_steps"].astype(bool) if "valid_steps" in arrays else finite_steps
    check(valid.shape == finite_steps.shape, path, f"valid_steps {valid.shape} does not match traj {traj.shape}")
    check(bool(valid.any()), path, "no valid steps")
    count = int(np.flatnonzero(valid)[-1]) + 1
    check(bool(valid[:count].all()), path, "valid_steps is not a prefix of True values")
    check(bool(finite_steps[:count].all()), path, "non-finite trace values (NaN/inf) inside the valid steps")
    traj = forward_fill(np.where(np.isfinite(traj), traj, 0.0), valid)
    has_depth = traj.shape[-1] == 3
    if not has_depth:
        traj = np.concatenate([traj, np.zeros(traj.shape[:-1] + (1,))], -1)
    frame = int(arrays["frame_index"]) if "frame_index" in arrays else _stem_frame(path.stem)[0]
    image_path = ep_dir / str(arrays["image_path"]) if "image_path" in arrays else None
    if image_path is None or not image_path.is_file():
        image_path = ep_dir / "images" / f"{path.stem}.png"
    rgb = read_png(image_path)
    depth = _read_depth(ep_dir / "depth" / f"{path.stem}_raw.npz", rgb.shape[:2])
    K, w2c = cameras.get(frame, (None, None))
    meta = {"episode_id": ep_dir.name, "query_frame": frame, "source": "official"}
    if instructions is None:
        meta["instructions_default"] = True
    sample = TraceSample(
        rgb,
        traj.astype(np.float32),
        valid,
        instructions or [DEFAULT_INSTRUCTION],
        has_depth,
        depth,
        K,
        w2c,
        None,
        arrays.get("traj_2d"),
        meta,
    )
    sample.validate(path)
    return sample


def _read_depth(path: Path, image_hw: tuple[int, int]) -> np.ndarray | None:
    if not path.exists():
        return None
    depth = load_npz(path, ("depth",))["depth"].astype(np.float32)
    depth = depth.squeeze()
    check(depth.shape == image_hw, path, f"depth size {depth.shape} does not match the image {image_hw}")
    check(bool(np.isfinite(depth).all()), path, "depth has NaN or inf values")
    check(bool((depth >= 0).all()), path, "depth has negative values")
    return depth


def describe_instructions(ep_dir: Path) -> str:
    """The instruction file as one JSON line (for ``tracegen inspect``)."""
    path = ep_dir / "three_instructions.json"
    return json.dumps(load_json(path)) if path.exists() else "(none: default instruction)"
