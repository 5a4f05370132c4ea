"""The model planner's sampling noise: a function of (planner seed, episode seed, plan number) only."""

import numpy as np
import pytest
import torch

from tracegen.act.planners import ModelPlanner
from tracegen.model import TraceGen, preset
from tracegen.sim.render import Frame

TEXTS = ("open the drawer", "press the button")


@pytest.fixture(scope="module")
def planner_model():
    torch.manual_seed(0)
    m = TraceGen(preset("tiny", grid=4, horizon=8))
    for p in m.parameters():  # random, non-zero weights everywhere: the zero-initialised head would hide the noise
        torch.nn.init.normal_(p, std=0.05)
    rng = np.random.default_rng(0)
    for text in TEXTS:  # cached embeddings: the sentence encoder is not what this tests, and takes seconds to load
        m.text.cache[text] = rng.normal(size=m.cfg.text_dim).astype(np.float32)
    return m.eval()


def frame(seed=0, H=48, W=64):
    rng = np.random.default_rng(seed)
    return Frame(rgb=rng.integers(0, 255, (H, W, 3), dtype=np.uint8), depth=rng.uniform(0.5, 2.0, (H, W)).astype("f4"))


def plans(planner, episode, n, obs):
    planner.begin_episode(episode)
    return [planner.plan(None, obs, np.eye(3), np.eye(4), TEXTS[0]) for _ in range(n)]


def test_an_episode_plans_the_same_traces_whatever_ran_before(planner_model):
    obs = frame()
    fresh = plans(ModelPlanner(planner_model, steps=2), 7, 2, obs)
    used = ModelPlanner(planner_model, steps=2)
    plans(used, 3, 3, obs)  # another episode first, with more plans
    used.plan(None, frame(1), np.eye(3), np.eye(4), TEXTS[1])
    again = plans(used, 7, 2, obs)
    for a, b in zip(fresh, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.abs(fresh[0] - fresh[1]).max() > 1e-3  # plan 2 of the same observation draws other noise
    other = plans(ModelPlanner(planner_model, steps=2), 8, 1, obs)[0]
    assert np.abs(fresh[0] - other).max() > 1e-3  # ... and so does plan 1 of another episode


def test_restore_speed_gives_the_planned_trace_the_retargeted_step_length(planner_model):
    """The tiny model's trace, restored: every step whose robust speed is not negligible advances exactly one
    retargeted step (0.05 normalised units); the same trace without the option does not."""
    from tracegen.traces import RetargetConfig, robust_speed

    obs = frame()
    plain = plans(ModelPlanner(planner_model, steps=2), 7, 1, obs)[0]
    restored = plans(ModelPlanner(planner_model, steps=2, restore_speed=True), 7, 1, obs)[0]
    step = RetargetConfig().step
    before, after = robust_speed(plain, 48, 64, clip=False), robust_speed(restored, 48, 64, clip=False)
    moving = before >= 0.25 * step
    assert moving.any() and not np.allclose(before[moving], step)
    np.testing.assert_allclose(after[moving], step, rtol=1e-6)
    np.testing.assert_array_equal(restored[:, 0], plain[:, 0])  # the same start: the query grid


def test_the_neighbour_planner_replays_the_nearest_triplet_from_the_current_grid_and_depth():
    """Two triplets with other images and motions: the observation that looks like the first gets the first's
    increments, started from its own query grid and depth (NaN where the depth is 0); the instruction counts too."""
    from tracegen.act.planners import NeighbourPlanner
    from tracegen.model.data import Example
    from tracegen.model.encoders import TextEncoder
    from tracegen.traces import DELTA_SCALE, grid_points

    grid, steps, S, H, W = 4, 6, 32, 48, 64
    left, right = np.zeros((3, S, S), np.uint8), np.zeros((3, S, S), np.uint8)
    left[:, :, : S // 2], right[:, :, S // 2 :] = 255, 255
    moves = {"left": np.array([0.5, 0.0, 0.25]), "right": np.array([0.0, -0.5, 0.0])}

    def triplet(rgb, text, move):
        x0 = np.broadcast_to(move, (grid * grid, steps, 3)).astype(np.float32)
        return Example(
            rgb,
            np.zeros((1, S, S), np.float32),
            True,
            x0,
            np.ones_like(x0, bool),
            [text],
            np.zeros((grid * grid, steps + 1, 3), np.float32),
            (H, W),
            text,
        )

    text = TextEncoder()
    rng = np.random.default_rng(0)
    for t in TEXTS:  # cached embeddings (the sentence encoder takes seconds to load), far apart
        text.cache[t] = rng.normal(size=384).astype(np.float32)
        text.cache[t] /= np.linalg.norm(text.cache[t])
    triplets = [
        triplet(right, TEXTS[0], moves["right"]),
        triplet(left, TEXTS[0], moves["left"]),
        triplet(left, TEXTS[1], moves["right"]),
    ]  # the image decides between the first two
    planner = NeighbourPlanner(triplets, text, grid=grid)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:, : W // 2] = 250  # looks like the "left" images
    depth = np.full((H, W), 1.5, np.float32)
    depth[0, 0] = 0.0  # the first grid point has no measurement
    traj = planner.plan(None, Frame(rgb=rgb, depth=depth), np.eye(3), np.eye(4), TEXTS[0])
    assert traj.shape == (grid * grid, steps + 1, 3)
    np.testing.assert_allclose(traj[:, 0, :2], grid_points(H, W, grid))
    assert np.isnan(traj[0, :, 2]).all() and np.allclose(traj[1:, 0, 2], 1.5)
    per_step = moves["left"] * DELTA_SCALE * np.array([W, H, 1.0])  # pixels, pixels, metres
    np.testing.assert_allclose(traj[1:, -1] - traj[1:, 0], np.broadcast_to(steps * per_step, (grid * grid - 1, 3)))
    other = planner.plan(None, Frame(rgb=rgb, depth=depth), np.eye(3), np.eye(4), TEXTS[1])
    np.testing.assert_allclose(
        other[:, -1, :2] - other[:, 0, :2], np.broadcast_to([0.0, -0.5 * DELTA_SCALE[1] * H * steps], (grid * grid, 2))
    )
    with pytest.raises(ValueError, match="4x4 query grids; the executor here expects 20x20"):
        NeighbourPlanner(triplets, text)
