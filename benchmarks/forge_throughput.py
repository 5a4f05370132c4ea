"""TraceForge throughput: 150-frame 224 x 224 RGB-D clips with given cameras, through the whole ``forge`` run
(decode, track, compensate, retarget, filter, write), with the local runner.

    python benchmarks/forge_throughput.py --episodes runs/forge_bench/clips150 --workers 1 2 --json out.json

Prints clips per minute (wall clock of the run, including worker start-up) per worker count, per core, and where the
time goes by stage (summed over episodes: with N workers the stage seconds add up to about N x the wall time).
The machine is shared: run it more than once and report the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path


def main() -> None:
    from tracegen.forge.config import ForgeConfig
    from tracegen.forge.runners import run
    from tracegen.forge.sources import discover

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    items = discover(args.episodes)
    results = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="forge-throughput-") as tmp:
            summary = run(items, ForgeConfig(), tmp, workers=workers, progress=False)
        clips = summary["frames_processed"] / 150
        per_min = clips / (summary["seconds"] / 60)
        total = sum(summary["stage_seconds"].values())
        row = {
            "workers": workers,
            "clips": round(clips, 2),
            "seconds": summary["seconds"],
            "clips_per_min": round(per_min, 2),
            "clips_per_min_per_worker": round(per_min / workers, 2),
            "stage_share": {k: round(v / total, 3) for k, v in summary["stage_seconds"].items()},
            "stage_seconds_per_clip": {k: round(v / clips, 3) for k, v in summary["stage_seconds"].items()},
            "failed": summary["episodes_failed"],
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        results.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
