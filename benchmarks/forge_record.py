"""Record the TraceForge benchmark episodes (simulated, with exact ground truth), resumably.

    python benchmarks/forge_record.py --out runs/forge_bench            # everything below
    python benchmarks/forge_record.py --out runs/forge_bench --only moving

* ``static/``: the AVDC Meta-World protocol's 11 tasks x 3 cameras (corner, corner2, corner3; re-aimed upright),
  scripted expert, seed 1000, plus robosuite Lift with two arms (Panda, UR5e) x 2 cameras; 224 x 224, episodes end
  a few steps after success (as recorded demonstrations do).
* ``moving/``: the 11 Meta-World tasks filmed by ``corner3`` moving along a hand-held-like path
  (:mod:`tracegen.forge.simdata`): the benchmark of ``--camera colmap``.
* ``clips150/``: 150-frame clips (no early stop) of 10 tasks from ``corner3``: the throughput benchmark.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def record_static(out: Path) -> None:
    from tracegen.sim.protocol import AVDC_TASKS
    from tracegen.sim.recorder import RecordConfig, build_corpus, expand_entries, summary_table

    entries = expand_entries(
        [
            dict(
                suite="metaworld",
                tasks=list(AVDC_TASKS),
                embodiment="sawyer",
                cameras=["corner", "corner2", "corner3"],
                episodes=1,
                seed=1000,
            ),
            dict(
                suite="robosuite",
                task="Lift",
                robots=["Panda", "UR5e"],
                cameras=["agentview", "frontview"],
                episodes=1,
                seed=0,
            ),
        ]
    )
    print(summary_table(build_corpus(entries, out, RecordConfig(), progress=False)))


def record_moving_set(out: Path) -> None:
    from tracegen.forge.simdata import record_moving
    from tracegen.sim.protocol import AVDC_TASKS

    for task in AVDC_TASKS:
        start = time.perf_counter()
        path = record_moving("metaworld", task, "corner3", 1000, out)
        print(f"{path.name}  {time.perf_counter() - start:.1f}s", flush=True)


def record_clips150(out: Path) -> None:
    from tracegen.sim.protocol import AVDC_TASKS
    from tracegen.sim.recorder import RecordConfig, build_corpus, expand_entries, summary_table

    entries = expand_entries(
        [
            dict(
                suite="metaworld",
                tasks=list(AVDC_TASKS[:10]),
                embodiment="sawyer",
                cameras=["corner3"],
                episodes=1,
                seed=2000,
            )
        ]
    )
    cfg = RecordConfig(max_steps=149, stop_on_success=False, keep_failures=True)
    print(summary_table(build_corpus(entries, out, cfg, progress=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", choices=("static", "moving", "clips150"), action="append")
    args = parser.parse_args()
    parts = {"static": record_static, "moving": record_moving_set, "clips150": record_clips150}
    for name in args.only or list(parts):
        print(f"== {name}", flush=True)
        parts[name](args.out / name)


if __name__ == "__main__":
    main()
