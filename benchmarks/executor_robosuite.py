"""The executor on robosuite arms: the oracle planner (the waypoint expert's exact future traces) through the same
executor and closed loop as Meta-World's, with the env's own action space (``SimEnv.effector_action``: OSC deltas).

    MUJOCO_GL=egl python benchmarks/executor_robosuite.py --tasks Lift --robots Panda Sawyer --cameras frontview \
        agentview --seeds 5

Prints one line per episode and a success table (task x robot x camera); ``--set KEY=VALUE`` as in
``benchmarks/executor_ablation.py``. 160x120 renders (the 20x20 grid sees the arm from robosuite's cameras),
the task's horizon at 20 Hz, 40 replans.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from tracegen.act.planners import OraclePlanner
from tracegen.act.rollout import RolloutConfig, rollout
from tracegen.settings import apply_settings
from tracegen.sim.env import make_env
from tracegen.sim.instructions import instructions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["Lift"])
    ap.add_argument("--robots", nargs="+", default=["Panda"])
    ap.add_argument("--cameras", nargs="+", default=["frontview", "agentview"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--size", type=int, nargs=2, default=[120, 160], metavar=("H", "W"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    start, table = time.perf_counter(), defaultdict(lambda: [0, 0])
    for task in args.tasks:
        for robot in args.robots:
            env = make_env("robosuite", task, embodiment=robot, height=args.size[0], width=args.size[1])
            cfg = apply_settings(
                RolloutConfig(max_env_steps=env.max_steps, max_replans=40), args.set, example="executor.path_mode"
            )
            for camera in args.cameras:
                for seed in range(args.seeds):
                    r = rollout(env, OraclePlanner(), camera, seed, instructions("robosuite", task)[0], cfg)
                    table[task, robot, camera][0] += r.success
                    table[task, robot, camera][1] += 1
                    print(
                        f"{task}/{robot}/{camera}/{seed}: {'ok' if r.success else 'FAIL'} ({r.reason}, "
                        f"{r.steps} steps, {r.plans} plans)",
                        flush=True,
                    )
            env.close()
    print("| task | robot | camera | success |\n| --- | --- | --- | --- |")
    for (task, robot, camera), (ok, n) in table.items():
        print(f"| {task} | {robot} | {camera} | {ok}/{n} |")
    total = sum(ok for ok, _ in table.values()), sum(n for _, n in table.values())
    print(f"TOTAL {total[0]}/{total[1]} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
