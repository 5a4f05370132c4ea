"""The closed loop's grasp and recovery rules on a point-mass robot above a floor (no simulator)."""

import numpy as np
import pytest

from synthetic import floor_with
from tracegen.act.executor import Plan
from tracegen.act.height_map import HeightMap
from tracegen.act.rollout import RolloutConfig, approach_contact, closed_press_start, drive, follow, rollout
from tracegen.geometry import intrinsics, look_at, world_to_pixels
from tracegen.sim.render import Frame

K = intrinsics(100.0, 100.0, 63.5, 47.5)
W2C = look_at([0.0, -1.0, 0.8], [0.0, 0.0, 0.1], up=[0, 0, 1])


class PointRobot:
    """An effector that moves 1 cm per unit of action (as Meta-World's mocap does), stopped by a floor; it records
    the gripper efforts it is sent."""

    def __init__(self, start, floor=0.0):
        self.start, self.floor = np.asarray(start, float), floor
        self.reset(0)

    def reset(self, seed):
        self.ee, self.efforts, self.success = self.start.copy(), [], False

    def effector_action(self, command):
        return command  # Meta-World's convention

    def step(self, action):
        self.ee = self.ee + 0.01 * np.asarray(action[:3], float)
        self.ee[2] = max(self.ee[2], self.floor)
        self.efforts.append(float(action[3]))

    def ee_pose(self):
        T = np.eye(4)
        T[:3, 3] = self.ee
        return T

    def render(self, camera, depth=True, seg=False):
        return Frame(rgb=np.zeros((96, 128, 3), np.uint8), depth=np.ones((96, 128), np.float32))

    def intrinsics(self, camera):
        return K

    def extrinsics(self, camera):
        return W2C


def test_a_grasp_presses_on_below_the_contact_point_until_blocked():
    robot = PointRobot([0.0, 0.0, 0.1], floor=0.03)  # the true bottom: 1 cm below the coarse contact point
    plan = Plan(np.zeros((2, 3)), np.array([False, True]), np.arange(1), np.zeros((1, 2, 3)), np.array([0, 0, 0.04]))
    history = [robot.ee.copy()]
    used, ok = approach_contact(robot, plan, RolloutConfig(), 200, history)
    assert ok and robot.ee[2] == 0.03  # pressed on until the floor stopped it
    np.testing.assert_allclose(plan.grasp_position, robot.ee)
    robot.reset(0)
    plan.grasp_position = np.array([0, 0, 0.04])
    approach_contact(robot, plan, RolloutConfig(grasp_press_m=0.0), 200, [robot.ee.copy()])
    assert robot.ee[2] >= 0.034  # without the rule: closes where the coarse trace said, too high


def test_a_press_blocked_by_the_floor_goes_on_centring_when_asked():
    cfg = RolloutConfig()
    target = np.array([0.0, 0.0, -0.03])  # below the floor, 2 cm across from where the press starts
    for blocked_xy_m, stops_within in ((np.inf, None), (cfg.grasp_tolerance_m, cfg.grasp_tolerance_m)):
        robot = PointRobot([0.02, 0.0, 0.031], floor=0.03)
        history = [robot.ee.copy()]
        used = drive(robot, target, cfg, 100, history, 0.001, stop_when_blocked=True, blocked_xy_m=blocked_xy_m)
        across = np.linalg.norm(robot.ee[:2])
        if stops_within is None:  # blocked within a few steps, still off to the side
            assert used <= 5 and across > 0.012
        else:  # it goes on sliding over the floor until it is above the target
            assert used > 2 and across <= stops_within


def test_a_far_waypoint_is_reached_while_the_effector_closes_in_and_abandoned_when_blocked():
    start = np.array([0.0, 0.0, 0.1])
    plan = Plan(np.stack([start, start + [0.3, 0, 0]]), np.zeros(2, bool), np.arange(1), np.zeros((1, 2, 3)))
    for factor, reached in ((3, True), (0, False)):  # 30 cm at <= 1 cm per step: more than 15 steps
        robot = PointRobot(start)
        history = [robot.ee.copy()]
        follow(robot, plan, RolloutConfig(far_waypoint_factor=factor), 500, history)
        assert (np.linalg.norm(robot.ee - plan.positions[1]) <= RolloutConfig().waypoint_tolerance_m) == reached
    robot = PointRobot(start, floor=0.05)  # blocked: the floor stops it 5 cm short of a waypoint below it
    down = Plan(np.stack([start, [0, 0, 0.0]]), np.zeros(2, bool), np.arange(1), np.zeros((1, 2, 3)))
    used, _, _ = follow(robot, down, RolloutConfig(), 500, [robot.ee.copy()])
    assert used <= RolloutConfig().max_steps_per_waypoint  # no progress: replanned as before


class ScriptedPlanner:
    """Counts the plans of the episode that :func:`rollout` announced (``begin_episode``) and remembers its seeds."""

    def __init__(self, seed=0):
        self.calls, self.seeds = 0, []
        rng = np.random.default_rng(seed)
        self.eff = rng.uniform(-0.01, 0.01, (6, 3))  # (6, 3) m: the effector's tracks around its centre
        self.floor = np.stack([rng.uniform(-0.3, 0.3, 40), rng.uniform(-0.3, 0.3, 40), np.zeros(40)], 1)  # (40, 3)

    def begin_episode(self, seed):
        self.calls = 0
        self.seeds.append(seed)

    def trace(self, eff, motion, K, w2c):
        """Pixels ``(46, 5, 3)``: the effector's tracks ``eff (6, 3)`` moved by ``motion (5, 3)`` m, the floor still."""
        world = np.concatenate([eff[:, None] + motion[None], np.repeat(self.floor[:, None], 5, 1)])
        return world_to_pixels(world.swapaxes(0, 1), K, w2c).swapaxes(0, 1)


class PickThenStuckPlanner(ScriptedPlanner):
    """First ``picks`` picks (the effector's tracks dip 8 cm to the floor and rise; one plan each), then traces in
    which nothing moves."""

    name = "stuck"

    def __init__(self, start, picks=1):
        super().__init__(seed=0)
        self.picks = picks
        self.eff = start + self.eff
        self.floor[0] = [start[0], start[1], 0.0]  # something to pick, under the effector

    def plan(self, env, frame, K, w2c, instruction):
        self.calls += 1
        dz = np.array([0.0, -0.04, -0.08, -0.04, 0.0]) if self.calls <= self.picks else np.zeros(5)
        return self.trace(env.ee + (self.eff - self.eff.mean(0)), dz[:, None] * [0, 0, 1], K, w2c)


def test_a_latched_gripper_opens_after_static_plans():
    start = np.array([0.0, 0.0, 0.1])
    for release, opens in ((2, True), (0, False)):
        robot = PointRobot(start)
        cfg = RolloutConfig(max_env_steps=150, max_replans=8, release_static_plans=release)
        rollout(robot, PickThenStuckPlanner(start), "cam", 0, "", cfg)
        closing = np.isclose(robot.efforts, cfg.close_effort)
        assert closing.any()  # the pick closed the gripper ...
        reopened = np.isclose(robot.efforts, cfg.open_effort)[int(np.argmax(closing)) :].any()
        assert reopened == opens  # ... and only the rule opens it again


def test_a_latched_gripper_opens_when_a_plan_grasps_again():
    start = np.array([0.0, 0.0, 0.1])
    for regrasp in (True, False):
        robot = PointRobot(start)
        cfg = RolloutConfig(max_env_steps=300, max_replans=6, release_static_plans=0, regrasp=regrasp)
        rollout(robot, PickThenStuckPlanner(start, picks=2), "cam", 0, "", cfg)
        efforts = np.array(robot.efforts)
        first_close = int(np.argmax(np.isclose(efforts, cfg.close_effort)))
        reopened = np.flatnonzero(np.isclose(efforts[first_close:], cfg.open_effort))
        # the second pick's trace says the object is not in hand: open, go to it, close on it again
        assert (len(reopened) > 0) == regrasp
        if regrasp:
            assert np.isclose(efforts[first_close + reopened[0] :], cfg.close_effort).any()


class MoveThenStaticPlanner(ScriptedPlanner):
    """First a plan that moves the effector's tracks 10 cm along +y, then traces in which nothing moves (the rest
    of the motion is shorter than one retargeted step)."""

    name = "short"

    def __init__(self, start):
        super().__init__(seed=1)

    def plan(self, env, frame, K, w2c, instruction):
        self.calls += 1
        dy = np.linspace(0, 0.1, 5) if self.calls == 1 else np.zeros(5)
        return self.trace(env.ee + self.eff, dy[:, None] * [0, 1, 0], K, w2c)


def test_static_traces_after_a_motion_close_the_gripper_and_push_on_along_it():
    start = np.array([0.0, 0.0, 0.1])
    ends = {}
    for push in (0.04, 0.0):
        robot = PointRobot(start)
        cfg = RolloutConfig(max_env_steps=200, max_replans=10, stuck_push_m=push, close_free_motion=False)
        result = rollout(robot, MoveThenStaticPlanner(start), "cam", 0, "", cfg)
        assert result.reason == "static plans"
        ends[push] = robot.ee.copy()
        assert np.isclose(robot.efforts, cfg.close_effort).any() == (push > 0)  # a closed tool pushes on
    assert ends[0.04][1] - ends[0.0][1] > 0.02  # went on along +y ...
    np.testing.assert_allclose(ends[0.04][[0, 2]], ends[0.0][[0, 2]], atol=0.005)  # ... and only along it


def test_the_push_on_can_keep_the_gripper_open():
    start = np.array([0.0, 0.0, 0.1])
    ends = []
    for push in (0.04, 0.0):
        robot = PointRobot(start)
        cfg = RolloutConfig(
            max_env_steps=200, max_replans=10, stuck_push_m=push, close_free_motion=False, stuck_push_closed=False
        )
        rollout(robot, MoveThenStaticPlanner(start), "cam", 0, "", cfg)
        assert not np.isclose(robot.efforts, cfg.close_effort).any()
        ends.append(robot.ee[1])
    assert ends[0] - ends[1] > 0.01  # pushed on along +y, open


def test_a_plan_without_a_grasp_moves_as_a_closed_tool_and_a_grasp_is_approached_open():
    start = np.array([0.0, 0.0, 0.1])
    for tool in (True, False):
        robot = PointRobot(start)
        cfg = RolloutConfig(max_env_steps=200, max_replans=2, stuck_push_m=0, close_free_motion=tool)
        rollout(robot, MoveThenStaticPlanner(start), "cam", 0, "", cfg)
        assert robot.ee[1] > 0.08  # the motion itself (10 cm, to within the waypoint tolerance) is the same
        closing = np.isclose(robot.efforts, cfg.close_effort)
        assert closing.all() if tool else not closing.any()
    robot = PointRobot(start, floor=0.02)
    cfg = RolloutConfig(max_env_steps=150, max_replans=1, close_free_motion=True)
    rollout(robot, PickThenStuckPlanner(start), "cam", 0, "", cfg)  # a plan with a pick in it
    closing = np.isclose(robot.efforts, cfg.close_effort)
    assert not closing[0] and closing.any()  # open until the grasp, then closed


def test_a_pre_grasp_pose_above_the_contact_point():
    for clearance, over in ((0.08, True), (0.0, False)):
        robot = PointRobot([0.1, 0.0, 0.05], floor=0.0)
        plan = Plan(np.zeros((2, 3)), np.array([False, True]), np.arange(1), np.zeros((1, 2, 3)), np.zeros(3))
        plan.grasp_position = np.array([0.0, 0.0, 0.03])
        history = [robot.ee.copy()]
        approach_contact(robot, plan, RolloutConfig(approach_clearance_m=clearance), 200, history)
        heights = np.array(history)[:, 2]
        assert (heights.max() > 0.1) == over  # went up to 8 cm over the contact point first ...
        np.testing.assert_allclose(robot.ee[:2], [0.0, 0.0], atol=0.006)  # ... then down onto it
        assert robot.ee[2] <= 0.031


def test_every_episode_is_announced_to_the_planner_with_its_seed():
    start = np.array([0.0, 0.0, 0.1])
    robot, planner = PointRobot(start), MoveThenStaticPlanner(start)
    cfg = RolloutConfig(max_env_steps=200, max_replans=10)
    first = rollout(robot, planner, "cam", 5, "", cfg)
    second = rollout(robot, planner, "cam", 6, "", cfg)
    assert planner.seeds == [5, 6]
    assert (first.steps, first.plans) == (second.steps, second.plans)  # the plan count restarted with the episode


def test_a_press_straight_down_is_followed_with_the_gripper_closed_from_where_it_begins():
    path = np.array([[0.1, 0.0, 0.2], [0.0, 0.0, 0.2], [0.0, 0.0, 0.15], [0.0, 0.0, 0.1], [0.0, 0.0, 0.1]])
    plan = Plan(path, np.zeros(5, bool), np.arange(1), path[None], None)
    every_press = RolloutConfig(press_straddle_m=0)  # no height map asked: every final press closes
    for closed_press, closes in ((closed_press_start(plan, every_press), True), (None, False)):
        robot = PointRobot(path[0])
        follow(robot, plan, RolloutConfig(), 200, [robot.ee.copy()], closed_press)
        assert robot.efforts[0] < 0  # the sideways move to over the button: open either way
        assert (robot.efforts[-1] > 0) == closes  # the press: closed, a narrower tool


def test_a_press_closes_only_on_something_narrower_than_the_open_hand():
    path = np.array([[0.1, 0.0, 0.2], [0.0, 0.0, 0.2], [0.0, 0.0, 0.15], [0.0, 0.0, 0.1], [0.0, 0.0, 0.1]])
    plan = Plan(path, np.zeros(5, bool), np.arange(1), path[None], None)
    fingers = np.array([[0.0, -0.047], [0.0, 0.047]])

    def scene(cx, cy):  # a floor at z = 0 with a 4 cm cap, 12 cm tall, centred at (cx, cy)
        heights = HeightMap()
        heights.update(floor_with((cx, cy), half_width=0.02, top=0.12))
        return heights

    cfg = RolloutConfig()
    assert closed_press_start(plan, cfg, scene(0.0, 0.0), fingers) == 1  # a cap under the press: closed
    assert closed_press_start(plan, cfg, scene(0.0, 0.047), fingers) is None  # a lever under a finger: open
    assert closed_press_start(plan, cfg) is None  # nothing remembered: open
    assert closed_press_start(plan, RolloutConfig(close_for_press_m=0), scene(0.0, 0.0), fingers) is None


class PressPlanner(ScriptedPlanner):
    """First a press: the effector's tracks go 6 cm straight down and stay there; then traces in which nothing
    moves."""

    name = "press"

    def __init__(self):
        super().__init__(seed=2)

    def plan(self, env, frame, K, w2c, instruction):
        self.calls += 1
        dz = np.array([0.0, -0.03, -0.06, -0.06, -0.06]) if self.calls == 1 else np.zeros(5)
        return self.trace(env.ee + self.eff, dz[:, None] * [0, 0, 1], K, w2c)


def test_the_closed_loop_presses_closed_only_as_its_press_rules_say():
    start = np.array([0.0, 0.0, 0.12])
    cases = (
        ({"press_straddle_m": 0.0}, True),  # every press closed: no height map needed
        ({"close_for_press_m": 0.0}, False),  # every press open
        ({}, False),  # the defaults: no segmentation here, so nothing remembered, so open
    )
    for rules, closes in cases:
        robot = PointRobot(start)
        rollout(robot, PressPlanner(), "cam", 0, "", RolloutConfig(max_replans=3, stuck_push_m=0, **rules))
        assert robot.ee[2] < 0.08  # the press was followed
        assert (max(robot.efforts) > 0) == closes, rules


def test_a_height_map_with_no_cells_is_refused_with_the_way_out():
    with pytest.raises(ValueError, match="press_straddle_m=0"):
        RolloutConfig(height_stride=0)
    for way_out in ({"press_straddle_m": 0.0}, {"close_for_press_m": 0.0}):  # the message's ways out work
        assert not RolloutConfig(height_stride=0, **way_out).remembers_scene


class GoAndReturnPlanner(ScriptedPlanner):
    """A plan whose effector tracks go 10 cm along +x and come back (a press and release), then static plans."""

    name = "go-and-return"

    def plan(self, env, frame, K, w2c, instruction):
        self.calls += 1
        dx = np.array([0.0, 0.05, 0.1, 0.05, 0.0]) if self.calls == 1 else np.zeros(5)
        return self.trace(env.ee + self.eff, dx[:, None] * [1, 0, 0], K, w2c)


def test_a_plan_that_comes_back_to_its_start_is_followed_not_taken_for_static():
    robot = PointRobot([0.0, 0.0, 0.1])
    cfg = RolloutConfig(max_env_steps=200, max_replans=10, stuck_push_m=0, steps_per_plan=4)
    positions = []
    robot.step = (lambda step: lambda a: (step(a), positions.append(robot.ee.copy())))(robot.step)
    rollout(robot, GoAndReturnPlanner(), "cam", 0, "", cfg)
    assert max(p[0] for p in positions) > 0.08  # it went out along +x ...
    assert abs(positions[-1][0]) < 0.02  # ... and back
    assert Plan(np.array([[0, 0, 0], [0.1, 0, 0], [0, 0, 0]]), np.zeros(3, bool), np.arange(1), None).excursion == 0.1


class SolvedWhileWaitingRobot(PointRobot):
    """Solved from its second env step on, whatever the effector does."""

    def step(self, action):
        super().step(action)
        self.success = len(self.efforts) >= 2


class StillPlanner(ScriptedPlanner):
    name = "still"

    def plan(self, env, frame, K, w2c, instruction):
        self.calls += 1
        return self.trace(env.ee + self.eff, np.zeros((5, 3)), K, w2c)


def test_a_success_reached_while_waiting_in_place_ends_the_episode_as_one():
    robot = SolvedWhileWaitingRobot([0.0, 0.0, 0.1])
    result = rollout(robot, StillPlanner(), "cam", 0, "", RolloutConfig(max_replans=10, stuck_push_m=0))
    assert result.success and result.reason == "success" and result.steps == 2
    robot = SolvedWhileWaitingRobot([0.0, 0.0, 0.1])  # ... and on the budget's last step
    result = rollout(robot, StillPlanner(), "cam", 0, "", RolloutConfig(max_env_steps=2, stuck_push_m=0))
    assert result.success and result.steps == 2


def test_a_plan_closed_from_its_first_step_grasps_now_unless_something_is_held():
    start = np.array([0.0, 0.0, 0.1])
    for holding, rule, closes_in_place in ((False, True, True), (True, True, False), (False, False, False)):
        robot = PointRobot(start)
        plan = Plan(np.stack([start, start + [0, 0, 0.05]]), np.ones(2, bool), np.arange(1), None, start.copy())
        cfg = RolloutConfig(grasp_from_start=rule, grasp_press_m=0)
        history = [robot.ee.copy()]
        follow(robot, plan, cfg, 200, history, holding=holding)
        rose = np.flatnonzero(np.array(history)[:, 2] > start[2] + 1e-9)  # the first step that moved it up
        assert (rose[0] > cfg.grasp_wait_steps) == closes_in_place, (holding, rule)  # waited, closing, first
        assert robot.ee[2] > 0.15 - cfg.waypoint_tolerance_m - 1e-6  # then followed the plan


def test_rollout_settings_out_of_range_are_refused_naming_them():
    for bad in ({"steps_per_plan": 0}, {"max_replans": 0}, {"gain": 0.0}, {"grasp_wait_steps": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))}="):
            RolloutConfig(**bad)
