"""How long the executor takes to turn one trace into a plan, by the kinematic fit's iterations.

    MUJOCO_GL=egl OPENBLAS_NUM_THREADS=1 python benchmarks/executor_speed.py --ckpt runs/cl_kin/scratch \
        --iterations 8 64 [--seeds 2]        # without --ckpt: the oracle's exact traces

The first trace of each AVDC task x camera x seed (the model's with ``--ckpt``, else the oracle's, the protocol's
240x320 renders) goes through ``plan_from_trace`` with the rollout's own arm kinematics, once per iteration count
(``executor.kinematics.iterations``); printed: mean and median ms per plan, one process. One BLAS thread, as the
bench's workers run. To time another version of the fit, run this file from that checkout.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from tracegen.act.executor import ExecutorConfig, plan_from_trace
from tracegen.act.planners import ModelPlanner, OraclePlanner
from tracegen.act.rollout import arm_kinematics
from tracegen.bench.metaworld import PROTOCOLS
from tracegen.sim.env import make_env
from tracegen.sim.instructions import instructions


def first_traces(planner, seeds: int) -> list[tuple]:
    """``(env, frame, K, w2c, tcp, trace, qpos)`` of the first plan of every task x camera x seed."""
    protocol = PROTOCOLS["avdc"]
    cases = []
    height, width = protocol.render_hw
    for task in protocol.tasks:
        env = make_env("metaworld", task, height=height, width=width)  # kept open: the cases plan on it later
        for camera in protocol.cameras:
            for seed in range(seeds):
                env.reset(seed)
                planner.begin_episode(seed)
                frame = env.render(camera, depth=True, seg=True)
                K, w2c = env.intrinsics(camera), env.extrinsics(camera)
                trace = planner.plan(env, frame, K, w2c, instructions("metaworld", task)[0])
                cases.append((env, frame, K, w2c, env.ee_pose()[:3, 3], trace, env.data.qpos.copy()))
    return cases


def plan_ms(cases: list[tuple], iterations: int) -> np.ndarray:
    """``(len(cases),)`` ms of ``plan_from_trace`` (kinematics included) per case."""
    base = ExecutorConfig()
    cfg = dataclasses.replace(base, kinematics=dataclasses.replace(base.kinematics, iterations=iterations))
    times = []
    for env, frame, K, w2c, tcp, trace, qpos in cases:
        env.data.qpos[:] = qpos  # the arm as it was at that observation (one simulator serves a task's cases)
        start = time.perf_counter()
        plan_from_trace(trace, K, w2c, tcp, cfg, arm=arm_kinematics(env, frame, len(trace), tcp, cfg))
        times.append(time.perf_counter() - start)
    return 1000 * np.array(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ckpt", help="a TraceGen run (default: the oracle's exact traces)")
    p.add_argument("--iterations", type=int, nargs="+", default=[8, 64])
    p.add_argument("--seeds", type=int, default=2)
    a = p.parse_args()
    if a.ckpt:
        from tracegen.model import TraceGen

        planner = ModelPlanner(TraceGen.from_pretrained(a.ckpt), 1)
    else:
        planner = OraclePlanner()
    cases = first_traces(planner, a.seeds)
    plan_ms(cases[:3], a.iterations[0])  # compile the fit's kernels before timing
    for iterations in a.iterations:
        ms = plan_ms(cases, iterations)
        mean, median = ms.mean(), np.median(ms)
        print(f"iterations {iterations:4d}: {mean:7.1f} ms mean, {median:7.1f} ms median per plan ({len(ms)} plans)")


if __name__ == "__main__":
    main()
