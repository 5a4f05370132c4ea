import numpy as np
import pytest

from tracegen.act.planners import OraclePlanner
from tracegen.act.rollout import RolloutConfig, rollout
from tracegen.sim.env import make_env
from tracegen.sim.painting import PaintedView
from tracegen.traces import static_grid

SIZE = 96


def test_the_sawyer_painted_as_the_hand_is_what_the_hand_itself_shows():
    """The Sawyer's state drawn as the hand equals the hand variant run with the same seed and actions: the same
    RGB, depth and segmentation, in a task whose fixtures the reset moves (the button's box)."""
    with (
        make_env("metaworld", "button-press-topdown", "sawyer", SIZE, SIZE) as sawyer,
        make_env("metaworld", "button-press-topdown", "hand", SIZE, SIZE) as hand,
    ):
        sawyer.reset(3)
        hand.reset(3)
        view = PaintedView(sawyer, "hand")
        try:
            for _ in range(20):
                action = sawyer.expert_action()
                sawyer.step(action)
                hand.step(action)
            painted, own = view.render("corner", seg=True), hand.render("corner", seg=True)
            robot = sawyer.render("corner")
        finally:
            view.close()
    np.testing.assert_array_equal(painted.rgb, own.rgb)
    np.testing.assert_allclose(painted.depth, own.depth, atol=1e-6)
    np.testing.assert_array_equal(painted.geom_ids(), own.geom_ids())
    assert np.abs(painted.rgb.astype(int) - robot.rgb).max() > 100  # the robot does look different


def test_a_view_needs_a_meta_world_variant():
    with (
        make_env("metaworld", "button-press", "sawyer", SIZE, SIZE) as env,
        pytest.raises(ValueError, match="embodiment"),
    ):
        PaintedView(env, "octopus")


class StillPlanner:
    """Plans traces in which nothing moves, keeping the observations it was given."""

    name = "still"

    def __init__(self):
        self.frames = []

    def begin_episode(self, seed):
        pass

    def plan(self, env, frame, K, w2c, instruction):
        self.frames.append(frame)
        return static_grid(*frame.depth.shape, frame.depth, 20)[:, None].repeat(5, axis=1)


def test_a_rollout_plans_on_the_painted_view_and_the_sawyer_acts():
    planner = StillPlanner()
    with make_env("metaworld", "button-press", "sawyer", SIZE, SIZE) as env:
        view = PaintedView(env, "hand")
        try:
            result = rollout(env, planner, "corner", 0, "press the button", RolloutConfig(), view=view)
            expected = view.render("corner").rgb  # the state the episode ended in, which the last plan saw
            with pytest.raises(ValueError, match="oracle"):
                rollout(env, OraclePlanner(), "corner", 0, "press the button", RolloutConfig(), view=view)
        finally:
            view.close()
    assert result.reason == "static plans" and len(planner.frames) == result.plans
    np.testing.assert_array_equal(planner.frames[-1].rgb, expected)
