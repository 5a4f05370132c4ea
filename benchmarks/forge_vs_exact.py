"""TraceForge's triplets against the simulator's exact ones, window by window, on the points that matter most.

    python benchmarks/forge_vs_exact.py --forge runs/cl/traces/target_forge --exact runs/cl/traces/target_gt \
        [--top 8] [--steps 17] [--json out.json]

Both datasets come from the same episodes (``tracegen forge`` and ``tracegen convert``), so their windows pair up by
(episode, query frame). For every pair, the ``--top`` points that the exact trace moves farthest (the effector and
what it handles: the fastest 2 % of 400 points is 8) are compared at the *same retargeted step* -- the last step
both traces hold, at most ``--steps`` (the 16 steps a rollout follows, plus the start) -- which is what a model
trained on either learns to predict. Printed for the windows at the start of their episode (query frame 0: the first
plan of a closed-loop episode) and for all windows: the displacement ratio (TraceForge / exact; median and lower
quartile), the end-point error in pixels (median and upper quartile), the valid steps of each, and the windows that
only one of the two keeps.
"""

from __future__ import annotations

import argparse

import numpy as np

from tracegen.io.files import save_json
from tracegen.io.trace_dataset import TraceDataset


def windows(path: str) -> dict:
    """(episode id, query frame) -> sample."""
    return {(s.meta["episode_id"], int(s.meta["query_frame"])): s for s in TraceDataset(path)}


def compare_pair(forge, exact, top: int, max_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Displacement ratios and end-point errors (px) ``(top,)`` of the exact trace's fastest points."""
    n = min(forge.num_valid, exact.num_valid, max_steps)
    d_exact = exact.traj[:, n - 1, :2] - exact.traj[:, 0, :2]  # (N, 2) px
    d_forge = forge.traj[:, n - 1, :2] - forge.traj[:, 0, :2]
    fastest = np.argsort(-np.linalg.norm(d_exact, axis=1))[:top]
    length = np.maximum(np.linalg.norm(d_exact[fastest], axis=1), 1e-6)
    ratio = np.linalg.norm(d_forge[fastest], axis=1) / length
    return ratio, np.linalg.norm(d_forge[fastest] - d_exact[fastest], axis=1)


def summary(forge: dict, exact: dict, keys: list, top: int, max_steps: int) -> dict:
    ratios, errors = zip(*(compare_pair(forge[k], exact[k], top, max_steps) for k in keys), strict=True)
    ratio, error = np.concatenate(ratios), np.concatenate(errors)
    return {
        "windows": len(keys),
        "ratio_median": float(np.median(ratio)),
        "ratio_p25": float(np.percentile(ratio, 25)),
        "error_px_median": float(np.median(error)),
        "error_px_p75": float(np.percentile(error, 75)),
        "valid_steps_exact": float(np.median([exact[k].num_valid for k in keys])),
        "valid_steps_forge": float(np.median([forge[k].num_valid for k in keys])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--forge", required=True)
    ap.add_argument("--exact", required=True)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--steps", type=int, default=17)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    forge, exact = windows(args.forge), windows(args.exact)
    common = sorted(set(forge) & set(exact))
    result = {
        "forge_only_windows": len(set(forge) - set(exact)),
        "exact_only_windows": len(set(exact) - set(forge)),
        "episode_start": summary(forge, exact, [k for k in common if k[1] == 0], args.top, args.steps),
        "all": summary(forge, exact, common, args.top, args.steps),
    }
    print(
        f"windows: {len(common)} in both, {result['forge_only_windows']} only TraceForge's, "
        f"{result['exact_only_windows']} only the exact set's"
    )
    for name in ("episode_start", "all"):
        s = result[name]
        print(
            f"{name:14s} n={s['windows']:5d}  displacement forge/exact median {s['ratio_median']:.2f} "
            f"(p25 {s['ratio_p25']:.2f})  end error median {s['error_px_median']:.1f} px (p75 "
            f"{s['error_px_p75']:.1f})  valid steps exact {s['valid_steps_exact']:.0f} / forge "
            f"{s['valid_steps_forge']:.0f}"
        )
    if args.json:
        save_json(args.json, vars(args) | result)


if __name__ == "__main__":
    main()
