"""The trace dataset: observation-trace-language triplets, the data TraceGen trains on.

Layout (docs/FORMATS.md)::

    <dataset>/dataset.json          format, format_version, grid, retargeting settings, provenance
    <dataset>/shards/<name>.npz     arrays of all samples of one shard (usually one episode), leading axis S
    <dataset>/shards/<name>.json    the shard's commit marker: sample count, image size, per-sample metadata

Parallel writers each write their own shards (names are unique per episode); a shard exists for readers only once
its ``.json`` is in place, and both files are written atomically, so a killed writer loses only its shard in flight.
Random access loads one shard at a time and keeps a few in a small cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracegen.errors import check
from tracegen.io.episode import validate_cameras
from tracegen.io.files import check_finite, check_format, entries, load_json, load_npz, save_json, save_npz
from tracegen.traces import forward_fill

FORMAT = "tracegen-traces"
VERSION = 1


@dataclass
class TraceSample:
    """One observation-trace-language triplet. N = G * G query points, S retargeted steps, image H x W.

    Attributes:
        rgb: ``(H, W, 3)`` uint8 observation (the trace's reference frame).
        traj: ``(N, S, 3)`` float32 ``(u px, v px, z m)`` in the reference camera; steps after the last valid one
            repeat it (never NaN). For 2D-only samples z is 0 and ``has_depth`` is False.
        valid_steps: ``(S,)`` bool, a prefix of True then False.
        instructions: one or more phrasings of the task.
        has_depth: whether ``traj``'s z channel is metric depth.
        depth: ``(H, W)`` float32 metres of planar depth (0 = no measurement), or None.
        K: ``(3, 3)`` intrinsics and w2c: ``(4, 4)`` world -> camera of the reference frame, or None when unknown.
        visibility: ``(N, S)`` bool per retargeted step, or None when unknown (the official files keep none).
        traj_2d: ``(N, T, 2)`` float32 time-domain pixel tracks (not retargeted), or None.
        meta: provenance: ``episode_id``, ``query_frame``, ``source``, ``task``, ``embodiment``, ...
    """

    rgb: np.ndarray
    traj: np.ndarray
    valid_steps: np.ndarray
    instructions: list[str]
    has_depth: bool = True
    depth: np.ndarray | None = None
    K: np.ndarray | None = None
    w2c: np.ndarray | None = None
    visibility: np.ndarray | None = None
    traj_2d: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> int:
        return math.isqrt(len(self.traj))

    @property
    def num_valid(self) -> int:
        return int(self.valid_steps.sum())

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    def validate(self, path: str | Path = "<sample>") -> None:
        """Raise :class:`DataError` naming ``path`` for any inconsistency."""
        path = Path(path)
        check(
            self.rgb.ndim == 3 and self.rgb.shape[-1] == 3 and self.rgb.dtype == np.uint8,
            path,
            f"rgb must be (H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}",
        )
        H, W = self.image_size
        check(
            self.traj.ndim == 3 and self.traj.shape[-1] == 3,
            path,
            f"traj must be (N, S, 3), got {self.traj.shape}",
        )
        N, S = self.traj.shape[:2]
        check(N > 0 and math.isqrt(N) ** 2 == N, path, f"traj has {N} points; a square query grid is expected")
        check_finite(path, "traj", self.traj)
        check(
            self.valid_steps.shape == (S,) and self.valid_steps.dtype == bool,
            path,
            f"valid_steps must be ({S},) bool, got {self.valid_steps.shape} {self.valid_steps.dtype}",
        )
        n_valid = self.num_valid
        check(
            n_valid > 0 and bool(self.valid_steps[:n_valid].all()),
            path,
            "valid_steps must be a non-empty prefix of True values",
        )
        check(all(isinstance(s, str) for s in self.instructions), path, "instructions must be strings")
        if self.depth is not None:
            check(
                self.depth.shape == (H, W),
                path,
                f"depth size {self.depth.shape} does not match the image {(H, W)}",
            )
            check_finite(path, "depth", self.depth)
            check(bool((self.depth >= 0).all()), path, "depth has negative values")
        if self.K is not None or self.w2c is not None:
            check(self.K is not None and self.w2c is not None, path, "cameras need both K and w2c")
            validate_cameras(path, self.K[None], self.w2c[None], 1)
        if self.visibility is not None:
            check(
                self.visibility.shape == (N, S),
                path,
                f"visibility must be ({N}, {S}), got {self.visibility.shape}",
            )
        if self.traj_2d is not None:
            check(
                self.traj_2d.ndim == 3 and self.traj_2d.shape[0] == N and self.traj_2d.shape[2] == 2,
                path,
                f"traj_2d must be ({N}, T, 2), got {self.traj_2d.shape}",
            )
            check_finite(path, "traj_2d", self.traj_2d)


# --- writing


def create_dataset(path: str | Path, grid: int, retarget: dict[str, Any], **provenance: Any) -> Path:
    """Create (or reopen) a trace dataset directory. Reopening checks that the settings are the same."""
    path = Path(path)
    meta = {"format": FORMAT, "format_version": VERSION, "grid": grid, "retarget": retarget, **provenance}
    meta_path = path / "dataset.json"
    if meta_path.exists():
        old = read_dataset_meta(path)
        for key in ("grid", "retarget"):
            check(
                old.get(key) == meta[key],
                meta_path,
                f"existing dataset has {key}={old.get(key)!r}, new data has {meta[key]!r}; write to a new directory",
            )
    else:
        save_json(meta_path, meta)
    (path / "shards").mkdir(parents=True, exist_ok=True)
    return path


def write_shard(dataset: str | Path, name: str, samples: list[TraceSample]) -> Path:
    """Write ``samples`` (same image size, all with or all without depth/cameras) as shard ``name`` atomically."""
    dataset = Path(dataset)
    npz_path, json_path = dataset / "shards" / f"{name}.npz", dataset / "shards" / f"{name}.json"
    check(len(samples) > 0, json_path, "a shard needs at least one sample")
    for i, s in enumerate(samples):
        s.validate(f"{json_path}[{i}]")
    _check_uniform(json_path, samples)
    arrays: dict[str, np.ndarray] = {"rgb": np.stack([s.rgb for s in samples])}
    steps = max(s.num_valid for s in samples)  # store only up to the longest valid prefix
    arrays["traj"] = np.stack([_fit_steps(s.traj, s.valid_steps, steps) for s in samples]).astype(np.float32)
    arrays["valid_steps"] = np.stack([_fit_mask(s.valid_steps, steps) for s in samples])
    for key in ("depth", "K", "w2c"):
        if getattr(samples[0], key) is not None:
            arrays[key] = np.stack([getattr(s, key) for s in samples])
    if samples[0].visibility is not None:
        arrays["visibility"] = np.stack([_fit_mask_2d(s.visibility, steps) for s in samples])
    if samples[0].traj_2d is not None:
        t_max = max(s.traj_2d.shape[1] for s in samples)
        arrays["traj_2d"] = np.stack([_pad_time(s.traj_2d, t_max) for s in samples]).astype(np.float32)
        arrays["traj_2d_len"] = np.array([s.traj_2d.shape[1] for s in samples], np.int64)
    save_npz(npz_path, **arrays)
    shard_meta = {
        "num_samples": len(samples),
        "height": samples[0].image_size[0],
        "width": samples[0].image_size[1],
        "samples": [{"instructions": s.instructions, "has_depth": s.has_depth, "meta": s.meta} for s in samples],
    }
    save_json(json_path, shard_meta)  # the commit marker comes last
    return json_path


def _check_uniform(path: Path, samples: list[TraceSample]) -> None:
    first = samples[0]
    for s in samples[1:]:
        check(
            s.image_size == first.image_size and len(s.traj) == len(first.traj),
            path,
            "all samples of a shard need the same image size and grid",
        )
        for key in ("depth", "K", "visibility", "traj_2d"):
            check(
                (getattr(s, key) is None) == (getattr(first, key) is None),
                path,
                f"either all samples of a shard have {key} or none",
            )


def _fit_steps(traj: np.ndarray, valid: np.ndarray, steps: int) -> np.ndarray:
    traj = forward_fill(traj, valid)
    if traj.shape[1] >= steps:
        return traj[:, :steps]
    return np.concatenate([traj, np.repeat(traj[:, -1:], steps - traj.shape[1], axis=1)], axis=1)


def _fit_mask(valid: np.ndarray, steps: int) -> np.ndarray:
    out = np.zeros(steps, bool)
    n = min(steps, len(valid))
    out[:n] = valid[:n]
    return out


def _fit_mask_2d(vis: np.ndarray, steps: int) -> np.ndarray:
    out = np.zeros((len(vis), steps), bool)
    n = min(steps, vis.shape[1])
    out[:, :n] = vis[:, :n]
    return out


def _pad_time(traj_2d: np.ndarray, t_max: int) -> np.ndarray:
    pad = t_max - traj_2d.shape[1]
    return np.concatenate([traj_2d, np.repeat(traj_2d[:, -1:], pad, axis=1)], axis=1) if pad else traj_2d


# --- reading


def is_trace_dataset(path: str | Path) -> bool:
    return (Path(path) / "dataset.json").is_file()


def read_dataset_meta(path: str | Path) -> dict[str, Any]:
    meta_path = Path(path) / "dataset.json"
    meta = load_json(meta_path)
    check(isinstance(meta, dict), meta_path, "dataset.json must hold a JSON object")
    check_format(meta_path, meta, FORMAT, (VERSION,))
    return meta


def read_shard(json_path: str | Path) -> list[TraceSample]:
    """All samples of one shard, validated."""
    json_path = Path(json_path)
    meta = load_json(json_path)
    npz_path = json_path.with_suffix(".npz")
    arrays = load_npz(npz_path, ("rgb", "traj", "valid_steps"))
    S = int(meta.get("num_samples", -1))
    check(
        S == len(arrays["rgb"]) == len(meta.get("samples", [])),
        json_path,
        f"num_samples={S} but {npz_path.name} holds {len(arrays['rgb'])} samples",
    )
    for key, value in arrays.items():
        check(len(value) == S, npz_path, f"array {key!r} has {len(value)} entries, expected {S}")
    samples = []
    for i, info in enumerate(meta["samples"]):
        traj_2d = None
        if "traj_2d" in arrays:
            traj_2d = arrays["traj_2d"][i][:, : int(arrays["traj_2d_len"][i])]
        sample = TraceSample(
            rgb=arrays["rgb"][i],
            traj=arrays["traj"][i],
            valid_steps=arrays["valid_steps"][i].astype(bool),
            instructions=list(info.get("instructions", [])),
            has_depth=bool(info.get("has_depth", True)),
            depth=_item(arrays, "depth", i),
            K=_item(arrays, "K", i),
            w2c=_item(arrays, "w2c", i),
            visibility=_item(arrays, "visibility", i),
            traj_2d=traj_2d,
            meta=dict(info.get("meta", {})),
        )
        sample.validate(f"{npz_path}[{i}]")
        samples.append(sample)
    return samples


def _item(arrays: dict[str, np.ndarray], key: str, i: int) -> np.ndarray | None:
    return arrays[key][i] if key in arrays else None


class TraceDataset:
    """Random access to the samples of a trace dataset: ``len(ds)``, ``ds[i] -> TraceSample``, iteration."""

    def __init__(self, path: str | Path, cache_shards: int = 8):
        self.path = Path(path)
        self.meta = read_dataset_meta(self.path)
        self.shards = entries(self.path / "shards", "*.json")
        self.index: list[tuple[int, int]] = []  # (shard number, sample number in shard)
        for k, shard in enumerate(self.shards):
            count = load_json(shard).get("num_samples")
            check(isinstance(count, int) and count > 0, shard, f"invalid num_samples {count!r}")
            self.index += [(k, i) for i in range(count)]
        self._load = functools.lru_cache(maxsize=cache_shards)(lambda k: read_shard(self.shards[k]))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> TraceSample:
        shard, j = self.index[i]
        return self._load(shard)[j]

    def __iter__(self) -> Iterator[TraceSample]:
        for k in range(len(self.shards)):
            yield from self._load(k)

    def episodes(self) -> list[str]:
        """Episode ids in order of appearance (for episode-level splits)."""
        seen: dict[str, None] = {}
        for k in range(len(self.shards)):
            for info in load_json(self.shards[k])["samples"]:
                seen.setdefault(str(info.get("meta", {}).get("episode_id", self.shards[k].stem)), None)
        return list(seen)


def write_dataset(
    path: str | Path,
    shards: Iterable[tuple[str, list[TraceSample]]],
    grid: int,
    retarget: dict[str, Any],
    **provenance: Any,
) -> Path:
    """Create a dataset at ``path`` and write every ``(name, samples)`` shard into it."""
    create_dataset(path, grid, retarget, **provenance)
    for name, samples in shards:
        if samples:
            write_shard(path, name, samples)
    return Path(path)
