"""The forge tracker's geometric step: the surface around a moving point, lifted once from its query frame's depth,
is moved rigidly (6 DoF) until it fits each later frame's depth.

Why: photometric tracking of smoothly shaded, untextured parts (robot links) follows the *shading*, which stays with
the world's lights as a part turns, and falls short of the true motion (about 9 % per step on the Meta-World
renders); chained over a window that is the tracker's error. The depth render moves with the surface.

:func:`surface_patches` lifts the surfaces (once per track, compiled); :func:`align_surface` fits them to a frame. The
fit is a small Gauss-Newton problem per point (6 unknowns, ~100-400 depth samples), thousands of points per frame:
it runs as one compiled loop (numba), which keeps every sample in registers instead of building dozens of
``(P, M)`` temporaries as array code would (~50x faster here). All positions are ``(u, v)`` pixels with integer
pixel centres, depths planar metres (:mod:`tracegen.geometry`).
"""

from __future__ import annotations

import numba
import numpy as np

from tracegen.forge.flow import patch_offsets
from tracegen.small_systems import solve_into


def surface_patches(
    depth: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    p: np.ndarray,
    z: np.ndarray,
    radius: int,
    stride: int,
    abs_tol: float,
    rel_tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The surface around points ``p (P, 2)`` (planar depth ``z (P,)``) as 3D samples relative to the point:
    ``offsets (P, M, 3)`` float32 in world axes and ``mask (P, M)`` (on the point's surface: similar depth)."""
    ox, oy, _ = patch_offsets(radius, stride)
    offsets, mask = np.empty((len(p), len(ox), 3), np.float32), np.empty((len(p), len(ox)), np.bool_)
    _lift_surfaces(
        np.ascontiguousarray(depth),
        np.asarray(K, np.float64),
        np.asarray(c2w, np.float64),
        np.ascontiguousarray(p, np.float64),
        np.ascontiguousarray(z, np.float64),
        ox,
        oy,
        float(abs_tol),
        float(rel_tol),
        offsets,
        mask,
    )
    return offsets, mask


def align_surface(
    depth: np.ndarray,
    K: np.ndarray,
    w2c: np.ndarray,
    offsets: np.ndarray,
    mask: np.ndarray,
    R: np.ndarray,
    centre: np.ndarray,
    p_init: np.ndarray,
    prior: float = 2e-4,
    rot_damping: float = 2e-3,
    iters: int = 4,
    abs_tol: float = 0.01,
    rel_tol: float = 0.02,
    huber: float = 0.002,
    min_pixels: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit each point's lifted surface rigidly to this frame's depth.

    The surface of point i is ``centre_i + R_i @ offsets_i`` (world). Gauss-Newton steps on the projective depth
    residual ``depth(pi(Y)) - z(Y)`` (bilinear depth and its derivative, used only where all 2 x 2 neighbours lie on
    the surface, so nothing is interpolated across a depth edge; Huber weights) update ``R, centre`` from their
    previous values (model-to-frame: no drift where the surface constrains the motion). What the surface leaves free
    (sliding along a plane or a cylinder) is held by a weak prior, ``prior`` metres of depth residual per pixel,
    towards the photometric position ``p_init``, and rotations are damped by ``rot_damping``. A point stops early
    once its step is below a micrometre and a microradian.

    Args:
        depth: ``(H, W)`` planar depth of this frame; K ``(3, 3)`` and w2c ``(4, 4)`` its camera.
        offsets, mask: ``(P, M, 3)`` and ``(P, M)`` from :func:`surface_patches`.
        R, centre: ``(P, 3, 3)`` and ``(P, 3)``: each surface's pose now (from the previous frame).
        p_init: ``(P, 2)`` the photometric estimate in this frame.
    Returns:
        ``R (P, 3, 3)``, ``centre (P, 3)``, the point's pixel ``(P, 2)``, and ``ok (P,)``: False where fewer than
        ``min_pixels`` surface pixels took part (the inputs are returned unchanged there, and p_init as the pixel).
    """
    P = len(centre)
    R_out, centre_out, p_out = R.astype(np.float64).copy(), centre.astype(np.float64).copy(), p_init.astype(np.float64)
    ok = np.zeros(P, np.bool_)
    if P == 0:
        return R_out, centre_out, p_out.copy(), ok
    p_out = p_out.copy()
    params = np.array([prior, rot_damping, abs_tol, rel_tol, huber], np.float64)
    _fit_surfaces(
        np.ascontiguousarray(depth, np.float32),
        np.asarray(K, np.float64),
        np.asarray(w2c, np.float64),
        np.ascontiguousarray(offsets, np.float32),
        np.ascontiguousarray(mask, np.bool_),
        params,
        int(iters),
        int(min_pixels),
        R_out,
        centre_out,
        p_out,
        ok,
    )
    return R_out, centre_out, p_out, ok


# ---------------------------------------------------------------------------------------------- the compiled kernels
@numba.njit(cache=True, nogil=True)
def _lift_surfaces(depth, K, c2w, p, z, ox, oy, abs_tol, rel_tol, offsets, mask):  # pragma: no cover
    """Fill ``offsets (P, M, 3)`` and ``mask (P, M)`` of :func:`surface_patches`: the pixel nearest to each sample
    ``p + (ox, oy)`` lifted with its depth, relative to the point lifted with ``z`` (exactly: X(c, r, d) - X(p, z)),
    rotated into world axes."""
    H, W = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    for i in range(len(p)):
        px, py, zi = p[i, 0], p[i, 1], z[i]
        for m in range(len(ox)):
            c, r = int(np.rint(px + ox[m])), int(np.rint(py + oy[m]))
            inside = 0 <= c < W and 0 <= r < H
            c, r = min(max(c, 0), W - 1), min(max(r, 0), H - 1)  # outside: the border pixel (masked out)
            d = np.float64(depth[r, c])
            mask[i, m] = inside and d > 0 and abs(d - zi) < abs_tol + rel_tol * zi
            x = (c - px) * d / fx + (px - cx) * (d - zi) / fx  # camera axes
            y = (r - py) * d / fy + (py - cy) * (d - zi) / fy
            dz = d - zi
            for k in range(3):
                offsets[i, m, k] = x * c2w[k, 0] + y * c2w[k, 1] + dz * c2w[k, 2]


@numba.njit(cache=True, nogil=True)
def _fit_surfaces(depth, K, w2c, offsets, mask, params, iters, min_pixels, R, centre, p, ok):  # pragma: no cover
    """In place: ``R (P, 3, 3)``, ``centre (P, 3)``, ``p (P, 2)`` (photometric estimate in, fitted pixel out) and
    ``ok (P,)`` of :func:`align_surface`, one point at a time."""
    prior, rot_damping, abs_tol, rel_tol, huber = params[0], params[1], params[2], params[3], params[4]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    Rc, tc = w2c[:3, :3].copy(), w2c[:3, 3].copy()
    A, b, step, J, Jp = np.empty((6, 6)), np.empty(6), np.empty(6), np.empty(6), np.empty((2, 3))  # work buffers:
    # no allocation per point
    Rcam, rot, tmp, c = np.empty((3, 3)), np.empty((3, 3)), np.empty((3, 3)), np.empty(3)
    RcT = Rc.T.copy()
    for i in range(len(centre)):
        _matmul3(Rc, R[i], Rcam)  # surface axes in camera axes
        for k in range(3):  # the point in camera coordinates
            c[k] = Rc[k, 0] * centre[i, 0] + Rc[k, 1] * centre[i, 1] + Rc[k, 2] * centre[i, 2] + tc[k]
        zc = c[2] if c[2] > 1e-6 else 1.0
        c[0] += (p[i, 0] - (fx * c[0] / zc + cx)) * zc / fx  # start from the photometric position
        c[1] += (p[i, 1] - (fy * c[1] / zc + cy)) * zc / fy
        used = 0
        for _ in range(iters):
            used = _normal_equations(
                depth, fx, fy, cx, cy, offsets[i], mask[i], Rcam, c, abs_tol, rel_tol, huber, A, b, J
            )
            _add_priors(A, b, Jp, c, p[i], fx, fy, cx, cy, prior, rot_damping)
            solve_into(A, b, step)
            for k in range(3):
                c[k] -= step[k]
            _so3_exp(-step[3], -step[4], -step[5], rot)
            _matmul3(rot, Rcam, tmp)
            Rcam[:] = tmp
            if (
                max(abs(step[0]), abs(step[1]), abs(step[2])) < 1e-6
                and max(abs(step[3]), abs(step[4]), abs(step[5])) < 1e-6
            ):
                break
        zc = c[2] if c[2] > 1e-6 else 1.0
        u, v = fx * c[0] / zc + cx, fy * c[1] / zc + cy
        good = used >= min_pixels and c[2] > 1e-6 and np.isfinite(u) and np.isfinite(v) and np.isfinite(Rcam).all()
        ok[i] = good
        if good:
            _matmul3(RcT, Rcam, R[i])
            for k in range(3):
                centre[i, k] = RcT[k, 0] * (c[0] - tc[0]) + RcT[k, 1] * (c[1] - tc[1]) + RcT[k, 2] * (c[2] - tc[2])
            p[i, 0], p[i, 1] = u, v


@numba.njit(cache=True, nogil=True)
def _normal_equations(
    depth, fx, fy, cx, cy, offsets, mask, Rcam, c, abs_tol, rel_tol, huber, A, b, J
):  # pragma: no cover
    """Fill ``A (6, 6)``, ``b (6,)`` with one point's Gauss-Newton normal equations of the depth residual (unknowns:
    translation, then rotation about the point, camera axes; ``J (6,)`` is a work buffer); returns how many surface
    samples took part."""
    H, W = depth.shape
    A[:] = 0.0
    b[:] = 0.0
    used = 0
    for m in range(len(offsets)):
        if not mask[m]:
            continue
        o0, o1, o2 = np.float64(offsets[m, 0]), np.float64(offsets[m, 1]), np.float64(offsets[m, 2])
        D0 = Rcam[0, 0] * o0 + Rcam[0, 1] * o1 + Rcam[0, 2] * o2
        D1 = Rcam[1, 0] * o0 + Rcam[1, 1] * o1 + Rcam[1, 2] * o2
        D2 = Rcam[2, 0] * o0 + Rcam[2, 1] * o1 + Rcam[2, 2] * o2
        Y0, Y1, z = c[0] + D0, c[1] + D1, c[2] + D2
        if z <= 1e-6:
            continue
        u, v = fx * Y0 / z + cx, fy * Y1 / z + cy
        if not (0.0 <= u <= W - 1 and 0.0 <= v <= H - 1):
            continue
        u0, v0 = min(int(u), W - 2), min(int(v), H - 2)
        fu, fv = u - u0, v - v0
        d00, d01 = np.float64(depth[v0, u0]), np.float64(depth[v0, u0 + 1])
        d10, d11 = np.float64(depth[v0 + 1, u0]), np.float64(depth[v0 + 1, u0 + 1])
        tol = abs_tol + rel_tol * z
        if not (
            d00 > 0
            and d01 > 0
            and d10 > 0
            and d11 > 0
            and abs(d00 - z) < tol
            and abs(d01 - z) < tol
            and abs(d10 - z) < tol
            and abs(d11 - z) < tol
        ):
            continue  # all four neighbours on the surface: no interpolation across edges
        used += 1
        res = (1 - fu) * (1 - fv) * d00 + fu * (1 - fv) * d01 + (1 - fu) * fv * d10 + fu * fv * d11 - z
        gu = (1 - fv) * (d01 - d00) + fv * (d11 - d10)  # derivatives of the bilinear depth
        gv = (1 - fu) * (d10 - d00) + fu * (d11 - d01)
        a = abs(res)
        wt = 1.0 if a < huber else huber / max(a, 1e-12)
        J[0], J[1] = gu * fx / z, gv * fy / z
        J[2] = -(gu * fx * Y0 + gv * fy * Y1) / (z * z) - 1.0
        J[3] = D1 * J[2] - D2 * J[1]  # D x J: a rotation about the point
        J[4] = D2 * J[0] - D0 * J[2]
        J[5] = D0 * J[1] - D1 * J[0]
        for r in range(6):
            wj = wt * J[r]
            b[r] += wj * res
            for k in range(r, 6):
                A[r, k] += wj * J[k]
    for r in range(6):
        for k in range(r):
            A[r, k] = A[k, r]
    return used


@numba.njit(cache=True, nogil=True)
def _add_priors(A, b, Jp, c, p_photo, fx, fy, cx, cy, prior, rot_damping):  # pragma: no cover
    """The weak pull of the point's projection towards the photometric pixel ``p_photo (2,)``, and rotation damping."""
    zc = c[2] if c[2] > 1e-6 else 1.0
    Jp[:] = 0.0
    Jp[0, 0], Jp[0, 2] = fx / zc, -fx * c[0] / zc**2
    Jp[1, 1], Jp[1, 2] = fy / zc, -fy * c[1] / zc**2
    rp0, rp1 = fx * c[0] / zc + cx - p_photo[0], fy * c[1] / zc + cy - p_photo[1]
    w = prior * prior
    for r in range(3):
        b[r] += w * (Jp[0, r] * rp0 + Jp[1, r] * rp1)
        for k in range(3):
            A[r, k] += w * (Jp[0, r] * Jp[0, k] + Jp[1, r] * Jp[1, k])
        A[r, r] += 1e-12
        A[3 + r, 3 + r] += rot_damping * rot_damping


@numba.njit(cache=True, nogil=True)
def _so3_exp(w0, w1, w2, out):  # pragma: no cover
    """``out (3, 3)``: the rotation matrix of the rotation vector ``(w0, w1, w2)`` (Rodrigues)."""
    th = np.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
    if th < 1e-9:
        a, b = 1.0, 0.5
    else:
        a, b = np.sin(th) / th, (1 - np.cos(th)) / th**2
    # I + a [w]x + b [w]x^2, with [w]x^2 = w w^T - |w|^2 I
    out[0, 0] = 1.0 + b * (w0 * w0 - th * th)
    out[1, 1] = 1.0 + b * (w1 * w1 - th * th)
    out[2, 2] = 1.0 + b * (w2 * w2 - th * th)
    out[0, 1], out[1, 0] = -a * w2 + b * w0 * w1, a * w2 + b * w0 * w1
    out[0, 2], out[2, 0] = a * w1 + b * w0 * w2, -a * w1 + b * w0 * w2
    out[1, 2], out[2, 1] = -a * w0 + b * w1 * w2, a * w0 + b * w1 * w2


@numba.njit(cache=True, nogil=True)
def _matmul3(a, b, out):  # pragma: no cover
    """``out = a @ b`` for ``(3, 3)`` matrices (out must not be a or b)."""
    for r in range(3):
        for k in range(3):
            out[r, k] = a[r, 0] * b[0, k] + a[r, 1] * b[1, k] + a[r, 2] * b[2, k]
