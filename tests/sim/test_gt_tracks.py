import numpy as np
import pytest

from tracegen.sim.cameras import CameraSpec
from tracegen.sim.recorder import RecordConfig, record_rollout
from tracegen.traces import grid_points

GRID = 12


@pytest.fixture(scope="module")
def episode(drawer_env):
    cfg = RecordConfig(height=64, width=64, max_steps=30, stop_on_success=False, query_every=10, grid=GRID)
    return record_rollout(drawer_env, [CameraSpec("corner3")], seed=2, cfg=cfg).episodes["corner3"]


def test_shapes_and_query_frames(episode):
    gt = episode.gt
    T, N = episode.num_frames, GRID * GRID
    assert T == 31 and list(gt.query_frames) == [0, 10, 20, 30]
    assert gt.point_body.shape == (4, N) and gt.visibility.shape == (4, T, N)
    assert gt.body_pose.shape[0] == T and gt.body_pose.shape[1] >= 2
    episode.validate()


@pytest.mark.parametrize("q", [0, 1, 3])
def test_exact_at_the_query_frame(episode, q):
    uvz, vis = episode.gt_reference_tracks(q)
    on = episode.gt.point_body[q] >= 0
    assert on.mean() > 0.5
    grid = grid_points(episode.height, episode.width, GRID)
    assert np.abs(uvz[on, 0, :2] - grid[on]).max() < 1e-6  # reprojection error at the query frame
    f = int(episode.gt.query_frames[q])
    rows, cols = np.rint(grid[on, 1]).astype(int), np.rint(grid[on, 0]).astype(int)
    assert np.abs(uvz[on, 0, 2] - episode.depth[f, rows, cols]).max() < 1e-5  # the rendered depth
    assert vis[on, 0].all() and not vis[~on].any()


def test_visible_points_agree_with_rendered_depth_later(episode):
    uvz, vis = episode.gt_reference_tracks(0)  # the camera is fixed, so frame t's camera is the reference one
    n, t = np.nonzero(vis[:, 1:])
    t = t + 1
    rows = np.clip(np.rint(uvz[n, t, 1]).astype(int), 0, 63)
    cols = np.clip(np.rint(uvz[n, t, 0]).astype(int), 0, 63)
    err = np.abs(episode.depth[t, rows, cols] - uvz[n, t, 2])
    assert len(n) > 100 and np.mean(err < 0.01 + 0.02 * uvz[n, t, 2]) > 0.95


def test_moving_points_move_and_static_points_stay(episode):
    uvz, _ = episode.gt_reference_tracks(0)
    on = episode.gt.point_body[0] >= 0
    motion = np.linalg.norm(uvz[on, -1, :2] - uvz[on, 0, :2], axis=-1)
    assert (motion < 1e-9).mean() > 0.5  # table, walls: world-fixed
    assert motion.max() > 1.0  # the arm moved by pixels


def test_never_visible_before_the_query_frame(episode):
    gt = episode.gt
    for q, f in enumerate(gt.query_frames):
        assert not gt.visibility[q, :f].any()


def test_visible_points_sit_on_their_body_in_a_fresh_segmentation(drawer_env):
    """Re-render segmentation at the last frame: visible points land on a geom of their own body."""
    env = drawer_env
    cfg = RecordConfig(height=64, width=64, max_steps=20, stop_on_success=False, query_every=100, grid=GRID)
    ep = record_rollout(env, [CameraSpec("corner3")], seed=5, cfg=cfg).episodes["corner3"]
    names = ep.meta["gt_body_names"]
    geoms = env.render("corner3", seg=True).geom_ids()  # the state after the rollout is its last frame
    uvz, vis = ep.gt_reference_tracks(0)
    n = np.flatnonzero(vis[:, -1])
    rows, cols = np.rint(uvz[n, -1, 1]).astype(int), np.rint(uvz[n, -1, 0]).astype(int)
    seen = [env.model.body(env.model.geom_bodyid[g]).name if g >= 0 else None for g in geoms[rows, cols]]
    own = [names[b] for b in ep.gt.point_body[0, n]]
    assert np.mean([a == b for a, b in zip(seen, own, strict=True)]) > 0.9


def test_stepping_leaves_fresh_kinematics(drawer_env):
    """After a step the body poses (read by the renderer and the ground truth) are those of the current joint
    positions: recomputing the kinematics changes nothing."""
    import mujoco

    env = drawer_env
    env.reset(4)
    for _ in range(3):
        env.step(env.expert_action())
    xpos, geom_xpos = env.data.xpos.copy(), env.data.geom_xpos.copy()
    mujoco.mj_kinematics(env.model, env.data)
    assert np.abs(env.data.xpos - xpos).max() < 1e-12 and np.abs(env.data.geom_xpos - geom_xpos).max() < 1e-12
