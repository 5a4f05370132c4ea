"""Low-level motion estimation shared by the trackers: image pyramids of one clip, dense DIS flow, a depth-gated
Lucas-Kanade refinement with a brightness offset, and depth sampling that does not blend across depth edges.

All positions are ``(u, v)`` pixels with integer pixel centres (:mod:`tracegen.geometry`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


def remap(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image (H, W)`` at float pixels ``u, v`` (any equal 2D shape; borders replicate)."""
    return cv2.remap(image, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def sample_points(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples ``(P, C)`` or ``(P,)`` of ``image (H, W[, C])`` at points ``uv (P, 2)``."""
    if len(uv) == 0:
        return np.zeros((0,) + image.shape[2:], image.dtype)
    out = remap(image, uv[None, :, 0], uv[None, :, 1])[0]
    return out


class ClipImages:
    """Grey images of a clip prepared for tracking, and dense flow between consecutive frames, made on demand.

    ``gray[t]`` is uint8 ``(H, W)``; ``smooth(t)`` a float32 slightly blurred copy with its gradients.
    """

    def __init__(self, rgb: np.ndarray, blur: float = 0.7):
        self.gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])  # (T, H, W) uint8
        self.blur = blur
        self._smooth: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._flow: dict[tuple[int, int], np.ndarray] = {}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.gray.shape[1]), int(self.gray.shape[2])

    def smooth(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(I, Ix, Iy)`` float32 of frame t: Gaussian-blurred intensity and its x / y derivatives."""
        if t not in self._smooth:
            image = cv2.GaussianBlur(self.gray[t].astype(np.float32), (0, 0), self.blur)
            gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
            gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
            self._smooth[t] = (image, gx, gy)
            for old in [k for k in self._smooth if k < t - 160]:  # keep memory bounded on long clips
                del self._smooth[old]
        return self._smooth[t]

    def flow(self, a: int, b: int) -> np.ndarray:
        """Dense flow ``(H, W, 2)`` float32 from frame a to frame b (DIS, cached)."""
        if (a, b) not in self._flow:
            self._flow[(a, b)] = self._dis.calc(self.gray[a], self.gray[b], None)
            for old in [k for k in self._flow if max(k) < min(a, b) - 2]:
                del self._flow[old]
        return self._flow[(a, b)]

    def forget(self, before: int) -> None:
        """Drop cached data of frames before ``before``."""
        for k in [k for k in self._smooth if k < before]:
            del self._smooth[k]


@functools.cache
def patch_offsets(radius: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets ``ox, oy (M,)`` of a patch spanning ``2r + 1`` pixels, sampled every ``stride`` pixels, and its
    Gaussian weights ``(M,)``."""
    o = np.arange(-radius, radius + 1, stride, dtype=np.float32)
    oy, ox = np.meshgrid(o, o, indexing="ij")
    ox, oy = ox.ravel(), oy.ravel()
    return ox, oy, np.exp(-(ox**2 + oy**2) / (2 * (0.8 * radius + 0.5) ** 2)).astype(np.float32)


@dataclass
class Patches:
    """Template patches of P points, ready for :func:`align`: samples ``T``, gradients ``gx, gy`` and weights
    ``w`` (all ``(P, M)``)."""

    T: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    w: np.ndarray
    radius: int
    stride: int

    def __post_init__(self) -> None:
        self.wsum = np.maximum(self.w.sum(1), 1e-6)
        self._normal: tuple | None = None

    def normal(self) -> tuple[np.ndarray, ...]:
        """Mean-free gradients and the 2 x 2 normal matrices ``(gx, gy, hxx, hxy, hyy, det, textured)`` (cached)."""
        if self._normal is None:
            w, ws = self.w, self.wsum[:, None]
            gx = self.gx - (w * self.gx).sum(1, keepdims=True) / ws  # the offset term removes the mean gradient
            gy = self.gy - (w * self.gy).sum(1, keepdims=True) / ws
            hxx, hxy, hyy = (w * gx**2).sum(1), (w * gx * gy).sum(1), (w * gy**2).sum(1)
            det = hxx * hyy - hxy**2
            textured = det > 1e-3 * (hxx + hyy) ** 2 + 1e-4 * self.wsum**2
            self._normal = (gx, gy, hxx, hxy, hyy, np.where(textured, det, 1.0), textured)
        return self._normal

    def __len__(self) -> int:
        return len(self.T)

    def subset(self, keep: np.ndarray) -> Patches:
        return Patches(self.T[keep], self.gx[keep], self.gy[keep], self.w[keep], self.radius, self.stride)

    def residual(self, target: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``(P,)`` mean absolute grey-level difference to the patches around ``p (P, 2)`` in ``target`` (weighted,
        mean brightness difference removed): how well each template matches there."""
        if not len(p):
            return np.zeros(0, np.float32)
        ox, oy, _ = patch_offsets(self.radius, self.stride)
        r = remap(target, p[:, :1] + ox, p[:, 1:] + oy) - self.T
        r -= (self.w * r).sum(1, keepdims=True) / self.wsum[:, None]
        return (self.w * np.abs(r)).sum(1) / self.wsum

    @classmethod
    def concat(cls, parts: list[Patches]) -> Patches:
        cat = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("T", "gx", "gy", "w")}
        return cls(**cat, radius=parts[0].radius, stride=parts[0].stride)


def template_patches(template: tuple[np.ndarray, np.ndarray, np.ndarray], p: np.ndarray, radius: int = 5,
                     mask: np.ndarray | None = None, stride: int = 1) -> Patches:
    """The patches around ``p (P, 2)`` in a prepared template image ``(I, Ix, Iy)``; ``mask (P, M)`` keeps only
    some of their pixels (e.g. those on the centre's surface)."""
    image, gx_image, gy_image = template
    ox, oy, gauss = patch_offsets(radius, stride)
    u, v = p[:, :1] + ox, p[:, 1:] + oy  # (P, M)
    w = gauss[None] * (mask.astype(np.float32) if mask is not None else np.ones((len(p), 1), np.float32))
    return Patches(remap(image, u, v), remap(gx_image, u, v), remap(gy_image, u, v), w, radius, stride)


def align(patches: Patches, target: np.ndarray, p_init: np.ndarray, iters: int = 6, eps: float = 0.01
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translational inverse-compositional Lucas-Kanade of template ``patches`` into ``target``, from ``p_init``.

    Patches are Gaussian-weighted (and masked) and compared after removing their mean brightness difference (shading
    changes as surfaces turn). Returns the positions ``(P, 2)``, whether each patch had enough texture ``(P,)`` and
    the final mean absolute residual in grey levels ``(P,)``."""
    P = len(patches)
    p = p_init.astype(np.float64).copy()
    residual = np.full(P, np.inf, np.float32)
    if P == 0:
        return p, np.zeros(0, bool), residual
    ox, oy, _ = patch_offsets(patches.radius, patches.stride)
    gx, gy, hxx, hxy, hyy, det, textured = patches.normal()
    todo = np.flatnonzero(textured)
    for _ in range(iters):
        if len(todo) == 0:
            break
        pt = p[todo]
        r = remap(target, pt[:, :1] + ox, pt[:, 1:] + oy) - patches.T[todo]
        wt, ws = patches.w[todo], patches.wsum[todo]
        r -= (wt * r).sum(1, keepdims=True) / ws[:, None]
        bx, by = (wt * gx[todo] * r).sum(1), (wt * gy[todo] * r).sum(1)
        dx = (hyy[todo] * bx - hxy[todo] * by) / det[todo]
        dy = (hxx[todo] * by - hxy[todo] * bx) / det[todo]
        step = np.clip(np.stack([dx, dy], 1), -3.0, 3.0)
        p[todo] -= step
        residual[todo] = (wt * np.abs(r)).sum(1) / ws
        todo = todo[np.abs(step).sum(1) > eps]
    return p, textured, residual


def refine_lk(template: tuple[np.ndarray, np.ndarray, np.ndarray], target: np.ndarray, p_template: np.ndarray,
              p_init: np.ndarray, radius: int = 5, iters: int = 6, mask: np.ndarray | None = None, stride: int = 1
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`align` of the patches around ``p_template (P, 2)`` in ``template`` into ``target`` from ``p_init``."""
    return align(template_patches(template, p_template, radius, mask, stride), target, p_init, iters)


def patch_residual(template: tuple[np.ndarray, np.ndarray, np.ndarray], target: np.ndarray, p_template: np.ndarray,
                   p_target: np.ndarray, radius: int = 5, mask: np.ndarray | None = None, stride: int = 1
                   ) -> np.ndarray:
    """``(P,)`` how well the patches around ``p_template`` match around ``p_target`` in ``target``
    (:meth:`Patches.residual`): the residual :func:`align` would start from."""
    return template_patches(template, p_template, radius, mask, stride).residual(target, p_target)


def depth_mask(depth: np.ndarray, p: np.ndarray, radius: int, abs_tol: float, rel_tol: float, stride: int = 1
               ) -> np.ndarray:
    """``(P, M)`` True where the patch pixel around ``p (P, 2)`` lies on the centre's surface (similar depth)."""
    H, W = depth.shape
    ox, oy, _ = patch_offsets(radius, stride)
    c = np.clip(np.rint(p[:, :1] + ox), 0, W - 1).astype(np.int64)
    r = np.clip(np.rint(p[:, 1:] + oy), 0, H - 1).astype(np.int64)
    z = depth[r, c]
    zc = nearest_depth(depth, np.clip(p, 0, [W - 1, H - 1]))
    return (np.abs(z - zc[:, None]) < abs_tol + rel_tol * zc[:, None]) & (z > 0)


def nearest_depth(depth: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``(P,)`` depth of the pixel nearest to each point ``p (P, 2)`` (0 outside the image)."""
    H, W = depth.shape
    c, r = np.rint(p[:, 0]), np.rint(p[:, 1])
    inside = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    out = np.zeros(len(p), np.float64)
    out[inside] = depth[r[inside].astype(np.int64), c[inside].astype(np.int64)]
    return out


def consistent_depth(depth: np.ndarray, p: np.ndarray, z_ref: np.ndarray, abs_tol: float,
                     rel_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth at ``p (P, 2)`` interpolated only from the 2 x 2 neighbours that agree with ``z_ref (P,)``.

    Bilinear interpolation across a depth edge invents depths between foreground and background; here
    neighbours off the expected surface get no weight. Returns ``(z (P,), ok (P,))``; ``ok`` is False when the
    agreeing neighbours hold less than half the bilinear weight (the point is occluded or has slid off its surface),
    and z is then the nearest pixel's depth.
    """
    H, W = depth.shape
    u = np.clip(p[:, 0], 0, W - 1)
    v = np.clip(p[:, 1], 0, H - 1)
    u0, v0 = np.minimum(np.floor(u), W - 2).astype(np.int64), np.minimum(np.floor(v), H - 2).astype(np.int64)
    fu, fv = u - u0, v - v0
    d = np.stack([depth[v0, u0], depth[v0, u0 + 1], depth[v0 + 1, u0], depth[v0 + 1, u0 + 1]], 1)  # (P, 4)
    w = np.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], 1)
    agree = (np.abs(d - z_ref[:, None]) < abs_tol + rel_tol * z_ref[:, None]) & (d > 0)
    support = (w * agree).sum(1)  # bilinear weight of the agreeing neighbours
    ok = support >= 0.5  # the point's own pixel is on the surface, not just a neighbour across an edge
    z = np.where(ok, (w * agree * d).sum(1) / np.maximum(support, 1e-12), nearest_depth(depth, p))
    return z, ok
