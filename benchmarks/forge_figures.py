"""The figures of docs/forge: tracks against ground truth, and camera-motion compensation of real footage.

    python benchmarks/forge_figures.py --episode runs/forge_bench/static/metaworld_door-open_sawyer_corner3_s001000 \
        --real ../shared/data/real/handheld_apple.mp4 --out docs/forge

* ``tracks_door_open.png``: one query window of a simulated episode, time-domain tracks in the query camera:
  exact ground truth | forge tracker | plain Lucas-Kanade.
* ``compensation_handheld.png``: the real hand-held clip (no depth, unknown camera): tracks in the image (the camera
  pans) | the same tracks after SfM + compensation (a static scene: they should stand still).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


def _save(path: Path, rgb: np.ndarray, width: int = 720) -> None:
    """A small PNG: at most ``width`` pixels wide, colours posterised to 32 levels per channel."""
    scale = min(1.0, width / rgb.shape[1])
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) & 0xF8
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(path, small.shape)


def tracks_figure(episode: Path, out: Path, query: int = 4) -> None:
    from tracegen.forge.camera import GivenCamera
    from tracegen.forge.compensate import Compensate
    from tracegen.forge.sources import SourceItem, load_clip
    from tracegen.forge.tracker import ForgeTracker, LKTracker
    from tracegen.traces import world_to_reference
    from tracegen.viz.overlay import draw_traces, side_by_side

    clip = GivenCamera().process(load_clip(SourceItem(episode.name, "episode", str(episode))))
    panels = []
    f = int(clip.gt.query_frames[query])
    L = min(60, clip.num_frames - f)
    gt = world_to_reference(clip.gt.world_tracks(query)[:, f : f + L], clip.K[f], clip.w2c[f])
    panels.append(draw_traces(clip.rgb[f], np.nan_to_num(gt), min_motion_px=2))
    for tracker in (ForgeTracker(), LKTracker()):
        c = Compensate().process(tracker.process(replace(clip, tracks=None)))
        q = int(np.flatnonzero(c.tracks.query_frames == f)[0])
        panels.append(draw_traces(clip.rgb[f], np.nan_to_num(c.reference[q][:, :L]), min_motion_px=2))
    _save(out / "tracks_door_open.png", side_by_side(*panels))


def compensation_figure(video: Path, out: Path) -> None:
    from tracegen.forge.config import CameraConfig, ForgeConfig, SourceConfig
    from tracegen.forge.pipeline import Pipeline
    from tracegen.forge.sources import discover
    from tracegen.viz.overlay import draw_traces, side_by_side

    cfg = ForgeConfig(source=SourceConfig(max_size=384), camera=CameraConfig(kind="colmap", colmap_max_images=25))
    clip = Pipeline(cfg).run(discover(video)[0])
    moved, raw_motion = [], []  # over (point, frame) pairs the tracker sees: compensated vs raw image displacement
    for q, ref in enumerate(clip.reference):
        n = ref.shape[1]
        seen = clip.tracks.visible[q, :, :n]
        moved.append(np.linalg.norm(ref[..., :2] - ref[:, :1, :2], axis=-1)[seen])
        raw_motion.append(np.linalg.norm(clip.tracks.uv[q, :, :n] - clip.tracks.uv[q, :, :1], axis=-1)[seen])
    moved, raw_motion = np.concatenate(moved), np.concatenate(raw_motion)
    stats = {
        "frames": clip.num_frames,
        "size": [clip.height, clip.width],
        **clip.info,
        "raw_displacement_px_median": round(float(np.median(raw_motion)), 2),
        **{f"compensated_px_p{q}": round(float(np.percentile(moved, q)), 2) for q in (50, 75, 90)},
        "compensated_within_2px": round(float((moved < 2).mean()), 3),
        "samples": len(clip.samples),
        "dropped": dict(clip.dropped),
        "seconds": clip.timings,
    }
    print(json.dumps(stats, default=lambda x: round(x, 2)))
    L = int(clip.tracks.lengths[0])
    raw = clip.tracks.uv[0, :, :L]
    raw = np.where(clip.tracks.visible[0, :, :L, None], raw, np.nan)
    raw = np.where(np.isfinite(raw), raw, raw[:, :1])  # hidden / out of view: drawn at the start
    _save(
        out / "compensation_handheld.png",
        side_by_side(draw_traces(clip.rgb[0], raw), draw_traces(clip.rgb[0], clip.reference[0])),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episode", type=Path, required=True)
    parser.add_argument("--real", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/forge"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tracks_figure(args.episode, args.out)
    if args.real and args.real.is_file():
        compensation_figure(args.real, args.out)


if __name__ == "__main__":
    main()
