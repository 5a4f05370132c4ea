"""Scripted expert success rates: every Meta-World task and every robosuite task x arm (no rendering).

    MUJOCO_GL=egl python benchmarks/sim_experts.py --suite metaworld --seeds 10
    MUJOCO_GL=egl python benchmarks/sim_experts.py --suite robosuite --seeds 10

Runs each expert from seeds 0 .. N-1 until success or the task's step limit (Meta-World 500 steps, robosuite
HORIZON) and prints one row per task (x arm) with successes, mean steps to success and seconds, then totals.
Meta-World embodiment variants share the Sawyer's physics exactly, so their rates equal the Sawyer's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tracegen.sim.env import make_env, suite_names


def success_rate(env, seeds: range) -> tuple[int, list[int]]:
    steps = []
    for seed in seeds:
        env.reset(seed)
        for t in range(env.max_steps):
            env.step(env.expert_action())
            if env.success:
                steps.append(t + 1)
                break
    return len(steps), steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("metaworld", "robosuite"), default="metaworld")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--tasks", nargs="*", help="default: all tasks of the suite")
    ap.add_argument("--robots", nargs="*", help="robosuite arms (default: all six)")
    args = ap.parse_args()
    names = suite_names(args.suite)
    tasks = args.tasks or names.tasks
    bodies = ["sawyer"] if args.suite == "metaworld" else (args.robots or names.embodiments)
    total, wins = 0, 0
    print(f"{'task':<28}{'embodiment':<12}{'success':>9}{'mean steps':>12}{'seconds':>9}", flush=True)
    for task in tasks:
        for body in bodies:
            start = time.perf_counter()
            with make_env(args.suite, task, body, 64, 64) as env:
                n, steps = success_rate(env, range(args.seeds))
            total, wins = total + args.seeds, wins + n
            mean = f"{np.mean(steps):.0f}" if steps else "-"
            seconds = time.perf_counter() - start
            print(f"{task:<28}{body:<12}{f'{n}/{args.seeds}':>9}{mean:>12}{seconds:>9.1f}", flush=True)
    print(f"{'total':<40}{f'{wins}/{total}':>9}  ({100 * wins / total:.1f} %)")


if __name__ == "__main__":
    main()
