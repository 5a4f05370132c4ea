import numpy as np
import pytest

from tracegen.act.planners import OraclePlanner
from tracegen.act.rollout import RolloutConfig, rollout
from tracegen.sim.embodiments import GRIPPER_BODIES, effector_geoms
from tracegen.sim.env import make_env
from tracegen.sim.painting import PaintedView
from tracegen.traces import static_grid

SIZE = 96


@pytest.fixture(scope="module")
def painted():
    """After 20 expert steps of button-press-topdown (a task whose reset moves a fixture, the button's box), seed 3:
    the Sawyer's own frame, its frame painted as the hand (with and without what the arm hides), the hand variant's
    own frame after the same actions, and the Sawyer's model."""
    with (
        make_env("metaworld", "button-press-topdown", "sawyer", SIZE, SIZE) as sawyer,
        make_env("metaworld", "button-press-topdown", "hand", SIZE, SIZE) as hand,
    ):
        sawyer.reset(3)
        hand.reset(3)
        views = PaintedView(sawyer, "hand"), PaintedView(sawyer, "hand", reveal=True)
        try:
            for _ in range(20):
                action = sawyer.expert_action()
                sawyer.step(action)
                hand.step(action)
            frames = [v.render("corner", seg=True) for v in views]
            yield sawyer.render("corner", seg=True), *frames, hand.render("corner", seg=True), sawyer.model
        finally:
            for v in views:
                v.close()


def test_revealed_the_sawyer_painted_as_the_hand_is_what_the_hand_itself_shows(painted):
    """Posed with the Sawyer's state and fixtures, the hand variant draws what the hand variant run with the same
    seed and actions shows (segmentation: on the same bodies, in the Sawyer's geom ids)."""
    own, _, revealed, hand, model = painted
    np.testing.assert_array_equal(revealed.rgb, hand.rgb)
    np.testing.assert_allclose(revealed.depth, hand.depth, atol=1e-6)
    assert np.abs(revealed.rgb.astype(int) - own.rgb).max() > 100  # the robot does look different
    seen = revealed.geom_ids() >= 0
    np.testing.assert_array_equal(seen, hand.geom_ids() >= 0)
    assert seen.any()


def test_painted_the_robot_is_gone_the_hand_drawn_and_the_rest_untouched(painted):
    own, composite, revealed, _, model = painted
    robot = np.isin(own.geom_ids(), effector_geoms(model))
    gripper = [model.body(name).id for name in GRIPPER_BODIES]
    drawn = np.isin(composite.geom_ids(), np.flatnonzero(np.isin(model.geom_bodyid, gripper)))  # on its bodies
    assert robot.sum() > 50 and drawn.sum() > 10
    assert not np.isin(composite.geom_ids()[~drawn], effector_geoms(model)).any()  # no Sawyer pixel is left
    np.testing.assert_array_equal(composite.rgb[drawn], revealed.rgb[drawn])  # the hand as the variant draws it
    np.testing.assert_array_equal(composite.depth[drawn], revealed.depth[drawn])
    np.testing.assert_array_equal(composite.rgb[~robot & ~drawn], own.rgb[~robot & ~drawn])  # the scene as seen
    hole = robot & ~drawn  # filled in from around it: the scene behind the arm stays unseen
    assert (composite.geom_ids()[hole] == -1).all()
    assert np.median(composite.depth[hole] - own.depth[hole]) > 0.1  # (m) filled from what lies behind the arm


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
