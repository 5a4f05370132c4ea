"""Summaries of what a path holds, reading (and so validating) every item: ``tracegen inspect``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tracegen.io import convert, lerobot, tapvid3d
from tracegen.io.episode import Episode, read_episode
from tracegen.io.trace_dataset import TraceSample
from tracegen.traces import official_filter_reason


def inspect(path: str | Path) -> dict[str, Any]:
    """A JSON-serialisable summary of ``path``; raises :class:`~tracegen.errors.DataError` on invalid data."""
    path = Path(path)
    kind = convert.detect(path)
    summary: dict[str, Any] = {"path": str(path), "kind": kind}
    if kind in ("traces", "official", "tapvid3d") and not _is_foreign_tapvid(path, kind):
        samples = (s for _, shard in convert.trace_shards(path, kind) for s in shard)
        summary |= summarise_samples(samples)
    elif kind == "tapvid3d":
        summary |= _summarise_tapvid_tracks(path)
    elif kind == "episodes":
        summary |= summarise_episodes(read_episode(p) for p in convert.episode_dirs(path))
    else:
        info = lerobot.lerobot_info(path)
        summary |= {"lerobot": {k: info[k] for k in info if k != "features"}}
        summary |= summarise_episodes(lerobot.iter_lerobot_episodes(path))
    return summary


def _is_foreign_tapvid(path: Path, kind: str) -> bool:
    """A TAPVid-3D file that tracegen did not write (no observation image): summarise its tracks only."""
    return kind == "tapvid3d" and "tracegen_rgb" not in tapvid3d.read_tapvid3d_tracks(tapvid3d.tapvid3d_files(path)[0])


def _range(values: list[np.ndarray]) -> list[float] | None:
    values = [v for v in values if v.size]
    if not values:
        return None
    return [round(float(min(v.min() for v in values)), 4), round(float(max(v.max() for v in values)), 4)]


def summarise_samples(samples: Iterable[TraceSample]) -> dict[str, Any]:
    """Counts, shapes, units, camera and value ranges of trace samples."""
    n, episodes, sizes, grids, steps = 0, set(), set(), set(), []
    with_depth = with_K = filtered = 0
    u, v, z, texts = [], [], [], []
    for s in samples:
        n += 1
        episodes.add(str(s.meta.get("episode_id", "?")))
        sizes.add(s.image_size)
        grids.add(s.grid)
        steps.append(s.num_valid)
        with_depth += s.has_depth
        with_K += s.K is not None
        H, W = s.image_size
        filtered += official_filter_reason(s.traj, s.valid_steps, H, W) is not None
        t = s.traj[:, : s.num_valid]
        u.append(t[..., 0])
        v.append(t[..., 1])
        if s.has_depth:
            z.append(t[..., 2])
        texts += [x for x in s.instructions if x not in texts][:3]
    return {
        "samples": n,
        "episodes": len(episodes),
        "image_sizes_hw": sorted(sizes),
        "grid": sorted(grids),
        "valid_steps": {"min": min(steps), "mean": round(float(np.mean(steps)), 2), "max": max(steps)} if n else None,
        "samples_3d": with_depth,
        "samples_2d_only": n - with_depth,
        "samples_with_intrinsics": with_K,
        "samples_failing_official_filters": filtered,
        "u_px_range": _range(u),
        "v_px_range": _range(v),
        "z_m_range": _range(z),
        "instructions_examples": texts[:5],
        "units": "traj (N, S, 3): u, v pixels in the reference image, z metres of planar depth",
    }


def summarise_episodes(episodes: Iterable[Episode]) -> dict[str, Any]:
    """Counts, shapes, camera motion, depth range and ground truth of episodes."""
    rows = []
    for ep in episodes:
        row: dict[str, Any] = {
            "id": ep.meta.get("episode_id", ep.meta.get("episode_index")),
            "frames": ep.num_frames,
            "size_hw": [ep.height, ep.width],
            "fps": ep.fps,
            "instructions": len(ep.instructions),
        }
        if ep.depth is not None:
            d = ep.depth[ep.depth > 0]
            row["depth_m_range"] = [round(float(d.min()), 4), round(float(d.max()), 4)] if d.size else None
        if ep.K is not None:
            centres = -np.einsum("tji,tj->ti", ep.w2c[:, :3, :3], ep.w2c[:, :3, 3])  # camera centres in world
            row["fx_fy_first"] = [round(float(ep.K[0, 0, 0]), 3), round(float(ep.K[0, 1, 1]), 3)]
            row["camera_travel_m"] = round(float(np.linalg.norm(centres - centres[0], axis=1).max()), 4)
        if ep.gt is not None:
            row["gt_queries"] = len(ep.gt.query_frames)
            row["gt_visible_fraction"] = round(float(ep.gt.visibility[0, ep.gt.query_frames[0]].mean()), 3)
        for key in ("task", "embodiment", "camera", "success"):
            if key in ep.meta:
                row[key] = ep.meta[key]
        rows.append(row)
    return {
        "episodes": len(rows),
        "frames": sum(r["frames"] for r in rows),
        "items": rows,
        "units": "rgb (T, H, W, 3) uint8; depth metres; K pixels; w2c world->camera (OpenCV axes)",
    }


def _summarise_tapvid_tracks(path: Path) -> dict[str, Any]:
    files = []
    for f in tapvid3d.tapvid3d_files(path):
        a = tapvid3d.read_tapvid3d_tracks(f)
        files.append(
            {
                "file": f.name,
                "steps": a["tracks_XYZ"].shape[0],
                "points": a["tracks_XYZ"].shape[1],
                "visible_fraction": round(float(a["visibility"].mean()), 3),
                "z_m_range": _range([a["tracks_XYZ"][..., 2]]),
            }
        )
    return {
        "files": len(files),
        "items": files,
        "note": "foreign TAPVid-3D files: tracks only (no observation)",
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines (``key: value``; lists of items as indented rows)."""
    lines = []
    for key, value in summary.items():
        if key == "items":
            lines.append(f"items ({len(value)}):")
            lines += [f"  - {', '.join(f'{k}={v}' for k, v in item.items())}" for item in value[:20]]
            if len(value) > 20:
                lines.append(f"  ... {len(value) - 20} more")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)
