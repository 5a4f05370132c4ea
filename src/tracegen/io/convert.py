"""Detect what a path holds and convert between layouts: tracegen episodes and trace datasets, the official
TraceGen/TraceForge layout, TAPVid-3D ``.npz`` and LeRobot v3 datasets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from tracegen.errors import DataError
from tracegen.forge.windows import WindowConfig, gt_samples
from tracegen.io import lerobot, official, tapvid3d, trace_dataset
from tracegen.io.episode import is_episode, read_episode, write_episode
from tracegen.io.files import entries
from tracegen.io.trace_dataset import TraceSample

KINDS = ("traces", "episodes", "official", "lerobot", "tapvid3d")
TARGETS = ("tracegen", "official", "tapvid3d")


def episode_dirs(path: str | Path) -> list[Path]:
    """The tracegen episode directories at ``path``: itself, or its direct children."""
    path = Path(path)
    if is_episode(path):
        return [path]
    return [p for p in entries(path) if is_episode(p)] if path.is_dir() else []


def detect(path: str | Path) -> str:
    """Which of :data:`KINDS` ``path`` holds; a :class:`DataError` says what was looked for when none matches."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "does not exist")
    if trace_dataset.is_trace_dataset(path):
        return "traces"
    if episode_dirs(path):
        return "episodes"
    if official.is_official(path):
        return "official"
    if lerobot.is_lerobot_dataset(path):
        return "lerobot"
    if tapvid3d.is_tapvid3d(path):
        return "tapvid3d"
    raise DataError(
        path,
        "unrecognised layout: expected a tracegen trace dataset (dataset.json), tracegen episodes "
        "(episode.json), an official TraceForge episode (samples/*.npz), a LeRobot dataset "
        "(meta/info.json) or TAPVid-3D .npz files (tracks_XYZ)",
    )


def trace_shards(
    path: str | Path, kind: str, window: WindowConfig = WindowConfig()
) -> Iterator[tuple[str, list[TraceSample]]]:
    """The triplets held at ``path``, grouped into shards (one per episode) as ``(name, samples)``."""
    path = Path(path)
    if kind == "traces":
        for shard in trace_dataset.TraceDataset(path).shards:
            yield shard.stem, trace_dataset.read_shard(shard)
    elif kind == "official":
        for ep_dir in official.official_episode_dirs(path):
            yield ep_dir.name, official.read_official_episode(ep_dir)
    elif kind == "tapvid3d":
        groups: dict[str, list[TraceSample]] = {}
        for f in tapvid3d.tapvid3d_files(path):
            sample = tapvid3d.read_tapvid3d(f)
            groups.setdefault(str(sample.meta.get("episode_id", f.stem)), []).append(sample)
        yield from groups.items()
    elif kind == "episodes":
        for ep_dir in episode_dirs(path):
            ep = read_episode(ep_dir)
            if ep.gt is None:
                raise DataError(
                    ep_dir,
                    "episode has no ground-truth tracks; run `tracegen forge` to extract traces from its video",
                )
            yield ep_dir.name, gt_samples(ep, window)[0]
    elif kind == "lerobot":
        raise DataError(
            path,
            "a LeRobot dataset holds raw videos, not traces: convert it to tracegen episodes "
            "(--to tracegen), then run `tracegen forge` on them",
        )
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS}")


def convert(src: str | Path, dst: str | Path, to: str, window: WindowConfig = WindowConfig()) -> dict:
    """Convert whatever ``src`` holds into layout ``to`` at ``dst``; returns a summary (counts per kind)."""
    if to not in TARGETS:
        raise ValueError(f"unknown target {to!r}; one of {TARGETS}")
    src, dst = Path(src), Path(dst)
    kind = detect(src)
    if kind == "lerobot" and to == "tracegen":
        count = 0
        info = lerobot.lerobot_info(src)
        cameras = info["camera_keys"]
        for camera in cameras:  # before any episode is written: an episode's H.264 video needs even sizes
            feature = info["features"][camera]
            size = dict(zip(feature.get("names") or ["height", "width"], feature.get("shape") or [], strict=False))
            height, width = size.get("height", 0), size.get("width", 0)
            if int(height) % 2 or int(width) % 2:
                raise DataError(
                    src,
                    f"camera {camera} has {height} x {width} px frames; tracegen episodes store H.264 video, "
                    "which needs even sizes: run tracegen forge on the dataset itself (it reads any size)",
                )
        for camera in cameras:  # one tracegen episode per (episode, camera)
            for ep in lerobot.iter_lerobot_episodes(src, camera=camera):
                name = f"episode_{ep.meta['episode_index']:06d}" + (f"_{camera}" if len(cameras) > 1 else "")
                write_episode(dst / name, ep)
                count += 1
        return {"source": kind, "target": "tracegen episodes", "episodes": count, "cameras": len(cameras)}
    counts: Counter = Counter()
    retarget = trace_dataset.read_dataset_meta(src)["retarget"] if kind == "traces" else asdict(window.retarget)
    for name, samples in trace_shards(src, kind, window):
        if not samples:
            counts["empty_episodes"] += 1
            continue
        _write(dst, to, name, samples, retarget)
        counts["episodes"] += 1
        counts["samples"] += len(samples)
    return {"source": kind, "target": to, **counts}


def _write(dst: Path, to: str, name: str, samples: list[TraceSample], retarget: dict) -> None:
    if to == "tracegen":
        trace_dataset.create_dataset(dst, samples[0].grid, retarget, created_by="tracegen convert")
        trace_dataset.write_shard(dst, name, samples)
    elif to == "official":
        official.write_official_episode(dst, name, samples)
    else:
        for i, sample in enumerate(samples):
            tapvid3d.write_tapvid3d(dst / f"{name}_{sample.meta.get('query_frame', i)}.npz", sample)
