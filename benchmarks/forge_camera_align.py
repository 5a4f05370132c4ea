"""Moving-camera poses from structure from motion, before and after aligning the depth maps (``rgbd_align``),
against the simulator's true cameras, frame by frame.

    python benchmarks/forge_camera_align.py --episodes runs/forge_bench/moving --png docs/forge/camera_align.png

For each episode (``benchmarks/forge_record.py`` records them: a camera orbiting and bobbing through the demo,
given intrinsics, sensor depth) the ``colmap`` camera stage's two steps run separately: SfM scaled to and aligned
with the depth at its sparse points (``--set camera.colmap_dense_align=false``), then the dense alignment. Prints
per episode the rotation error (degrees, each frame's rotation to frame 0, as ``forge-eval`` measures it) of both,
writes the pooled medians / p90 as JSON, and plots every frame's error of every episode (log scale).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tracegen.forge.camera import sfm_cameras
from tracegen.forge.config import ForgeConfig
from tracegen.forge.evaluate import rotation_errors_deg
from tracegen.forge.rgbd_align import align_depth
from tracegen.forge.sources import discover, load_clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=Path, required=True)
    parser.add_argument("--png", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cfg = ForgeConfig()
    cam = cfg.camera
    rows, curves = [], []
    for item in discover(args.episodes, cfg.source):
        clip = load_clip(item, cfg.source, keep_gt=True)
        start = time.perf_counter()
        sfm, _ = sfm_cameras(clip, cam)
        middle = time.perf_counter()
        aligned, stats = align_depth(clip.depth, sfm.K, sfm.w2c, sfm.registered, sweeps=cam.colmap_align_sweeps)
        end = time.perf_counter()
        before, after = rotation_errors_deg(sfm.w2c, clip.w2c), rotation_errors_deg(aligned, clip.w2c)
        curves.append((item.name, before, after))
        rows.append(
            {
                "episode": item.name,
                "sfm_deg_median": float(np.median(before)),
                "aligned_deg_median": float(np.median(after)),
                "aligned_deg_max": float(after.max()),
                "sfm_seconds": round(middle - start, 2),
                "align_seconds": round(end - middle, 2),
                **stats,
            }
        )
        print(
            f"{item.name:58s} SfM {np.median(before):.3f} deg -> aligned {np.median(after):.4f} deg "
            f"(max {after.max():.3f}); {middle - start:.1f} s + {end - middle:.1f} s",
            flush=True,
        )
    pooled = {k: np.concatenate([c[i] for c in curves]) for i, k in ((1, "sfm"), (2, "aligned"))}
    summary = {
        f"{k}_deg_{q}": round(float(np.percentile(v, p)), 4)
        for k, v in pooled.items()
        for q, p in (("median", 50), ("p90", 90))
    }
    summary |= {"episodes": len(rows), "per_episode": rows}
    print(json.dumps({k: v for k, v in summary.items() if k != "per_episode"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if args.png:
        plot(curves, args.png)


def plot(curves: list[tuple[str, np.ndarray, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for i, (_, before, after) in enumerate(curves):
        ax.plot(np.maximum(before, 1e-4), color="tab:red", lw=0.8, alpha=0.7, label="SfM" if i == 0 else None)
        ax.plot(
            np.maximum(after, 1e-4),
            color="tab:blue",
            lw=0.8,
            alpha=0.7,
            label="SfM + depth alignment" if i == 0 else None,
        )
    ax.set_yscale("log")
    ax.set_xlabel("frame")
    ax.set_ylabel("rotation error to frame 0 (deg)")
    ax.set_title(f"moving camera, {len(curves)} simulated episodes: camera error per frame")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
