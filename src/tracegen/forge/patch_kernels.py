"""Compiled kernels of the patch tracker (:mod:`tracegen.forge.flow`): template patches sampled from many frames at
once, their depth masks, the Lucas-Kanade refinement and the patch residual, one point at a time.

Why: the array code they replace built a dozen ``(P, M)`` temporaries per iteration and, in re-acquisition, made one
round of calls per template frame (thousands per clip); here every sample stays in registers and one call serves
every frame. They reproduce that array code *bit for bit*, so the tracks do not change
(``tests/forge/test_patch_kernels.py`` compares them with it, on the OpenCV and NumPy installed):

* :func:`bilinear` is OpenCV's ``remap`` (``INTER_LINEAR``, ``BORDER_REPLICATE``) on float32 images: the coordinate
  is rounded to 1/32 pixel, its weights come from float32 fractions, the four products are added in OpenCV's order;
* :func:`row_sum` is NumPy's float32 pairwise summation (what ``a.sum(axis=-1)`` does on a contiguous row);
* every other step keeps NumPy's float32 arithmetic and its order (a Python float beside a float32 array is float32).

Positions are ``(u, v)`` pixels with integer pixel centres; patches are ``(P, M)`` with M samples each.
"""

from __future__ import annotations

import numba
import numpy as np

f32 = np.float32
TAB = 32  # OpenCV's INTER_TAB_SIZE: bilinear coordinates are rounded to 1/32 pixel


@numba.njit(cache=True, nogil=True)
def taps(H, W, x, y):  # pragma: no cover
    """The four pixels (rows r0, r1, columns c0, c1, border replicated) and weights ``w00, w01, w10, w11`` of
    OpenCV's bilinear sample of an ``(H, W)`` image at float32 ``(x, y)``."""
    X, Y = int(np.rint(x * f32(TAB))), int(np.rint(y * f32(TAB)))  # exact: TAB is a power of two
    x0, y0 = X >> 5, Y >> 5  # floor division by TAB
    ax, ay = f32(X & (TAB - 1)) / f32(TAB), f32(Y & (TAB - 1)) / f32(TAB)
    c0, c1 = min(max(x0, 0), W - 1), min(max(x0 + 1, 0), W - 1)
    r0, r1 = min(max(y0, 0), H - 1), min(max(y0 + 1, 0), H - 1)
    return r0, r1, c0, c1, (f32(1) - ay) * (f32(1) - ax), (f32(1) - ay) * ax, ay * (f32(1) - ax), ay * ax


@numba.njit(cache=True, nogil=True)
def at(image, tp):  # pragma: no cover
    """The float32 sample of ``image`` at the taps ``tp`` (:func:`taps`), adding as OpenCV does."""
    r0, r1, c0, c1, w00, w01, w10, w11 = tp
    return ((image[r0, c0] * w00 + image[r0, c1] * w01) + image[r1, c0] * w10) + image[r1, c1] * w11


@numba.njit(cache=True, nogil=True)
def bilinear(image, x, y):  # pragma: no cover
    """The float32 sample of ``image (H, W)`` at float32 ``(x, y)``, as ``cv2.remap`` computes it."""
    return at(image, taps(image.shape[0], image.shape[1], x, y))


@numba.njit(cache=True, nogil=True)
def row_sum(a):  # pragma: no cover
    """The float32 sum of ``a (n,)`` in NumPy's pairwise order (blocks of 8 partial sums, halves above 128)."""
    n = len(a)
    if n < 8:
        s = f32(0)
        for i in range(n):
            s += a[i]
        return s
    if n > 128:
        half = n // 2
        half -= half % 8
        return row_sum(a[:half]) + row_sum(a[half:])
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0, r1, r2, r3 = r0 + a[i], r1 + a[i + 1], r2 + a[i + 2], r3 + a[i + 3]
        r4, r5, r6, r7 = r4 + a[i + 4], r5 + a[i + 5], r6 + a[i + 6], r7 + a[i + 7]
        i += 8
    s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        s += a[i]
        i += 1
    return s


@numba.njit(cache=True, nogil=True)
def gather_patches(stack, slots, p, ox, oy, T, gx, gy):  # pragma: no cover
    """Fill ``T, gx, gy (P, M)`` with the intensity and gradients at ``p (P, 2)`` plus the offsets ``ox, oy (M,)``
    in the prepared images ``stack[slots[i]]`` (``stack (S, 3, H, W)``: intensity, x and y derivatives)."""
    H, W = stack.shape[2:]
    for i in range(len(p)):
        image, dx, dy = stack[slots[i], 0], stack[slots[i], 1], stack[slots[i], 2]
        for m in range(len(ox)):
            tp = taps(H, W, f32(p[i, 0] + ox[m]), f32(p[i, 1] + oy[m]))
            T[i, m], gx[i, m], gy[i, m] = at(image, tp), at(dx, tp), at(dy, tp)


@numba.njit(cache=True, nogil=True)
def depth_mask(depth, frames, p, ox, oy, abs_tol, rel_tol, out):  # pragma: no cover
    """``out (P, M)``: True where the pixel nearest to ``p + (ox, oy)`` in frame ``frames[i]`` of ``depth (T, H,
    W)`` has a depth within ``abs_tol + rel_tol * z`` of the depth z at the pixel nearest to ``p`` (NumPy's
    rounding: half to even; positions clipped to the image)."""
    H, W = depth.shape[1:]
    for i in range(len(p)):
        d = depth[frames[i]]
        u, v = min(max(p[i, 0], 0.0), W - 1.0), min(max(p[i, 1], 0.0), H - 1.0)
        zc = np.float64(d[int(np.rint(v)), int(np.rint(u))])
        tol = abs_tol + rel_tol * zc
        for m in range(len(ox)):
            c = int(min(max(np.rint(p[i, 0] + ox[m]), 0.0), W - 1.0))
            r = int(min(max(np.rint(p[i, 1] + oy[m]), 0.0), H - 1.0))
            z = d[r, c]
            out[i, m] = abs(z - zc) < tol and z > 0


@numba.njit(cache=True, nogil=True)
def _centred_residual(target, px, py, ox, oy, T, w, wsum, r, wr):  # pragma: no cover
    """``r (M,)``: target samples around ``(px, py)`` minus the template ``T (M,)``, their weighted mean (weights
    ``w (M,)`` summing to ``wsum``) removed; ``wr`` is a work buffer."""
    for m in range(len(ox)):
        r[m] = bilinear(target, f32(px + ox[m]), f32(py + oy[m])) - T[m]
        wr[m] = w[m] * r[m]
    mean = row_sum(wr) / wsum
    for m in range(len(ox)):
        r[m] -= mean


@numba.njit(cache=True, nogil=True)
def residuals(T, w, target, p, ox, oy, out):  # pragma: no cover
    """``out (P,)``: mean absolute difference of the patches ``T (P, M)`` (weights ``w``) to ``target`` around
    ``p (P, 2)``, the mean brightness difference removed."""
    M = len(ox)
    r, wr = np.empty(M, np.float32), np.empty(M, np.float32)
    for i in range(len(p)):
        wsum = max(row_sum(w[i]), f32(1e-6))
        _centred_residual(target, p[i, 0], p[i, 1], ox, oy, T[i], w[i], wsum, r, wr)
        for m in range(M):
            wr[m] = w[i, m] * abs(r[m])
        out[i] = row_sum(wr) / wsum


@numba.njit(cache=True, nogil=True)
def align_patches(T, gx, gy, w, target, p, ox, oy, iters, eps, textured, residual):  # pragma: no cover
    """Inverse-compositional translational Lucas-Kanade with a brightness offset (see :func:`flow.align`), in
    place: ``p (P, 2)`` float64 from the initial to the final position, ``textured (P,)`` and ``residual (P,)``
    (left untouched where the patch has too little texture)."""
    M, eps = len(ox), f32(eps)
    wcx, wcy, r = np.empty(M, np.float32), np.empty(M, np.float32), np.empty(M, np.float32)
    a, b, c = np.empty(M, np.float32), np.empty(M, np.float32), np.empty(M, np.float32)  # work buffers
    for i in range(len(p)):
        wi = w[i]
        wsum = max(row_sum(wi), f32(1e-6))
        hxx, hxy, hyy = _normal(wi, gx[i], gy[i], wsum, wcx, wcy, a, b, c)
        det = hxx * hyy - hxy * hxy
        textured[i] = det > f32(1e-3) * ((hxx + hyy) * (hxx + hyy)) + f32(1e-4) * (wsum * wsum)
        if not textured[i]:
            continue
        for _ in range(iters):
            _centred_residual(target, p[i, 0], p[i, 1], ox, oy, T[i], wi, wsum, r, a)
            for m in range(M):
                a[m], b[m], c[m] = wcx[m] * r[m], wcy[m] * r[m], wi[m] * abs(r[m])
            bx, by = row_sum(a), row_sum(b)
            dx = min(max((hyy * bx - hxy * by) / det, f32(-3)), f32(3))
            dy = min(max((hxx * by - hxy * bx) / det, f32(-3)), f32(3))
            p[i, 0] -= dx
            p[i, 1] -= dy
            residual[i] = row_sum(c) / wsum
            if not abs(dx) + abs(dy) > eps:
                break


@numba.njit(cache=True, nogil=True)
def _normal(w, gx, gy, wsum, wcx, wcy, a, b, c):  # pragma: no cover
    """The weighted mean-free gradients ``wcx = w * (gx - mean), wcy (M,)`` of one patch (the offset term removes
    the mean gradient) and its normal matrix ``hxx, hxy, hyy``; ``a, b, c`` are work buffers."""
    M = len(w)
    for m in range(M):
        a[m], b[m] = w[m] * gx[m], w[m] * gy[m]
    mx, my = row_sum(a) / wsum, row_sum(b) / wsum
    for m in range(M):
        cx, cy = gx[m] - mx, gy[m] - my
        wcx[m], wcy[m] = w[m] * cx, w[m] * cy
        a[m], b[m], c[m] = w[m] * (cx * cx), wcx[m] * cy, w[m] * (cy * cy)  # NumPy's order of w * gx**2 etc.
    return row_sum(a), row_sum(b), row_sum(c)
