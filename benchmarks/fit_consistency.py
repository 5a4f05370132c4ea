"""How well the arm's kinematics explain a trace: the oracle's exact one against a model's prediction.

    MUJOCO_GL=egl python benchmarks/fit_consistency.py --ckpt runs/cl_kin/scratch --seeds 2 \
        --tasks door-open button-press assembly faucet-close

For the first plan of each episode (task x camera x seed, the AVDC protocol's 240x320 renders): the arm's tracks are
fitted with every track alike (``KinematicFitConfig(near_effector_m=0)``) and the attached points' RMS distance to
their tracks at the last step is printed, with the tracks' median motion. The executor refits a trace whose RMS
exceeds ``KinematicFitConfig.consistent_rms_m`` (1 cm) towards the tool.
"""

from __future__ import annotations

import argparse

import numpy as np

from tracegen.act.executor import ExecutorConfig, lift_trace
from tracegen.act.kinematics import KinematicFitConfig
from tracegen.act.planners import ModelPlanner, OraclePlanner
from tracegen.act.rollout import arm_kinematics
from tracegen.bench.metaworld import PROTOCOLS
from tracegen.model import TraceGen
from tracegen.sim.env import make_env
from tracegen.sim.instructions import instructions


def first_plan_rms(env, planner, camera: str, seed: int, text: str, cfg: ExecutorConfig) -> tuple[float, float] | None:
    """(RMS residual, median track motion) in metres of the plain fit of ``planner``'s first trace; None: no fit."""
    env.reset(seed)
    planner.begin_episode(seed)
    frame = env.render(camera, depth=True, seg=True)
    K, w2c = env.intrinsics(camera), env.extrinsics(camera)
    traj = planner.plan(env, frame, K, w2c, text)
    world = lift_trace(traj, K, w2c)
    arm = arm_kinematics(env, frame, len(traj), env.ee_pose()[:3, 3], cfg)
    found = arm.attached_tracks(world, cfg.min_track_motion_m)
    if found is None:
        return None
    idx, tracks, bodies, local = found
    _, q_last = arm.effector_path(tracks, bodies, local, np.ones(len(idx)))  # the plain fit: every track alike
    rms = arm.residual_rms(q_last, tracks[:, -1], bodies, local)
    return rms, float(np.median(np.linalg.norm(tracks[:, -1] - tracks[:, 0], axis=1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tasks", nargs="+", default=["door-open", "button-press", "assembly", "faucet-close"])
    ap.add_argument("--cameras", nargs="+", default=["corner", "corner2", "corner3"])
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    proto = PROTOCOLS["avdc"]
    cfg = ExecutorConfig(kinematics=KinematicFitConfig(near_effector_m=0))
    planners = {"oracle": OraclePlanner(), "model": ModelPlanner(TraceGen.from_pretrained(args.ckpt), 1)}
    found: dict[str, list[float]] = {name: [] for name in planners}
    for task in args.tasks:
        env = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1])
        text = instructions(proto.suite, task)[0]
        for camera in args.cameras:
            for seed in proto.eval_seeds[: args.seeds]:
                cells = []
                for name, planner in planners.items():
                    out = first_plan_rms(env, planner, camera, seed, text, cfg)
                    if out is not None:
                        found[name].append(out[0])
                    cells.append(
                        f"{name} "
                        + ("no fit" if out is None else f"{100 * out[0]:.1f} cm RMS (motion {100 * out[1]:.1f} cm)")
                    )
                print(f"{task:14s} {camera:8s} seed {seed}: " + " | ".join(cells), flush=True)
        env.close()
    for name, values in found.items():
        if values:
            print(f"{name}: RMS {100 * min(values):.1f}-{100 * max(values):.1f} cm over {len(values)} first plans")


if __name__ == "__main__":
    main()
