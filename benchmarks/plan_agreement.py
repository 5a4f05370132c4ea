"""How a learned planner's first plan compares with the oracle's, through the same executor, on the AVDC protocol.

    MUJOCO_GL=egl python benchmarks/plan_agreement.py --ckpt RUN [--seeds 5] [--cameras corner corner2 corner3] \
        [--guidance 1.0] [--restore-speed] [--json out.json]

At the start of every task x camera x seed (the benchmark's own initial states), the model's trace and the oracle's
(the scripted expert's exact future) are each turned into an end-effector plan by the executor, over the steps a
rollout follows before replanning (``RolloutConfig.steps_per_plan``). Printed per task and overall:

* ``moves``: how far each plan takes the effector (cm), model / oracle;
* ``ratio``: the median of model motion / oracle motion (1 = as far as the expert would go);
* ``end``: the median distance between the two plans' last positions (cm);
* ``cos``: the mean cosine between the two plans' displacements (1 = the same direction).

Closed-loop success depends on more than the first plan, but a planner whose first plans are short or wrong
cannot do well; this isolates the planner from the rollout's rules in seconds per episode.
"""

from __future__ import annotations

import argparse

import numpy as np

from tracegen.act.executor import plan_from_trace
from tracegen.act.planners import ModelPlanner, OraclePlanner
from tracegen.act.rollout import RolloutConfig
from tracegen.bench.metaworld import PROTOCOLS
from tracegen.io.files import save_json
from tracegen.model import TraceGen
from tracegen.sim.env import make_env
from tracegen.sim.instructions import instructions


def first_plans(env, planners: dict, camera: str, seed: int, instruction: str, steps: int) -> dict:
    """The executor's plan from each planner's trace at the episode's first observation: name -> (S, 3) metres."""
    env.reset(seed)
    frame = env.render(camera, depth=True, seg=True)
    K, w2c, ee = env.intrinsics(camera), env.extrinsics(camera), env.ee_pose()[:3, 3]
    out = {}
    for name, planner in planners.items():
        planner.begin_episode(seed)
        traj = planner.plan(env, frame, K, w2c, instruction)
        out[name] = plan_from_trace(traj, K, w2c, ee, num_steps=steps + 1).positions
    return out


def compare(model: np.ndarray, oracle: np.ndarray) -> dict:
    dm, do = model[-1] - model[0], oracle[-1] - oracle[0]
    nm, no = float(np.linalg.norm(dm)), float(np.linalg.norm(do))
    return {
        "model_cm": 100 * nm,
        "oracle_cm": 100 * no,
        "ratio": nm / no if no > 1e-3 else np.nan,
        "end_cm": 100 * float(np.linalg.norm(model[-1] - oracle[-1])),
        "cos": float(dm @ do / (nm * no)) if nm > 1e-4 and no > 1e-3 else np.nan,
    }


def summary(rows: list[dict]) -> dict:
    return {
        "episodes": len(rows),
        "model_cm": float(np.median([r["model_cm"] for r in rows])),
        "oracle_cm": float(np.median([r["oracle_cm"] for r in rows])),
        "ratio": float(np.nanmedian([r["ratio"] for r in rows])),
        "end_cm": float(np.median([r["end_cm"] for r in rows])),
        "cos": float(np.nanmean([r["cos"] for r in rows])),
    }


def line(name: str, s: dict) -> str:
    return (
        f"{name:22s} n={s['episodes']:3d}  moves {s['model_cm']:5.1f} / {s['oracle_cm']:5.1f} cm  "
        f"ratio {s['ratio']:.2f}  end {s['end_cm']:5.1f} cm  cos {s['cos']:+.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tasks", nargs="+", default=None)
    ap.add_argument("--cameras", nargs="+", default=None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--restore-speed", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    proto = PROTOCOLS["avdc"]
    planner = ModelPlanner(
        TraceGen.from_pretrained(args.ckpt), guidance=args.guidance, restore_speed=args.restore_speed
    )
    planners = {"model": planner, "oracle": OraclePlanner()}
    steps = RolloutConfig().steps_per_plan
    rows: dict[str, list[dict]] = {}
    for task in args.tasks or proto.tasks:
        env = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1])
        for camera in args.cameras or proto.cameras:
            for seed in proto.eval_seeds[: args.seeds]:
                plans = first_plans(env, planners, camera, seed, instructions(proto.suite, task)[0], steps)
                rows.setdefault(task, []).append(compare(plans["model"], plans["oracle"]) | {"camera": camera})
        env.close()
        print(line(task, summary(rows[task])), flush=True)
    overall = summary([r for task_rows in rows.values() for r in task_rows])
    print(line("overall", overall))
    if args.json:
        settings = {"ckpt": args.ckpt, "guidance": args.guidance, "restore_speed": args.restore_speed}
        save_json(args.json, {"settings": settings, "overall": overall, "per_task": rows})


if __name__ == "__main__":
    main()
