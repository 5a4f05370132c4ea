"""Small synthetic episodes with exact ground truth, built on the fly (no simulator needed)."""

from __future__ import annotations

import numpy as np

from tracegen.geometry import intrinsics_from_fovy, look_at, pixels_to_world
from tracegen.io.episode import Episode, GroundTruthTracks
from tracegen.traces import grid_points


def synthetic_episode(
    T: int = 24,
    H: int = 48,
    W: int = 64,
    grid: int = 20,
    speed: float = 0.02,
    camera_motion: float = 0.0,
    seed: int = 0,
) -> Episode:
    """A camera 1 m from a wall; the left half of the wall (body 1) slides along world +x at ``speed`` m/frame,
    the right half (body 0) is static. ``camera_motion`` moves the camera along world +y (m/frame).

    Ground truth: every grid point of query frames 0, 5, 10, ... is attached to the half it lies on.
    """
    rng = np.random.default_rng(seed)
    K = intrinsics_from_fovy(60.0, H, W)
    w2c = np.stack(
        [look_at([0.0, camera_motion * t, 1.0], [0.0, camera_motion * t, 0.0], up=[0, 1, 0]) for t in range(T)]
    )
    depth = np.ones((T, H, W), np.float32)  # the wall is 1 m from the camera, facing it
    body_pose = np.repeat(np.eye(4)[None, None], T, 0).repeat(2, 1)  # (T, 2, 4, 4)
    body_pose[:, 1, 0, 3] = speed * np.arange(T)
    queries = np.arange(0, T, 5)
    uv = grid_points(H, W, grid)
    point_body = np.where(uv[:, 0] < (W - 1) / 2, 1, 0)[None].repeat(len(queries), 0).astype(np.int32)
    point_local = np.zeros((len(queries), grid * grid, 3))
    for q, f in enumerate(queries):
        X = pixels_to_world(np.concatenate([uv, np.ones((len(uv), 1))], -1), K, w2c[f])
        point_local[q] = X - body_pose[f, point_body[q], :3, 3]
    visibility = np.zeros((len(queries), T, grid * grid), bool)
    for q, f in enumerate(queries):
        visibility[q, f:] = True
    rgb = rng.integers(0, 255, (T, H, W, 3), dtype=np.uint8)
    gt = GroundTruthTracks(queries, grid, body_pose, point_body, point_local, visibility)
    return Episode(
        rgb,
        10.0,
        ["slide the left panel to the right", "push the panel"],
        depth,
        np.repeat(K[None], T, 0),
        w2c,
        np.zeros((T, 4), np.float32),
        np.zeros((T, 4), np.float32),
        gt,
        {"episode_id": f"synthetic_{seed}", "source": "synthetic", "task": "slide", "embodiment": "none"},
    )


def tiny_train_config(dataset: str, out, steps: int, **kw):
    """A ``TrainConfig`` for a few steps of the tiny preset on ``dataset`` (one of four episodes held out)."""
    from tracegen.train import TrainConfig

    settings = dict(
        preset="tiny", batch_size=8, warmup_steps=2, log_every=1, eval_every=100, ckpt_every=100, val_fraction=0.25
    )
    return TrainConfig(data=[dataset], out=str(out), steps=steps, **(settings | kw))


def floor_with(block_centre=None, half_width=0.02, top=0.1, extent=0.12, step=0.004):
    """Points ``(P, 3)`` sampling a floor at z = 0 around the origin, with a square block standing on it."""
    xs = np.arange(-extent, extent, step)
    xx, yy = np.meshgrid(xs, xs, indexing="ij")
    zz = np.zeros_like(xx)
    if block_centre is not None:
        on = (np.abs(xx - block_centre[0]) < half_width) & (np.abs(yy - block_centre[1]) < half_width)
        zz[on] = top
    return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], 1)
