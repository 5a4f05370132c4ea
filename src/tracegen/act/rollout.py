"""Closed loop: observe, plan a trace, turn it into an end-effector plan, follow it, replan — until success.

The controller is a saturated proportional law on the end-effector position, the natural one for Meta-World's
action space (end-effector delta xyz plus a gripper effort) and the gain its scripted experts use; retargeted steps are
re-timed by the controller itself: a waypoint is reached when the effector is within ``waypoint_tolerance_m``, and a
plan is abandoned (replanned) when the effector stalls or the plan is used up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from tracegen.act.executor import ExecutorConfig, Plan, plan_from_trace
from tracegen.act.planners import Planner
from tracegen.sim.env import SimEnv


@dataclass(frozen=True)
class RolloutConfig:
    max_env_steps: int = 500  # the protocol's budget
    max_replans: int = 40
    steps_per_plan: int = 16  # trace steps followed before replanning from a fresh observation (receding horizon)
    waypoint_tolerance_m: float = 0.015
    max_steps_per_waypoint: int = 15  # more means the effector is blocked: replan
    gain: float = 10.0  # action = gain * position error (m), clipped to [-1, 1] (the Meta-World experts' gain)
    close_effort: float = 0.8
    open_effort: float = -1.0
    min_plan_motion_m: float = 0.005  # a plan moving less than this counts as static
    max_static_plans: int = 3  # give up after this many static plans in a row
    grasp_wait_steps: int = 12  # env steps spent closing the gripper in place when a plan starts a grasp
    latch_gripper: bool = True  # once closed, the gripper stays closed (a coarse grid rarely shows a release)
    descent_window: int = 30  # env steps of history that tell the dip rule how far the effector just came down
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)


@dataclass
class RolloutResult:
    success: bool
    steps: int
    plans: int
    plan_ms: list[float]
    reason: str  # "success", "step budget", "replan budget", "static plans", or an error
    frames: list[np.ndarray] = field(default_factory=list)  # observations at each plan (if recorded)
    traces: list[np.ndarray] = field(default_factory=list)  # the planned traces (if recorded)


def action_towards(ee: np.ndarray, target: np.ndarray, closed: bool, cfg: RolloutConfig) -> np.ndarray:
    """Meta-World action ``(4,)``: clipped proportional step towards ``target`` and the gripper effort."""
    xyz = np.clip(cfg.gain * (target - ee), -1.0, 1.0)
    return np.append(xyz, cfg.close_effort if closed else cfg.open_effort).astype(np.float32)


def follow(
    env: SimEnv, plan: Plan, cfg: RolloutConfig, budget: int, history: list[np.ndarray]
) -> tuple[int, bool, bool]:
    """Follow ``plan`` for at most ``budget`` env steps (effector positions are appended to ``history``).

    Returns (steps used, success, whether a closed-gripper command was sent).
    """
    used, sent_closed = 0, False
    last = min(len(plan.positions), cfg.steps_per_plan + 1)
    for k in range(1, last):
        closed = bool(plan.gripper_closed[k])
        sent_closed |= closed
        waits = cfg.grasp_wait_steps if closed and not plan.gripper_closed[k - 1] else 0  # a grasp: close in place
        for i in range(waits + cfg.max_steps_per_waypoint):
            ee = history[-1]
            target = plan.positions[k - 1] if i < waits else plan.positions[k]
            if i >= waits and np.linalg.norm(target - ee) <= cfg.waypoint_tolerance_m:
                break
            env.step(action_towards(ee, target, closed, cfg))
            history.append(env.ee_pose()[:3, 3])
            used += 1
            if env.success or used >= budget:
                return used, env.success, sent_closed
        else:
            return used, False, sent_closed  # stalled on this waypoint: replan
    return used, False, sent_closed


def rollout(
    env: SimEnv,
    planner: Planner,
    camera: str,
    seed: int,
    instruction: str,
    cfg: RolloutConfig = RolloutConfig(),
    record: bool = False,
) -> RolloutResult:
    """One closed-loop episode from ``env.reset(seed)``."""
    env.reset(seed)
    steps, static, latched = 0, 0, False
    history = [env.ee_pose()[:3, 3]]
    result = RolloutResult(False, 0, 0, [], "step budget")

    def wait() -> None:  # one step in place, so that the world can change
        env.step(action_towards(history[-1], history[-1], latched, cfg))
        history.append(env.ee_pose()[:3, 3])

    while steps < cfg.max_env_steps:
        if result.plans >= cfg.max_replans:
            result.reason = "replan budget"
            break
        frame = env.render(camera, depth=True, seg=planner.name == "oracle")
        K, w2c = env.intrinsics(camera), env.extrinsics(camera)
        t0 = time.perf_counter()
        traj = planner.plan(env, frame, K, w2c, instruction)
        result.plan_ms.append(1000 * (time.perf_counter() - t0))
        result.plans += 1
        recent = np.array(history[-cfg.descent_window :])[:, 2]
        plan = plan_from_trace(traj, K, w2c, history[-1], cfg.executor, descended_before_m=recent.max() - recent[-1])
        if latched:
            plan.gripper_closed[:] = True
        if record:
            result.frames.append(frame.rgb)
            result.traces.append(traj)
        if plan.displacement < cfg.min_plan_motion_m and not plan.gripper_closed.any():
            static += 1
            if static >= cfg.max_static_plans:
                result.reason = "static plans"
                break
            wait()
            steps += 1
            continue
        static = 0
        used, success, sent_closed = follow(env, plan, cfg, cfg.max_env_steps - steps, history)
        latched |= cfg.latch_gripper and sent_closed
        if used == 0:  # already at the plan's first waypoints
            wait()
            used, success = 1, env.success
        steps += used
        if success:
            result.success, result.reason = True, "success"
            break
    result.steps = steps
    return result
