"""Closed loop: observe, plan a trace, turn it into an end-effector plan, follow it, replan — until success.

The controller is a saturated proportional law on the end-effector position, the natural one for Meta-World's
action space (end-effector delta xyz plus a gripper effort) and the gain its scripted experts use; retargeted steps are
re-timed by the controller itself: a waypoint is reached when the effector is within ``waypoint_tolerance_m``, and a
plan is abandoned (replanned) when the effector stalls (``max_steps_per_waypoint`` steps on a waypoint, longer while it
still closes in on a far one) or the plan is used up.

Grasps (:class:`RolloutConfig`): before closing, the effector goes to the plan's contact point with the gripper open
(within ``grasp_tolerance_m``; from a pre-grasp pose ``approach_clearance_m`` above it, if set), presses on down by up
to ``grasp_press_m`` until blocked (the coarse trace cuts the bottom of a pick; blocked only once it is centred
over the contact point), then closes in place for
``grasp_wait_steps``. The gripper stays closed (``latch_gripper``) until ``release_static_plans`` static plans in a
row say the grasp failed (it then opens and the next plan starts over), or a plan grasps again later than its first
step (``regrasp``: the object is not in hand; the effector goes to it open and closes on it again). With
``close_free_motion`` a plan with no grasp in it is followed with the gripper closed: a narrower tool, as Meta-World's
experts press buttons and push doors (open fingers straddle a button's cap); with ``close_for_press_m`` (the default)
only the descent of a plan that ends pressing straight down is followed closed (:meth:`Plan.final_press_start`), and
only when it aims at something narrower than the open hand (``press_straddle_m``): the scene's height map
(:mod:`tracegen.act.height_map`), fused over the episode's observations less the robot's pixels, shows the surface
under the press's end standing above the one under some finger (a button's cap, not a lever under a finger). The
dip rule learns how far the effector just came down from its last uninterrupted descent (``descent_slack_m``) and
sees the scene in the observation's depth (``scene_stride``).

Static traces: a retargeted trace drops the last part of a motion that is shorter than one of its steps (and a
gripper with few grid points dilutes the fastest points' speed), so the end of a press can be invisible. After
``max_static_plans`` static plans in a row with no grasp held, the effector closes its gripper (a narrower tool;
``stuck_push_closed``) and pushes on along its last motion (over ``stuck_motion_steps`` env steps) by up to
``stuck_push_m`` until blocked, once (:func:`push_on`); static traces after that end the episode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from tracegen.act.executor import ExecutorConfig, Plan, plan_from_trace, recent_descent
from tracegen.act.height_map import HeightMap, straddled_protrusion
from tracegen.act.kinematics import ArmKinematics, arm_bodies, arm_joints, robot_bodies
from tracegen.act.planners import Planner
from tracegen.geometry import pixels_to_world
from tracegen.settings import ABOVE_ZERO, AT_LEAST_ONE, AT_LEAST_ZERO, out_of_range, rules
from tracegen.sim.env import SimEnv
from tracegen.sim.painting import PaintedView
from tracegen.sim.render import Frame
from tracegen.traces import grid_pixel_indices

# what RolloutConfig's numbers must be (anything else would fail every episode quietly)
_RANGES = rules(AT_LEAST_ONE, "max_env_steps", "max_replans", "steps_per_plan", "max_steps_per_waypoint")
_RANGES |= rules(AT_LEAST_ONE, "max_static_plans", "stuck_motion_steps")
_RANGES |= rules(ABOVE_ZERO, "gain", "waypoint_tolerance_m", "grasp_tolerance_m")
_RANGES |= rules(AT_LEAST_ZERO, "far_waypoint_factor", "grasp_wait_steps", "far_progress_m", "min_plan_motion_m")


@dataclass(frozen=True)
class RolloutConfig:
    max_env_steps: int = 500  # the protocol's budget
    max_replans: int = 40  # at most this many plans (predictions) per episode
    steps_per_plan: int = 16  # trace steps followed before replanning from a fresh observation (receding horizon)
    waypoint_tolerance_m: float = 0.015
    max_steps_per_waypoint: int = 15  # more means the effector is blocked: replan ...
    far_waypoint_factor: int = 3  # ... unless it still comes closer by far_progress_m per step (a far waypoint:
    far_progress_m: float = 0.001  # retargeted steps can be 10+ cm apart), for up to this many times longer
    gain: float = 10.0  # action = gain * position error (m), clipped to [-1, 1] (the Meta-World experts' gain)
    close_effort: float = 0.8
    open_effort: float = -1.0
    min_plan_motion_m: float = 0.005  # a plan whose every step stays this close to its start counts as static
    max_static_plans: int = 3  # give up after this many static plans in a row
    grasp_wait_steps: int = 12  # env steps spent closing the gripper in place when a plan starts a grasp
    grasp_from_start: bool = True  # a plan closed from its first step while nothing is held (the dip rule after a
    # descent, co-motion from the first step) starts its grasp now: contact approach, then closing in place
    approach_clearance_m: float = 0.0  # > 0: go to the contact point from above (this far over it, or the
    # current height if higher), then straight down: a pre-grasp pose
    grasp_tolerance_m: float = 0.006  # the effector goes this close to the plan's contact point before closing
    grasp_press_m: float = 0.06  # > 0: from the contact point, keep going down (world -z, at most this far) ...
    press_blocked_m: float = 0.001  # ... until two steps come down less than this (blocked by the object or table)
    scene_stride: int = 4  # > 0: the observation's depth, every this many pixels, is the dip rule's scene
    scene_without_robot: bool = False  # ... less the robot's own pixels (its rendered mask: links, hand, fingers)
    release_static_plans: int = 2  # > 0: a latched gripper opens (for grasp_wait_steps, in place) after this many
    # static plans in a row: a grasp after which the trace wants nothing moved has failed; the next plan starts over
    regrasp: bool = True  # a latched gripper opens when a plan grasps later than its first step: the trace says the
    # object is still to be picked up (a missed grasp), so the gripper goes to it open and closes there again
    stuck_push_m: float = 0.04  # > 0: when the traces stay static (max_static_plans) and no grasp is held, close the
    # gripper and go on along the last motion by up to this much until blocked (push_on), once, then plan again
    close_free_motion: bool = False  # a plan with no grasp in it is followed with the gripper closed (a narrower
    # tool for presses and pushes); a plan with a grasp is followed open until the grasp. Off: it costs the
    # learned planners more than it gives the oracle (BENCHMARKS, 2026-12-06 afternoon)
    close_for_press_m: float = 0.03  # > 0: a plan with no grasp whose motion ends going straight down by at least
    # this much (a press) closes the gripper from where that descent begins (Plan.final_press_start) ...
    press_straddle_m: float = 0.02  # ... > 0: only if it aims at something narrower than the open hand: in the
    # remembered height map (act.height_map; the robot's own pixels left out), the surface under the press's end
    # stands this much above the one under some finger (a button's cap; a lever under a finger: stay open)
    height_cell_m: float = 0.01  # the height map's cells ...
    height_stride: int = 2  # ... filled from the observation's depth every this many pixels
    stuck_push_closed: bool = True  # ... with the gripper closed first (a narrower tool), or as it is: open
    stuck_motion_steps: int = 30  # ... the last motion: the effector's net displacement over this many env steps
    latch_gripper: bool = True  # once closed, the gripper stays closed (a coarse grid rarely shows a release)
    descent_window: int = 200  # env steps of history that tell the dip rule how far the effector just came down
    descent_slack_m: float = 0.003  # >= 0: the dip rule measures the last uninterrupted descent in that window
    # (rises up to this are noise; executor.recent_descent); < 0: the window's highest point
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def __post_init__(self) -> None:
        bad = out_of_range(self, _RANGES)
        if bad:
            raise ValueError(f"rollout settings out of range: {', '.join(bad)}")
        if self.remembers_scene and (self.height_cell_m <= 0 or self.height_stride < 1):
            raise ValueError(
                f"the press's height map needs height_cell_m > 0 and height_stride >= 1 (got {self.height_cell_m}, "
                f"{self.height_stride}); to press without it, set press_straddle_m=0 (every press closed) or "
                "close_for_press_m=0 (every press open)"
            )

    @property
    def remembers_scene(self) -> bool:
        """Whether a press's tool is chosen from the remembered scene (:class:`PressMemory`)."""
        return self.close_for_press_m > 0 and self.press_straddle_m > 0


@dataclass
class RolloutResult:
    success: bool
    steps: int
    plans: int
    plan_ms: list[float]  # per plan: the planner's trace
    reason: str  # "success", "step budget", "replan budget", "static plans", or an error
    frames: list[np.ndarray] = field(default_factory=list)  # observations at each plan (if recorded)
    traces: list[np.ndarray] = field(default_factory=list)  # the planned traces (if recorded)
    executor_ms: list[float] = field(default_factory=list)  # per plan: the trace read into a path (the fit included)


class RolloutRecorder(Protocol):
    """Watches a rollout (e.g. to make a clip): told of every plan and after every env step of the executor."""

    def on_plan(self, frame: Frame, traj: np.ndarray) -> None:
        """A new plan: the observation it was made from and its trace ``(N, S, 3)`` (u, v px; z m)."""

    def on_step(self, env: SimEnv) -> None:
        """The executor just stepped ``env`` (not called for the oracle's look-ahead in its simulator copy)."""


class _RecordedEnv:
    """``env`` whose every ``step`` is followed by ``recorder.on_step(env)``; everything else is ``env``'s."""

    def __init__(self, env: SimEnv, recorder: RolloutRecorder):
        self._env, self._recorder = env, recorder

    def step(self, action: np.ndarray) -> None:
        self._env.step(action)
        self._recorder.on_step(self._env)

    def __getattr__(self, name: str):
        return getattr(self._env, name)


def action_towards(ee: np.ndarray, target: np.ndarray, closed: bool, cfg: RolloutConfig) -> np.ndarray:
    """Effector command ``(4,)`` in Meta-World's convention: clipped proportional step towards ``target`` and the
    gripper effort."""
    xyz = np.clip(cfg.gain * (target - ee), -1.0, 1.0)
    return np.append(xyz, cfg.close_effort if closed else cfg.open_effort).astype(np.float32)


def step_towards(env: SimEnv, ee: np.ndarray, target: np.ndarray, closed: bool, cfg: RolloutConfig) -> None:
    """One env step of the proportional law, in the env's own action space (:meth:`SimEnv.effector_action`)."""
    env.step(env.effector_action(action_towards(ee, target, closed, cfg)))


def drive(
    env: SimEnv,
    target: np.ndarray,
    cfg: RolloutConfig,
    budget: int,
    history: list[np.ndarray],
    tolerance: float,
    stop_when_blocked: bool = False,
    closed: bool = False,
    blocked_xy_m: float = np.inf,
) -> int:
    """Steps towards ``target`` (gripper open unless ``closed``) until within ``tolerance``,
    ``max_steps_per_waypoint`` steps, success, ``budget`` steps or (``stop_when_blocked``) two steps that advance
    less than ``press_blocked_m`` towards it while the effector is within ``blocked_xy_m`` of it horizontally (a
    press blocked by the floor goes on centring over its target).

    Returns the steps used."""
    used = 0
    heading = (target - history[-1]) / max(float(np.linalg.norm(target - history[-1])), 1e-9)
    while used < min(budget, cfg.max_steps_per_waypoint) and not env.success:
        before = history[-1]
        if np.linalg.norm(target - before) <= tolerance:
            break
        step_towards(env, before, target, closed, cfg)
        history.append(env.ee_pose()[:3, 3])
        used += 1
        slowed = stop_when_blocked and used >= 2 and (history[-1] - history[-3]) @ heading < cfg.press_blocked_m
        if slowed and np.linalg.norm(target[:2] - history[-1][:2]) <= blocked_xy_m:
            break  # two steps that advanced less than press_blocked_m, centred over the target: blocked
    return used


def hold(env: SimEnv, cfg: RolloutConfig, steps: int, closed: bool, history: list[np.ndarray]) -> int:
    """``steps`` env steps in place (so that the world, or the gripper, can change); returns them."""
    for _ in range(steps):
        step_towards(env, history[-1], history[-1], closed, cfg)
        history.append(env.ee_pose()[:3, 3])
    return max(0, steps)


def push_on(env: SimEnv, cfg: RolloutConfig, budget: int, history: list[np.ndarray]) -> int:
    """Stuck (the traces stay static): close the gripper in place (a narrower tool; unless ``stuck_push_closed``
    is off: then the gripper stays open), then go on by up to
    ``stuck_push_m`` along the effector's last motion (over ``stuck_motion_steps`` steps) until blocked: the
    retargeted trace drops the last part of a motion that is shorter than one of its steps. Returns steps used."""
    closed = cfg.stuck_push_closed
    motion = history[-1] - history[-1 - min(len(history) - 1, cfg.stuck_motion_steps)]  # before closing in place
    if np.linalg.norm(motion) < cfg.min_plan_motion_m:
        return 0
    used = hold(env, cfg, min(cfg.grasp_wait_steps, budget), True, history) if closed else 0
    target = history[-1] + cfg.stuck_push_m * motion / np.linalg.norm(motion)
    return used + drive(env, target, cfg, budget - used, history, cfg.grasp_tolerance_m, True, closed=closed)


def approach_contact(
    env: SimEnv, plan: Plan, cfg: RolloutConfig, budget: int, history: list[np.ndarray]
) -> tuple[int, bool]:
    """Before a grasp: go to the plan's contact point with the gripper open (through a pre-grasp pose
    ``approach_clearance_m`` above it, if set), then press on down by up to
    ``grasp_press_m`` until blocked; the gripper then closes where the effector is (``plan.grasp_position`` is
    updated). Returns (steps used, whether the budget allows more)."""
    g = plan.grasp_position
    used = 0
    if cfg.approach_clearance_m > 0:  # a pre-grasp pose above the contact point, then straight down
        hover = np.append(g[:2], max(history[-1][2], g[2] + cfg.approach_clearance_m))
        for _ in range(4):  # drive() stops after max_steps_per_waypoint: give the hover a few of those
            used += drive(env, hover, cfg, budget - used, history, cfg.waypoint_tolerance_m)
            if np.linalg.norm(hover - history[-1]) <= cfg.waypoint_tolerance_m or used >= budget or env.success:
                break
    used += drive(env, g, cfg, budget - used, history, cfg.grasp_tolerance_m)
    if cfg.grasp_press_m > 0:  # the retargeted steps cut the bottom of a pick: press on until something stops us
        floor = np.append(g[:2], g[2] - cfg.grasp_press_m)
        tol = cfg.grasp_tolerance_m
        used += drive(env, floor, cfg, budget - used, history, tol, stop_when_blocked=True, blocked_xy_m=tol)
        plan.grasp_position = history[-1].copy()
    return used, used < budget


def follow(
    env: SimEnv,
    plan: Plan,
    cfg: RolloutConfig,
    budget: int,
    history: list[np.ndarray],
    closed_press: int | None = None,
    holding: bool = False,
) -> tuple[int, bool, bool]:
    """Follow ``plan`` for at most ``budget`` env steps (effector positions are appended to ``history``); from step
    ``closed_press`` on (:func:`closed_press_start`), with the gripper closed. ``holding``: the gripper already
    holds something (latched); otherwise a plan closed from its first step grasps now (``grasp_from_start``).

    Returns (steps used, success, whether the plan's own closed steps were followed: a grasp or a latched gripper;
    a press's closed steps and a closed free motion do not latch it).
    """
    used, sent_closed = 0, False
    last = min(len(plan.positions), cfg.steps_per_plan + 1)
    tool = cfg.close_free_motion and not plan.gripper_closed.any()  # no grasp: move as a closed, narrower tool
    press_from = last if closed_press is None else closed_press + 1  # the press's steps: a narrower tool
    for k in range(1, last):
        closed = bool(plan.gripper_closed[k])
        sent_closed |= closed
        before = plan.gripper_closed[k - 1] if k > 1 or not cfg.grasp_from_start else holding
        grasping = closed and not before
        waits = cfg.grasp_wait_steps if grasping else 0  # a grasp: close in place
        if grasping and plan.grasp_position is not None:
            done, ok = approach_contact(env, plan, cfg, budget - used, history)
            used += done
            if env.success or used >= budget or not ok:
                return used, env.success, sent_closed
        hold = plan.grasp_position if grasping and plan.grasp_position is not None else plan.positions[k - 1]
        for i in range(waits + cfg.max_steps_per_waypoint * (1 + cfg.far_waypoint_factor)):
            ee = history[-1]
            target = hold if i < waits else plan.positions[k]
            if i >= waits and np.linalg.norm(target - ee) <= cfg.waypoint_tolerance_m:
                break
            if i >= waits + cfg.max_steps_per_waypoint and not closing_in(history, target, cfg):
                return used, False, sent_closed  # stalled on this waypoint: replan
            step_towards(env, ee, target, closed or tool or k >= press_from, cfg)
            history.append(env.ee_pose()[:3, 3])
            used += 1
            if env.success or used >= budget:
                return used, env.success, sent_closed
        else:
            return used, False, sent_closed  # stalled on this waypoint: replan
    return used, False, sent_closed


def closed_press_start(
    plan: Plan, cfg: RolloutConfig, heights: HeightMap | None = None, finger_offsets: np.ndarray | None = None
) -> int | None:
    """The step from which ``plan`` is followed with the gripper closed: where its final press begins
    (``close_for_press_m``; :meth:`Plan.final_press_start`), when the open fingers, at ``finger_offsets (F, 2)``
    (m) from the tool centre, would straddle what ``heights`` shows under the press's end (``press_straddle_m``;
    with no height map or fingers, never). ``None``: the plan is followed as it is."""
    if cfg.close_for_press_m <= 0:
        return None
    start = plan.final_press_start(cfg.close_for_press_m)
    if start is None or cfg.press_straddle_m <= 0:
        return start
    if heights is None or finger_offsets is None:
        return None
    straddles = straddled_protrusion(heights, plan.positions[-1, :2], finger_offsets, cfg.press_straddle_m)
    return start if straddles else None


def finger_offsets(env: SimEnv, ee_position: np.ndarray) -> np.ndarray:
    """``(F, 2)`` horizontal offsets (world, m) from the tool centre ``ee_position (3,)`` of the robot's finger
    bodies (moved by the arm's joints and their own: their origins), as the robot stands now."""
    joints = arm_joints(env.model, env.effector_body)
    fingers = robot_bodies(env.model, joints) & ~arm_bodies(env.model, joints)  # (nbody,)
    return env.data.xpos[fingers, :2] - np.asarray(ee_position)[:2]


class PressMemory:
    """What a press's tool choice remembers over one episode: the scene's :class:`HeightMap`, from every
    observation's depth less the pixels that show no scene surface (the robot's own, by its rendered mask, and those
    with no geom: a painted view's filled-in hole); and the fingers as the open hand holds them (the widest they
    stood at any observation: the gripper may be closed now)."""

    def __init__(self, cfg: RolloutConfig):
        self.cfg, self.heights, self.fingers = cfg, HeightMap(cfg.height_cell_m), None

    def observe(self, env: SimEnv, frame: Frame, K: np.ndarray, w2c: np.ndarray) -> None:
        robot = robot_pixels(env, frame)
        if robot is None:  # no segmentation: nothing tells the scene from the robot
            return
        hidden = robot | (frame.geom_ids() < 0)
        points = scene_points(frame, K, w2c, self.cfg, hidden=hidden, stride=self.cfg.height_stride)
        if points is not None:
            self.heights.update(points)
        offsets = finger_offsets(env, env.ee_pose()[:3, 3])  # (F, 2)
        if len(offsets) and (self.fingers is None or _reach(offsets) > _reach(self.fingers)):
            self.fingers = offsets


def _reach(offsets: np.ndarray) -> float:
    """How far the farthest finger of ``offsets (F, 2)`` stands from the tool centre (m)."""
    return float(np.linalg.norm(offsets, axis=1).max())


def closing_in(history: list[np.ndarray], target: np.ndarray, cfg: RolloutConfig, window: int = 3) -> bool:
    """Whether the effector came at least ``far_progress_m`` per step closer to ``target`` over its last ``window``
    steps (a far waypoint still being reached, not a blocked one)."""
    if len(history) <= window:
        return False
    gain = np.linalg.norm(target - history[-1 - window]) - np.linalg.norm(target - history[-1])
    return bool(gain >= window * cfg.far_progress_m)


def scene_points(
    frame: Frame,
    K: np.ndarray,
    w2c: np.ndarray,
    cfg: RolloutConfig,
    hidden: np.ndarray | None = None,
    stride: int | None = None,
) -> np.ndarray | None:
    """``(P, 3)`` the observation's depth, every ``stride`` (default ``scene_stride``) pixels, in world coordinates
    (m): the dip rule's scene (less the pixels of ``hidden (H, W)`` bool, if given). ``None`` without depth or with
    a stride of 0."""
    stride = cfg.scene_stride if stride is None else stride
    if stride <= 0 or frame.depth is None:
        return None
    d = frame.depth[::stride, ::stride]
    vv, uu = np.mgrid[: frame.depth.shape[0] : stride, : frame.depth.shape[1] : stride]
    ok = (d > 0) & (d < cfg.executor.max_depth_m)
    if hidden is not None:
        ok &= ~hidden[::stride, ::stride]
    return pixels_to_world(np.stack([uu[ok], vv[ok], d[ok]], -1).astype(np.float64), K, w2c)


def arm_kinematics(
    env: SimEnv, frame: Frame, num_points: int, ee_position: np.ndarray, cfg: ExecutorConfig
) -> ArmKinematics | None:
    """The robot's kinematics at the observation, with the body each of the ``num_points`` grid points starts on:
    the robot's own rendered mask (on a real robot: its model rendered from the calibrated camera); ``None``
    without a mask."""
    if frame.seg is None:
        return None
    grid = int(round(np.sqrt(num_points)))
    rows, cols = grid_pixel_indices(*frame.depth.shape, grid)
    geom = frame.geom_ids()[rows, cols]
    point_body = np.where(geom >= 0, env.model.geom_bodyid[np.maximum(geom, 0)], -1)
    return ArmKinematics(env.model, env.data.qpos, env.effector_body, ee_position, point_body, cfg.kinematics)


def robot_pixels(env: SimEnv, frame: Frame) -> np.ndarray | None:
    """``(H, W)`` bool: the pixels of ``frame`` on the robot (the bodies its arm's joints move: links, hand and
    fingers); ``None`` without a segmentation."""
    if frame.seg is None:
        return None
    robot = robot_bodies(env.model, arm_joints(env.model, env.effector_body))  # (nbody,)
    geom = frame.geom_ids()
    return (geom >= 0) & robot[env.model.geom_bodyid[np.maximum(geom, 0)]]


def rollout(
    env: SimEnv,
    planner: Planner,
    camera: str,
    seed: int,
    instruction: str,
    cfg: RolloutConfig = RolloutConfig(),
    record: bool = False,
    recorder: RolloutRecorder | None = None,
    view: PaintedView | None = None,
) -> RolloutResult:
    """One closed-loop episode from ``env.reset(seed)`` (then ``planner.begin_episode(seed)``); a ``recorder`` sees
    every plan and executor step. ``view``: the planner observes ``env`` through it, the robot drawn as another
    embodiment (:mod:`tracegen.sim.painting`; the arm's mask is then the drawn effector's; not for the oracle, whose
    exact tracks follow the robot's own geoms)."""
    if view is not None and planner.name == "oracle":
        raise ValueError("the oracle tracks the simulator's own geoms: it cannot plan on a painted view")
    env.reset(seed)
    planner.begin_episode(seed)
    actor = env if recorder is None else _RecordedEnv(env, recorder)  # planners always get the bare env
    observer = env if view is None else view  # what the planner sees
    steps, static, latched, static_closed, pushed = 0, 0, False, 0, False
    last_closed = False  # the last plan followed closed steps: what holds an object when the gripper does not latch
    memory = PressMemory(cfg) if cfg.remembers_scene else None  # the scene as last seen, for a press's tool
    history = [env.ee_pose()[:3, 3]]
    result = RolloutResult(False, 0, 0, [], "step budget")

    def wait() -> None:  # one step in place, so that the world can change; the gripper as between plans
        hold(actor, cfg, 1, latched or cfg.close_free_motion, history)

    while steps < cfg.max_env_steps:
        if steps and env.success:  # reached while waiting or holding in place
            result.success, result.reason = True, "success"
            break
        if result.plans >= cfg.max_replans:
            result.reason = "replan budget"
            break
        kinematic = cfg.executor.kinematic_path != "off"
        masked = planner.name == "oracle" or kinematic or cfg.scene_without_robot or memory is not None
        frame = observer.render(camera, depth=True, seg=masked)
        K, w2c = env.intrinsics(camera), env.extrinsics(camera)
        t0 = time.perf_counter()
        traj = planner.plan(env, frame, K, w2c, instruction)
        result.plan_ms.append(1000 * (time.perf_counter() - t0))
        result.plans += 1
        recent = np.array(history[-cfg.descent_window :])[:, 2]
        descended = (
            recent.max() - recent[-1] if cfg.descent_slack_m < 0 else recent_descent(recent, cfg.descent_slack_m)
        )
        t0 = time.perf_counter()
        arm = arm_kinematics(env, frame, len(traj), history[-1], cfg.executor) if kinematic else None
        robot = robot_pixels(env, frame) if cfg.scene_without_robot else None
        scene = scene_points(frame, K, w2c, cfg, hidden=robot)
        if memory is not None:
            memory.observe(env, frame, K, w2c)
        plan = plan_from_trace(
            traj, K, w2c, history[-1], cfg.executor, descended_before_m=descended, scene_points=scene, arm=arm
        )
        result.executor_ms.append(1000 * (time.perf_counter() - t0))
        if record:
            result.frames.append(frame.rgb)
            result.traces.append(traj)
        if recorder is not None:
            recorder.on_plan(frame, traj)
        if latched and cfg.release_static_plans and plan.excursion < cfg.min_plan_motion_m:
            static_closed += 1
            if static_closed >= cfg.release_static_plans:  # the grasp failed: open and let the plan start over
                latched, static_closed = False, 0
                steps += hold(actor, cfg, min(cfg.grasp_wait_steps, cfg.max_env_steps - steps), False, history)
                continue  # the gripper opened in place
        else:
            static_closed = 0
        if latched and cfg.regrasp and plan.grasps_later:
            latched = False  # the grasp missed: the plan goes to the object open and closes on it again
        if latched:
            plan.gripper_closed[:] = True
        if plan.excursion < cfg.min_plan_motion_m and not plan.gripper_closed.any():
            static += 1
            if static >= cfg.max_static_plans and cfg.stuck_push_m > 0 and not (latched or pushed):
                steps += push_on(actor, cfg, cfg.max_env_steps - steps, history)
                static, pushed = 0, True
                if env.success:
                    result.success, result.reason = True, "success"
                    break
                continue
            if static >= cfg.max_static_plans:
                result.reason = "static plans"
                break
            wait()
            steps += 1
            continue
        static = 0
        remembered = (None, None) if memory is None else (memory.heights, memory.fingers)
        press = closed_press_start(plan, cfg, *remembered)  # every press closed needs no memory
        holding = latched if cfg.latch_gripper else last_closed
        used, success, sent_closed = follow(actor, plan, cfg, cfg.max_env_steps - steps, history, press, holding)
        latched |= cfg.latch_gripper and sent_closed
        last_closed = sent_closed
        if used == 0:  # already at the plan's first waypoints
            wait()
            used, success = 1, env.success
        steps += used
        if success:
            result.success, result.reason = True, "success"
            break
    if not result.success and steps and env.success:  # reached on the budget's last step, waiting in place
        result.success, result.reason = True, "success"
    result.steps = steps
    return result
