"""A trace dataset of the first N episodes of every task x camera x embodiment of another: a learning curve's data.

    python benchmarks/trace_subset.py runs/s32/cl/traces/target_gt runs/curve/target_gt_10 --episodes 10

Episodes are ordered by the seed in their id (``..._s001003``), so the subsets nest: the first 5 of a 25-video set
are the 5 of a 5-video set recorded with the same seeds. The new dataset links the source's shards (nothing is
copied) and copies its ``dataset.json``; an existing OUT is refused.
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path

from tracegen.io.files import load_json


def episode_groups(shards: Path) -> dict[tuple[str, str, str], list[Path]]:
    """Each ``(task, camera, embodiment)``'s shard markers ``<name>.json``, ordered by episode id."""
    groups = defaultdict(list)
    for marker in sorted(shards.glob("*.json")):
        meta = load_json(marker)["samples"][0]["meta"]
        groups[meta["task"], meta["camera"], meta["embodiment"]].append(marker)
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="a trace dataset (tracegen forge / convert output)")
    ap.add_argument("out", type=Path, help="the new dataset's folder (must not exist)")
    ap.add_argument("--episodes", type=int, required=True, help="episodes kept per task x camera x embodiment")
    args = ap.parse_args()
    if not (args.source / "dataset.json").is_file():
        raise SystemExit(f"{args.source}: not a trace dataset (no dataset.json)")
    if args.out.exists():
        raise SystemExit(f"{args.out}: exists; give a new folder")
    if args.episodes < 1:
        raise SystemExit(f"--episodes {args.episodes}: keep at least 1")
    groups = episode_groups(args.source / "shards")
    (args.out / "shards").mkdir(parents=True)
    kept = 0
    for markers in groups.values():
        for marker in markers[: args.episodes]:
            for part in (marker.with_suffix(".npz"), marker):  # the marker last: a shard exists once it is there
                (args.out / "shards" / part.name).symlink_to(part.resolve())
            kept += 1
    shutil.copy(args.source / "dataset.json", args.out / "dataset.json")
    short = sum(len(m) < args.episodes for m in groups.values())
    print(f"{args.out}: {kept} episodes of {len(groups)} groups" + (f" ({short} groups have fewer)" if short else ""))


if __name__ == "__main__":
    main()
