"""The episode format: one raw demonstration seen by one camera (robot or human, simulated or real).

Layout of an episode directory (docs/FORMATS.md has the full table)::

    <episode>/episode.json   metadata: format, format_version, num_frames, height, width, fps, instructions, ...
    <episode>/rgb.mp4        RGB video, H.264 (or AV1), yuv420p
    <episode>/depth.npz      optional: depth (T, H, W) float32 metres of planar depth, 0 = no measurement
    <episode>/cameras.npz    optional: K (T, 3, 3), w2c (T, 4, 4) float64, OpenCV axes, world -> camera
    <episode>/proprio.npz    optional: state (T, Ds), action (T, Da) float32
    <episode>/gt_tracks.npz  optional: exact ground-truth tracks as rigid attachments (simulated episodes)

An episode is written into a temporary directory and renamed into place, so a killed writer never leaves an
episode that :func:`read_episode` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tracegen.errors import DataError, check
from tracegen.geometry import pixels_to_world, transform_points
from tracegen.io.files import atomic_dir, check_finite, check_format, load_json, load_npz, save_json, save_npz
from tracegen.io.video import read_video, write_video

FORMAT = "tracegen-episode"
VERSION = 1


@dataclass
class GroundTruthTracks:
    """Exact tracks of query grids, stored as points rigidly attached to bodies (exact for rigid-body simulation).

    The world position of point n of query q at frame t is ``body_pose[t, point_body[q, n]] @ point_local[q, n]``.

    Attributes:
        query_frames: ``(Q,)`` int64 frame index of each query grid.
        grid: grid size G (N = G * G points per query, row-major over the image).
        body_pose: ``(T, B, 4, 4)`` float64 body -> world pose of each rigid body at every frame.
        point_body: ``(Q, N)`` int32 body index of each query point, -1 where the point hit no surface.
        point_local: ``(Q, N, 3)`` float64 point coordinates in its body's frame (metres).
        visibility: ``(Q, T, N)`` bool, visible at frame t in the episode's camera at t (in the image, in front of
            the camera, not occluded according to the rendered depth); False before the query frame.
    """

    query_frames: np.ndarray
    grid: int
    body_pose: np.ndarray
    point_body: np.ndarray
    point_local: np.ndarray
    visibility: np.ndarray

    def world_tracks(self, q: int) -> np.ndarray:
        """World positions ``(N, T, 3)`` of query ``q``'s points at every frame; NaN for points without a surface."""
        body = np.maximum(self.point_body[q], 0)  # (N,)
        poses = self.body_pose[:, body]  # (T, N, 4, 4)
        X = transform_points(poses, self.point_local[q][None, :, None, :])[:, :, 0]  # (T, N, 3)
        X[:, self.point_body[q] < 0] = np.nan
        return np.swapaxes(X, 0, 1)

    def validate(self, path: Path, num_frames: int) -> None:
        Q = len(self.query_frames)
        N = self.grid * self.grid
        check(
            self.body_pose.ndim == 4 and self.body_pose.shape[0] == num_frames and self.body_pose.shape[2:] == (4, 4),
            path,
            f"body_pose must be ({num_frames}, B, 4, 4), got {self.body_pose.shape}",
        )
        check(
            self.point_body.shape == (Q, N),
            path,
            f"point_body must be ({Q}, {N}), got {self.point_body.shape}",
        )
        check(
            self.point_local.shape == (Q, N, 3),
            path,
            f"point_local must be ({Q}, {N}, 3), got {self.point_local.shape}",
        )
        check(
            self.visibility.shape == (Q, num_frames, N),
            path,
            f"visibility must be ({Q}, {num_frames}, {N}), got {self.visibility.shape}",
        )
        check(
            ((self.query_frames >= 0) & (self.query_frames < num_frames)).all(),
            path,
            "query_frames out of range",
        )
        check((self.point_body < self.body_pose.shape[1]).all(), path, "point_body indexes a missing body")
        check_finite(path, "body_pose", self.body_pose)
        check_finite(path, "point_local", self.point_local)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "query_frames": np.asarray(self.query_frames, np.int64),
            "grid": np.asarray(self.grid, np.int64),
            "body_pose": np.asarray(self.body_pose, np.float64),
            "point_body": np.asarray(self.point_body, np.int32),
            "point_local": np.asarray(self.point_local, np.float64),
            "visibility": np.asarray(self.visibility, bool),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> GroundTruthTracks:
        return cls(
            a["query_frames"],
            int(a["grid"]),
            a["body_pose"],
            a["point_body"],
            a["point_local"],
            a["visibility"],
        )


class VideoFrames:
    """``num_frames``, ``height`` and ``width`` of anything holding ``rgb (T, H, W, 3)`` frames."""

    rgb: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[2])


@dataclass
class Episode(VideoFrames):
    """One demonstration from one camera. Shapes: T frames of H x W pixels.

    Attributes:
        rgb: ``(T, H, W, 3)`` uint8.
        fps: frames per second of the recording.
        instructions: what is being done, in one or more phrasings (the paper's three styles where available).
        depth: ``(T, H, W)`` float32 metres of planar depth, 0 where there is no measurement; None without depth.
        K: ``(T, 3, 3)`` per-frame intrinsics (pixels, integer pixel centres); None when unknown.
        w2c: ``(T, 4, 4)`` per-frame world -> camera extrinsics (OpenCV axes); None when unknown.
        state: ``(T, Ds)`` proprioception (e.g. end-effector xyz + gripper), action: ``(T, Da)`` commands; optional.
        gt: exact ground-truth tracks (simulated episodes only).
        meta: free-form JSON-serialisable metadata; by convention ``episode_id``, ``source``, ``suite``, ``task``,
            ``embodiment``, ``camera``, ``seed``, ``success``.
    """

    rgb: np.ndarray
    fps: float
    instructions: list[str] = field(default_factory=list)
    depth: np.ndarray | None = None
    K: np.ndarray | None = None
    w2c: np.ndarray | None = None
    state: np.ndarray | None = None
    action: np.ndarray | None = None
    gt: GroundTruthTracks | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def validate(self, path: str | Path = "<episode>") -> None:
        """Raise :class:`DataError` naming ``path`` for any inconsistency."""
        path = Path(path)
        check(
            self.rgb.ndim == 4 and self.rgb.shape[-1] == 3 and self.rgb.dtype == np.uint8,
            path,
            f"rgb must be (T, H, W, 3) uint8, got {self.rgb.shape} {self.rgb.dtype}",
        )
        T, H, W = self.rgb.shape[:3]
        check(T > 0, path, "episode has zero frames")
        check(np.isfinite(self.fps) and self.fps > 0, path, f"fps must be positive, got {self.fps}")
        check(
            all(isinstance(s, str) and s.strip() for s in self.instructions),
            path,
            "instructions must be non-empty strings",
        )
        if self.depth is not None:
            check(
                self.depth.shape == (T, H, W),
                path,
                f"depth size {self.depth.shape} does not match the RGB frames {(T, H, W)}",
            )
            check_finite(path, "depth", self.depth)
            check(
                bool((self.depth >= 0).all()),
                path,
                "depth has negative values (metres of planar depth expected)",
            )
        check((self.K is None) == (self.w2c is None), path, "cameras need both K and w2c (or neither)")
        if self.K is not None:
            validate_cameras(path, self.K, self.w2c, T)
        for name in ("state", "action"):
            value = getattr(self, name)
            if value is not None:
                check(value.ndim == 2 and len(value) == T, path, f"{name} must be ({T}, D), got {value.shape}")
                check_finite(path, name, value)
        if self.gt is not None:
            self.gt.validate(path, T)

    def gt_reference_tracks(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of query ``q`` in the query frame's camera: ``uvz (N, T - f, 3)``, ``visible (N, T - f)``."""
        from tracegen.traces import world_to_reference

        if self.gt is None or self.K is None:
            raise ValueError("this episode has no ground-truth tracks or no cameras")
        f = int(self.gt.query_frames[q])
        X = self.gt.world_tracks(q)[:, f:]
        return world_to_reference(X, self.K[f], self.w2c[f]), self.gt.visibility[q, f:].T


def validate_cameras(path: Path, K: np.ndarray, w2c: np.ndarray, T: int) -> None:
    """Per-frame intrinsics ``(T, 3, 3)`` and rigid world->camera extrinsics ``(T, 4, 4)``."""
    check(K.shape == (T, 3, 3), path, f"K must be ({T}, 3, 3), got {K.shape}")
    check(w2c.shape == (T, 4, 4), path, f"w2c must be ({T}, 4, 4), got {w2c.shape}")
    check_finite(path, "K", K)
    check_finite(path, "w2c", w2c)
    check(bool((K[:, 0, 0] > 0).all() and (K[:, 1, 1] > 0).all()), path, "K has non-positive focal lengths")
    check(np.allclose(K[:, 2], [0, 0, 1]) and np.allclose(K[:, 1, 0], 0), path, "K is not an intrinsics matrix")
    R = w2c[:, :3, :3]
    check(np.allclose(w2c[:, 3], [0, 0, 0, 1]), path, "w2c bottom rows must be [0, 0, 0, 1]")
    ortho = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max()
    check(
        ortho < 1e-4 and (np.linalg.det(R) > 0).all(),
        path,
        f"w2c rotations are not proper rotations (orthogonality error {ortho:.2e})",
    )


# --- write / read


def write_episode(path: str | Path, ep: Episode, codec: str = "h264", crf: int = 18) -> Path:
    """Validate and write ``ep`` as an episode directory at ``path`` (atomically; replaces an existing one)."""
    path = Path(path)
    ep.validate(path)
    meta = {
        "format": FORMAT,
        "format_version": VERSION,
        "num_frames": ep.num_frames,
        "height": ep.height,
        "width": ep.width,
        "fps": float(ep.fps),
        "instructions": list(ep.instructions),
        "has_depth": ep.depth is not None,
        "has_cameras": ep.K is not None,
        "has_proprio": ep.state is not None or ep.action is not None,
        "has_gt_tracks": ep.gt is not None,
        "video_codec": codec,
        "meta": ep.meta,
    }
    with atomic_dir(path) as tmp:
        write_video(tmp / "rgb.mp4", ep.rgb, ep.fps, codec=codec, crf=crf)
        if ep.depth is not None:
            save_npz(tmp / "depth.npz", depth=ep.depth.astype(np.float32))
        if ep.K is not None:
            save_npz(tmp / "cameras.npz", K=ep.K.astype(np.float64), w2c=ep.w2c.astype(np.float64))
        if meta["has_proprio"]:
            proprio = {
                k: v.astype(np.float32) for k, v in (("state", ep.state), ("action", ep.action)) if v is not None
            }
            save_npz(tmp / "proprio.npz", **proprio)
        if ep.gt is not None:
            save_npz(tmp / "gt_tracks.npz", **ep.gt.to_arrays())
        save_json(tmp / "episode.json", meta)
    return path


def is_episode(path: str | Path) -> bool:
    return (Path(path) / "episode.json").is_file()


def read_episode_meta(path: str | Path) -> dict[str, Any]:
    """The validated ``episode.json`` of an episode directory."""
    path = Path(path)
    meta_path = path / "episode.json"
    meta = load_json(meta_path)
    check(isinstance(meta, dict), meta_path, "episode.json must hold a JSON object")
    check_format(meta_path, meta, FORMAT, (VERSION,))
    for key in ("num_frames", "height", "width", "fps"):
        check(key in meta, meta_path, f"missing field {key!r}")
    return meta


def read_episode(path: str | Path, load_rgb: bool = True) -> Episode:
    """Read and validate an episode directory. ``load_rgb=False`` skips decoding (rgb is then a black view)."""
    path = Path(path)
    meta = read_episode_meta(path)
    T, H, W = meta["num_frames"], meta["height"], meta["width"]
    if load_rgb:
        rgb = read_video(path / "rgb.mp4", expected_frames=T)
        check(
            rgb.shape[1:3] == (H, W),
            path / "rgb.mp4",
            f"frames are {rgb.shape[1:3]}, episode.json says {(H, W)}",
        )
    else:
        rgb = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (T, H, W, 3))  # shape only, no memory
    depth = load_npz(path / "depth.npz", ("depth",))["depth"] if meta.get("has_depth") else None
    K = w2c = None
    if meta.get("has_cameras"):
        cams = load_npz(path / "cameras.npz", ("K", "w2c"))
        K, w2c = cams["K"], cams["w2c"]
    proprio = load_npz(path / "proprio.npz") if meta.get("has_proprio") else {}
    gt = None
    if meta.get("has_gt_tracks"):
        arrays = load_npz(
            path / "gt_tracks.npz",
            ("query_frames", "grid", "body_pose", "point_body", "point_local", "visibility"),
        )
        gt = GroundTruthTracks.from_arrays(arrays)
    ep = Episode(
        rgb,
        meta["fps"],
        list(meta.get("instructions", [])),
        depth,
        K,
        w2c,
        proprio.get("state"),
        proprio.get("action"),
        gt,
        dict(meta.get("meta", {})),
    )
    _validate_with_file_names(path, ep)
    return ep


def _validate_with_file_names(path: Path, ep: Episode) -> None:
    """Validate, attributing each problem to the file that holds the offending data."""
    try:
        ep.validate(path)
    except DataError as e:
        owner = {
            "depth": "depth.npz",
            "K ": "cameras.npz",
            "w2c": "cameras.npz",
            "state": "proprio.npz",
            "action": "proprio.npz",
            "body_pose": "gt_tracks.npz",
            "point_": "gt_tracks.npz",
            "visibility": "gt_tracks.npz",
            "query_frames": "gt_tracks.npz",
        }
        for prefix, name in owner.items():
            if e.problem.startswith(prefix):
                raise DataError(path / name, e.problem) from None
        raise


def unproject_depth(depth: np.ndarray, K: np.ndarray, w2c: np.ndarray, stride: int = 1) -> np.ndarray:
    """World point cloud ``(M, 3)`` from one depth map ``(H, W)``, skipping pixels with no measurement."""
    H, W = depth.shape
    v, u = np.mgrid[0:H:stride, 0:W:stride]
    z = depth[v, u]
    keep = z > 0
    uv = np.stack([u[keep], v[keep]], -1).astype(np.float64)
    return pixels_to_world(np.concatenate([uv, z[keep, None]], -1), K, w2c)
