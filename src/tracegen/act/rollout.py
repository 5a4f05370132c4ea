"""Closed loop: observe, plan a trace, turn it into an end-effector plan, follow it, replan — until success.

The controller is a saturated proportional law on the end-effector position, the natural one for Meta-World's
action space (end-effector delta xyz in units of ``action_scale_m`` plus a gripper effort); retargeted steps are
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
    max_replans: int = 25
    steps_per_plan: int = 16  # trace steps followed before replanning from a fresh observation (receding horizon)
    waypoint_tolerance_m: float = 0.012
    max_steps_per_waypoint: int = 10  # more means the effector is blocked: replan
    gain: float = 1.0  # action = gain * error / action_scale_m, clipped to [-1, 1]
    action_scale_m: float = 0.01  # Meta-World moves the hand by at most 1 cm per unit of action
    close_effort: float = 0.8
    open_effort: float = -1.0
    min_plan_motion_m: float = 0.005  # a plan moving less than this counts as static
    max_static_plans: int = 3  # give up after this many static plans in a row
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
    xyz = np.clip(cfg.gain * (target - ee) / cfg.action_scale_m, -1.0, 1.0)
    return np.append(xyz, cfg.close_effort if closed else cfg.open_effort).astype(np.float32)


def follow(env: SimEnv, plan: Plan, cfg: RolloutConfig, budget: int) -> tuple[int, bool]:
    """Follow ``plan`` for at most ``budget`` env steps; returns (steps used, success)."""
    used = 0
    last = min(len(plan.positions), cfg.steps_per_plan + 1)
    for k in range(1, last):
        for _ in range(cfg.max_steps_per_waypoint):
            ee = env.ee_pose()[:3, 3]
            if np.linalg.norm(plan.positions[k] - ee) <= cfg.waypoint_tolerance_m:
                break
            env.step(action_towards(ee, plan.positions[k], bool(plan.gripper_closed[k]), cfg))
            used += 1
            if env.success:
                return used, True
            if used >= budget:
                return used, False
        else:
            return used, False  # stalled on this waypoint: replan
    return used, False


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
    steps, plans, static, plan_ms = 0, 0, 0, []
    result = RolloutResult(False, 0, 0, plan_ms, "step budget")
    while steps < cfg.max_env_steps:
        if plans >= cfg.max_replans:
            result.reason = "replan budget"
            break
        frame = env.render(camera, depth=True, seg=planner.name == "oracle")
        K, w2c = env.intrinsics(camera), env.extrinsics(camera)
        t0 = time.perf_counter()
        traj = planner.plan(env, frame, K, w2c, instruction)
        plan_ms.append(1000 * (time.perf_counter() - t0))
        plans += 1
        plan = plan_from_trace(traj, K, w2c, env.ee_pose()[:3, 3], cfg.executor)
        if record:
            result.frames.append(frame.rgb)
            result.traces.append(traj)
        if plan.displacement < cfg.min_plan_motion_m and not plan.gripper_closed.any():
            static += 1
            if static >= cfg.max_static_plans:
                result.reason = "static plans"
                break
            env.step(action_towards(env.ee_pose()[:3, 3], env.ee_pose()[:3, 3], False, cfg))  # let time pass
            steps += 1
            continue
        static = 0
        used, success = follow(env, plan, cfg, cfg.max_env_steps - steps)
        steps += max(used, 1)
        if used == 0:  # already at the first waypoints: take one step so the world can change
            env.step(action_towards(env.ee_pose()[:3, 3], plan.positions[-1], bool(plan.gripper_closed[-1]), cfg))
            success = env.success
        if success:
            result.success, result.reason = True, "success"
            break
    result.steps, result.plans = steps, plans
    return result
