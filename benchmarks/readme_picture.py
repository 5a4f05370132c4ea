"""The README's picture: a model's predicted trace beside the exact one, for one held-out observation.

    python benchmarks/readme_picture.py --ckpt runs/closed_loop/warmup --data runs/closed_loop/traces/heldout \
        --match basketball_sawyer_corner_ --out docs/demo_prediction.png

Picks the sample of the first matching episode whose exact trace moves most, predicts with the model's default
sampler (seed 0) and writes predicted (left) | exact (right), drawn as the demo report draws them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from tracegen.io.convert import trace_shards
    from tracegen.io.official import write_png
    from tracegen.model import TraceGen
    from tracegen.viz.overlay import draw_traces, side_by_side

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a trace dataset (tracegen layout)")
    parser.add_argument("--match", default="", help="a substring of the episode name")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    samples = [s for name, shard in trace_shards(args.data, "traces") if args.match in name for s in shard]
    if not samples:
        raise SystemExit(f"{args.data}: no sample of an episode matching {args.match!r}")

    def motion(s) -> float:  # px: the largest displacement of any point over its valid steps
        traj = s.traj[:, : s.num_valid, :2]
        return float(np.nanmax(np.linalg.norm(traj - traj[:, :1], axis=-1)))

    sample = max(samples, key=motion)
    pred = TraceGen.from_pretrained(args.ckpt).predict(sample.rgb, sample.depth, sample.instructions[0]).traj[0, 0]
    exact = sample.traj[:, : sample.num_valid]
    left, right = (draw_traces(sample.rgb, traj, min_motion_px=1.0) for traj in (pred, exact))
    write_png(args.out, side_by_side(left, right))
    where = f"{sample.meta.get('episode_id')} @ frame {sample.meta.get('query_frame')}"
    print(f"{args.out}: {where}, {sample.instructions[0]!r}")


if __name__ == "__main__":
    main()
