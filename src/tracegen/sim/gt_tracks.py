"""Exact ground-truth 3D tracks from the simulator's body poses (no tracker involved).

At a query frame the ``G x G`` grid (:func:`tracegen.traces.grid_points`: integer pixel centres, row-major)
is lifted to 3D, each grid ray ``(u, v)`` at the rendered planar depth of its nearest pixel, and attached to
the rigid body of the geom that pixel shows (segmentation). Its coordinates in that body's frame never change,
so its world position at any frame is ``body_pose[t] @ point_local``, and projecting it with a camera gives
``(u, v, z)``. At the query frame this reproduces the grid exactly (floating-point round-off, ~1e-13 px).

Visibility at frame ``t`` (in frame t's camera): the point is on a surface, in front of the camera, inside
the image, and the rendered depth of one of the 2 x 2 pixels around its projection agrees with its depth
within ``atol + rtol * z`` (1 cm + 2 %); otherwise something occludes it. Points are never visible before
their query frame.

The result is a :class:`tracegen.io.episode.GroundTruthTracks` that stores only the bodies carrying points
(the world body, index 0, is always kept).
"""

from __future__ import annotations

import mujoco
import numpy as np

from tracegen.geometry import invert_rigid, project, transform_points, unproject
from tracegen.io.episode import GroundTruthTracks
from tracegen.traces import DEFAULT_GRID, grid_pixel_indices, grid_points

DEPTH_ATOL = 0.01  # metres
DEPTH_RTOL = 0.02  # fraction of the point's depth


def body_poses(data: mujoco.MjData) -> np.ndarray:
    """``(nbody, 4, 4)`` body -> world pose of every body."""
    T = np.zeros((len(data.xpos), 4, 4))
    T[:, :3, :3] = data.xmat.reshape(-1, 3, 3)
    T[:, :3, 3] = data.xpos
    T[:, 3, 3] = 1.0
    return T


def attach_grid(
    model: mujoco.MjModel,
    poses: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    depth: np.ndarray,
    geom_ids: np.ndarray,
    grid: int = DEFAULT_GRID,
) -> tuple[np.ndarray, np.ndarray]:
    """Lift the query grid of one frame and attach each point to its body.

    Args:
        poses: ``(nbody, 4, 4)`` body poses at the query frame.
        K: ``(3, 3)`` and w2c ``(4, 4)``: the frame's camera.
        depth: ``(H, W)`` metres of planar depth.
        geom_ids: ``(H, W)`` geom id per pixel, -1 for background.
    Returns:
        ``point_body (N,)`` int32 body id (-1 where the ray hits no geom) and ``point_local (N, 3)`` metres.
    """
    H, W = depth.shape
    rows, cols = grid_pixel_indices(H, W, grid)
    geom = geom_ids[rows, cols]
    on_geom = geom >= 0
    X_cam = unproject(grid_points(H, W, grid), depth[rows, cols].astype(np.float64), K)  # (N, 3)
    X = transform_points(invert_rigid(w2c), X_cam)  # (N, 3) world
    body = np.where(on_geom, model.geom_bodyid[np.maximum(geom, 0)], -1).astype(np.int32)
    b2w = poses[np.maximum(body, 0)]  # (N, 4, 4)
    local = np.einsum("nji,nj->ni", b2w[:, :3, :3], X - b2w[:, :3, 3])  # R_b^T (X - p_b)
    local[~on_geom] = 0.0
    return body, local


def world_points(poses: np.ndarray, point_body: np.ndarray, point_local: np.ndarray) -> np.ndarray:
    """World positions ``(N, 3)`` of attached points for body poses ``(nbody, 4, 4)`` of one frame."""
    b2w = poses[np.maximum(point_body, 0)]
    return np.einsum("nij,nj->ni", b2w[:, :3, :3], point_local) + b2w[:, :3, 3]


def visible(
    X: np.ndarray,
    on_surface: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    depth: np.ndarray,
    atol: float = DEPTH_ATOL,
    rtol: float = DEPTH_RTOL,
) -> np.ndarray:
    """``(N,)`` bool: are world points ``(N, 3)`` seen by camera (K, w2c) with rendered depth ``(H, W)``?"""
    H, W = depth.shape
    uv, z = project(transform_points(w2c, X), K)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = (uv[:, 0] > -0.5) & (uv[:, 0] < W - 0.5) & (uv[:, 1] > -0.5) & (uv[:, 1] < H - 0.5)
        ok = on_surface & (z > 0) & inside
    u, v = np.nan_to_num(uv[:, 0]), np.nan_to_num(uv[:, 1])
    cols = np.clip(np.stack([np.floor(u), np.ceil(u)], 1), 0, W - 1).astype(np.int64)  # (N, 2)
    rows = np.clip(np.stack([np.floor(v), np.ceil(v)], 1), 0, H - 1).astype(np.int64)
    d = depth[rows[:, :, None], cols[:, None, :]].reshape(len(X), 4)  # the 2 x 2 pixels around each one
    agrees = (np.abs(d - z[:, None]) < atol + rtol * np.abs(z[:, None])).any(1)
    return ok & agrees


class TrackRecorder:
    """Collects exact tracks over an episode: call :meth:`observe` once per recorded frame, in order."""

    def __init__(self, model: mujoco.MjModel, grid: int = DEFAULT_GRID):
        self.model, self.grid = model, grid
        self.poses: list[np.ndarray] = []  # per frame: (nbody, 4, 4)
        self.query_frames: list[int] = []
        self._body = np.zeros(0, np.int32)  # (Q * N,) model body id of each query point so far, -1: none
        self._local = np.zeros((0, 3))  # (Q * N, 3)
        self._visible: list[np.ndarray] = []  # per frame: (Q_t * N,) for the queries made up to that frame

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    def observe(
        self,
        data: mujoco.MjData,
        K: np.ndarray,
        w2c: np.ndarray,
        depth: np.ndarray,
        geom_ids: np.ndarray | None = None,
    ) -> None:
        """Record frame ``t = num_frames``; passing ``geom_ids`` (H, W) makes it a query frame."""
        poses = body_poses(data)
        if geom_ids is not None:
            body, local = attach_grid(self.model, poses, K, w2c, depth, geom_ids, self.grid)
            self.query_frames.append(len(self.poses))
            self._body = np.concatenate([self._body, body])
            self._local = np.concatenate([self._local, local])
        self.poses.append(poses)
        X = world_points(poses, self._body, self._local)
        self._visible.append(visible(X, self._body >= 0, K, w2c, depth))

    def result(self) -> GroundTruthTracks:
        """The tracks, with body poses only for the world body and the bodies that carry points."""
        if not self.query_frames:
            raise ValueError("no query frame was observed (pass geom_ids to observe() at least once)")
        Q, T, N = len(self.query_frames), len(self.poses), self.grid * self.grid
        used = self._used_bodies()
        remap = np.full(self.model.nbody, -1, np.int32)
        remap[used] = np.arange(len(used))
        vis = np.zeros((Q, T, N), bool)
        for t, row in enumerate(self._visible):
            vis[: len(row) // N, t] = row.reshape(-1, N)
        body = np.where(self._body >= 0, remap[np.maximum(self._body, 0)], -1).astype(np.int32)
        return GroundTruthTracks(
            query_frames=np.array(self.query_frames, np.int64),
            grid=self.grid,
            body_pose=np.stack(self.poses)[:, used],
            point_body=body.reshape(Q, N),
            point_local=self._local.reshape(Q, N, 3),
            visibility=vis,
        )

    def body_names(self) -> list[str]:
        """Names of the bodies kept by :meth:`result`, in its body order."""
        return [self.model.body(int(b)).name for b in self._used_bodies()]

    def _used_bodies(self) -> np.ndarray:
        return np.unique(np.concatenate([[0], self._body[self._body >= 0]])).astype(np.int64)
