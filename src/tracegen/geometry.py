"""Cameras in one convention, and the few transforms everything else is built from.

Convention (used everywhere in tracegen; conversions from other conventions happen where data enters):

* **Camera axes: OpenCV.** +x right, +y down, +z forward (the optical axis). Depth ``z`` is *planar* depth, the
  camera-frame Z coordinate in metres, not the distance along the ray.
* **Intrinsics** ``K`` ``(3, 3)``: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
* **Pixel centres at integer coordinates.** Pixel (row i, col j) has its centre at ``(u, v) = (j, i)``, as in OpenCV
  and the official TraceGen grid ``linspace(0, W - 1, 20)``. (MuJoCo's natural K puts the centre at ``j + 0.5``;
  :func:`intrinsics_from_fovy` returns the integer-centre K.)
* **Extrinsics** ``w2c`` ``(4, 4)``: world -> camera, ``X_cam = R @ X_world + t`` with ``w2c = [[R, t], [0, 1]]``.
  The inverse, ``c2w``, has the camera axes in world coordinates as the columns of its rotation.

Every function is vectorised over leading dimensions and works on numpy arrays; ``project``/``unproject`` and
the rigid transforms also accept torch tensors (the model needs them), returning the same type they are given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or torch.Tensor


def array_namespace(x: Array):
    """The array namespace of ``x``: numpy, or torch for tensors (imported lazily)."""
    if isinstance(x, np.ndarray):
        return np
    import torch

    return torch if isinstance(x, torch.Tensor) else np


def _mT(x: Array) -> Array:
    """Swap the last two axes (matrix transpose over a batch) for numpy arrays and torch tensors."""
    return np.swapaxes(x, -1, -2) if isinstance(x, np.ndarray) else x.transpose(-1, -2)


# --- intrinsics


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """K ``(3, 3)`` float64 from focal lengths and principal point (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fovy(fovy_deg: float, height: int, width: int) -> np.ndarray:
    """K of a pinhole camera with square pixels and vertical field of view ``fovy_deg`` (MuJoCo's ``cam_fovy``).

    The principal point is the image centre in the integer-pixel-centre convention: ``((W - 1) / 2, (H - 1) / 2)``.
    """
    f = 0.5 * height / np.tan(np.radians(fovy_deg) / 2.0)
    return intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def fx_fy_cx_cy(K: np.ndarray) -> np.ndarray:
    """``(..., 4)`` vector ``[fx, fy, cx, cy]`` (the TAPVid-3D layout) from K ``(..., 3, 3)``."""
    return np.stack([K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]], axis=-1)


def resize_intrinsics(K: np.ndarray, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> np.ndarray:
    """K for the same camera after resizing the image from ``old_hw`` to ``new_hw`` (aspect may change).

    With integer pixel centres a pixel coordinate maps as ``u' = (u + 0.5) * sx - 0.5``.
    """
    sy, sx = new_hw[0] / old_hw[0], new_hw[1] / old_hw[1]
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[..., 0, 0] *= sx
    K2[..., 1, 1] *= sy
    K2[..., 0, 2] = (K2[..., 0, 2] + 0.5) * sx - 0.5
    K2[..., 1, 2] = (K2[..., 1, 2] + 0.5) * sy - 0.5
    return K2


# --- rigid transforms


def make_rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 homogeneous transform(s) ``(..., 4, 4)`` from rotation ``(..., 3, 3)`` and translation ``(..., 3)``."""
    R, t = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64)
    T = np.zeros(R.shape[:-2] + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def invert_rigid(T: Array) -> Array:
    """Inverse of rigid transform(s) ``(..., 4, 4)`` without a general matrix inverse: ``[R^T, -R^T t]``."""
    xp = array_namespace(T)
    R = T[..., :3, :3]
    t = T[..., :3, 3:]
    Rt = _mT(R)
    out = xp.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -(Rt @ t)
    out[..., 3, 3] = 1.0
    return out


def transform_points(T: Array, X: Array) -> Array:
    """Apply 4x4 transform(s) ``T (..., 4, 4)`` to points ``X (..., N, 3)``: ``R X + t``."""
    R = T[..., :3, :3]
    t = T[..., None, :3, 3]
    return X @ _mT(R) + t


# --- projection


def project(X_cam: Array, K: Array) -> tuple[Array, Array]:
    """Camera-frame points ``(..., N, 3)`` metres -> pixels ``uv (..., N, 2)`` and planar depth ``z (..., N)``.

    Points behind the camera (z <= 0) give non-finite or mirrored pixels; callers mask them with ``z > 0``.
    """
    z = X_cam[..., 2]
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # z == 0 is documented above, not worth a warning
        u = fx * X_cam[..., 0] / z + cx
        v = fy * X_cam[..., 1] / z + cy
    return array_namespace(X_cam).stack([u, v], -1), z


def unproject(uv: Array, z: Array, K: Array) -> Array:
    """Pixels ``uv (..., N, 2)`` with planar depth ``z (..., N)`` metres -> camera-frame points ``(..., N, 3)``."""
    fx, fy = K[..., 0, 0, None], K[..., 1, 1, None]
    cx, cy = K[..., 0, 2, None], K[..., 1, 2, None]
    x = (uv[..., 0] - cx) * z / fx
    y = (uv[..., 1] - cy) * z / fy
    return array_namespace(uv).stack([x, y, z], -1)


def world_to_pixels(X_world: Array, K: Array, w2c: Array) -> Array:
    """World points ``(..., N, 3)`` -> ``uvz (..., N, 3)``: pixels and planar depth in the camera (K, w2c)."""
    uv, z = project(transform_points(w2c, X_world), K)
    return array_namespace(uv).concatenate([uv, z[..., None]], -1)


def pixels_to_world(uvz: Array, K: Array, w2c: Array) -> Array:
    """``uvz (..., N, 3)`` in the camera (K, w2c) -> world points ``(..., N, 3)``."""
    return transform_points(invert_rigid(w2c), unproject(uvz[..., :2], uvz[..., 2], K))


# --- other conventions


OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])  # flips camera y and z: OpenGL/MuJoCo (y up, looks along -z) <-> OpenCV


def w2c_from_opengl_pose(cam_pos: np.ndarray, cam_rot: np.ndarray) -> np.ndarray:
    """w2c (OpenCV axes) from an OpenGL/MuJoCo camera pose: position ``(3,)`` and camera-to-world rotation ``(3, 3)``
    whose columns are the camera's x (right), y (up) and z (backwards) axes in world coordinates.

    MuJoCo: ``w2c_from_opengl_pose(data.cam_xpos[i], data.cam_xmat[i].reshape(3, 3))``.
    """
    R_wc = np.asarray(cam_rot, dtype=np.float64).reshape(3, 3) @ OPENGL_TO_OPENCV  # camera (OpenCV) -> world
    R = R_wc.T
    return make_rigid(R, -R @ np.asarray(cam_pos, dtype=np.float64))


def opengl_rotation_from_w2c(w2c: np.ndarray) -> np.ndarray:
    """The camera-to-world rotation in OpenGL/MuJoCo axes (x right, y up, z backwards) of an OpenCV w2c."""
    return w2c[:3, :3].T @ OPENGL_TO_OPENCV


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """w2c (OpenCV axes) of a camera at ``eye`` looking at ``target`` with world ``up`` pointing up in the image."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: the viewing direction is parallel to 'up'; pass another up vector")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # image down
    R = np.stack([x, y, z])  # rows: camera axes in world
    return make_rigid(R, -R @ eye)


# --- alignment


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ≈ s R src + t`` between corresponding points ``(N, 3)`` (Umeyama 1991).

    Returns ``(s, R, t)``; ``s = 1`` when ``with_scale`` is False (then this is Kabsch). Needs N >= 3 points that
    are not collinear.
    """
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"umeyama needs two (N, 3) arrays with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    A, B = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(B.T @ A / len(src))
    D = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[2, 2] = -1.0  # reflection -> proper rotation
    R = U @ D @ Vt
    var_s = (A**2).sum() / len(src)
    s = float(np.trace(np.diag(S) @ D) / var_s) if with_scale else 1.0
    return s, R, mu_d - s * R @ mu_s


def kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid fit ``dst ≈ R src + t`` between corresponding points ``(N, 3)``; returns ``(R, t)``."""
    _, R, t = umeyama(src, dst, with_scale=False)
    return R, t
