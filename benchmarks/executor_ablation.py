"""Oracle-planner ablations of the executor's rules: each run switches one rule back (or off) and counts successes.

    MUJOCO_GL=egl python benchmarks/executor_ablation.py --tasks basketball shelf-place hammer assembly --seeds 3 \
        --set grasp_press_m=0 --set executor.dip_refine=false

``--set KEY=VALUE`` overrides a RolloutConfig field, or an ExecutorConfig field as ``executor.FIELD`` (numbers,
lists and true/false as JSON, the rest as text; ``tracegen bench metaworld --set`` takes the same). Prints one line
per episode and a total; the protocol of ``tracegen bench metaworld --protocol mini --planner oracle`` (240x320,
500 steps, 40 replans) on ``--camera``.
"""

from __future__ import annotations

import argparse
import time

from tracegen.act.planners import OraclePlanner
from tracegen.act.rollout import RolloutConfig, rollout
from tracegen.bench.metaworld import PROTOCOLS
from tracegen.settings import apply_settings, changed_settings
from tracegen.sim.env import make_env
from tracegen.sim.instructions import instructions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["basketball", "shelf-place", "hammer", "assembly"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--camera", default="corner")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    proto = PROTOCOLS["mini"]
    base = RolloutConfig(max_env_steps=proto.max_steps, max_replans=40)
    cfg = apply_settings(base, args.set, example="executor.path_mode")
    start, total, count = time.perf_counter(), 0, 0
    for task in args.tasks:
        env = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1])
        for seed in proto.eval_seeds[: args.seeds]:
            r = rollout(env, OraclePlanner(), args.camera, seed, instructions(proto.suite, task)[0], cfg)
            total, count = total + r.success, count + 1
            print(f"{task}/{seed}: {'ok' if r.success else 'FAIL'} ({r.reason}, {r.steps} steps, {r.plans} plans)")
        env.close()
    changed = changed_settings(cfg, base)
    print(f"TOTAL {total}/{count} with {changed or 'defaults'} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
