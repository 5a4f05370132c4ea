"""Low-level motion estimation shared by the trackers: image pyramids of one clip, dense DIS flow, a depth-gated
Lucas-Kanade refinement with a brightness offset, and depth sampling that does not blend across depth edges.

All positions are ``(u, v)`` pixels with integer pixel centres (:mod:`tracegen.geometry`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from tracegen.forge import patch_kernels as kernels


def remap(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image (H, W)`` at float pixels ``u, v`` (any equal 2D shape; borders replicate)."""
    return cv2.remap(
        image, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def sample_points(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear samples ``(P, C)`` or ``(P,)`` of ``image (H, W[, C])`` at points ``uv (P, 2)``."""
    if len(uv) == 0:
        return np.zeros((0,) + image.shape[2:], image.dtype)
    out = remap(image, uv[None, :, 0], uv[None, :, 1])[0]
    return out


class ClipImages:
    """Grey images of a clip prepared for tracking, and dense flow between consecutive frames, made on demand.

    ``gray[t]`` is uint8 ``(H, W)``; ``smooth(t)`` a float32 slightly blurred copy with its gradients. Prepared
    frames live in ``keep`` slots (frame t in slot ``t % keep``): any ``keep`` consecutive frames can be used
    together (:meth:`prepared`), older ones are made again if asked for.
    """

    def __init__(self, rgb: np.ndarray, blur: float = 0.7, keep: int = 160):
        self.gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])  # (T, H, W) uint8
        self.blur = blur
        self.keep = max(1, min(keep, len(self.gray)))
        self._stack: np.ndarray | None = None  # (keep, 3, H, W) per slot: intensity, d/dx, d/dy (made on first use)
        self._slot_frame = np.full(self.keep, -1, np.int64)  # the frame each slot holds
        self._flow: dict[tuple[int, int], np.ndarray] = {}
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.gray.shape[1]), int(self.gray.shape[2])

    def _storage(self) -> np.ndarray:
        if self._stack is None:
            self._stack = np.empty((self.keep, 3) + self.shape, np.float32)
        return self._stack

    def _slot(self, t: int) -> int:
        """The slot of frame t, prepared: Gaussian-blurred intensity and its x / y derivatives."""
        slot, stack = t % self.keep, self._storage()
        if self._slot_frame[slot] != t:
            image = cv2.GaussianBlur(self.gray[t].astype(np.float32), (0, 0), self.blur)
            stack[slot, 0] = image
            stack[slot, 1] = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
            stack[slot, 2] = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
            self._slot_frame[slot] = t
        return slot

    def smooth(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(I, Ix, Iy)`` float32 ``(H, W)`` of frame t (views: valid until ``keep`` frames later are prepared)."""
        slot = self._slot(t)
        image, gx, gy = self._storage()[slot]
        return image, gx, gy

    def prepared(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The prepared images ``(S, 3, H, W)`` and the slot ``(P,)`` of each of ``frames (P,)`` (they must
        span fewer than ``keep`` frames)."""
        frames = np.asarray(frames, np.int64)
        if len(frames) and frames.max() - frames.min() >= self.keep:
            raise ValueError(f"frames {frames.min()}..{frames.max()} do not fit {self.keep} slots")
        for f in np.unique(frames):
            self._slot(int(f))
        return self._storage(), frames % self.keep

    def flow(self, a: int, b: int) -> np.ndarray:
        """Dense flow ``(H, W, 2)`` float32 from frame a to frame b (DIS, cached)."""
        if (a, b) not in self._flow:
            self._flow[(a, b)] = self._dis.calc(self.gray[a], self.gray[b], None)
            for old in [k for k in self._flow if max(k) < min(a, b) - 2]:
                del self._flow[old]
        return self._flow[(a, b)]


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
    ``w`` (all ``(P, M)`` float32; a weight is 0 where a pixel is masked out)."""

    T: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    w: np.ndarray
    radius: int
    stride: int

    def __len__(self) -> int:
        return len(self.T)

    def subset(self, keep: np.ndarray) -> Patches:
        return Patches(self.T[keep], self.gx[keep], self.gy[keep], self.w[keep], self.radius, self.stride)

    def residual(self, target: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``(P,)`` mean absolute grey-level difference to the patches around ``p (P, 2)`` in ``target`` (weighted,
        mean brightness difference removed): how well each template matches there."""
        ox, oy, _ = patch_offsets(self.radius, self.stride)
        out = np.zeros(len(p), np.float32)
        kernels.residuals(self.T, self.w, _image(target), _points(p), ox, oy, out)
        return out


def template_patches(
    stack: np.ndarray,
    slots: np.ndarray,
    p: np.ndarray,
    radius: int = 5,
    mask: np.ndarray | None = None,
    stride: int = 1,
) -> Patches:
    """The patches around ``p (P, 2)``, point i's in the prepared images ``stack[slots[i]]`` (``(S, 3, H, W)``:
    intensity and its x / y derivatives, see :meth:`ClipImages.prepared`); ``mask (P, M)`` keeps only some of their
    pixels (e.g. those on the centre's surface)."""
    ox, oy, gauss = patch_offsets(radius, stride)
    P, M = len(p), len(ox)
    T, gx, gy = (np.empty((P, M), np.float32) for _ in range(3))
    kernels.gather_patches(stack, np.asarray(slots, np.int64), _points(p), ox, oy, T, gx, gy)
    w = gauss[None] * (mask.astype(np.float32) if mask is not None else np.ones((P, 1), np.float32))
    return Patches(T, gx, gy, w, radius, stride)


def align(
    patches: Patches, target: np.ndarray, p_init: np.ndarray, iters: int = 6, eps: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translational inverse-compositional Lucas-Kanade of template ``patches`` into ``target``, from ``p_init``.

    Patches are Gaussian-weighted (and masked) and compared after removing their mean brightness difference (shading
    changes as surfaces turn); a point stops once its step is at most ``eps`` pixels (L1). Returns the positions
    ``(P, 2)``, whether each patch had enough texture ``(P,)`` (else it is left at ``p_init``) and the final mean
    absolute residual in grey levels ``(P,)`` (inf without texture). Compiled: :func:`patch_kernels.align_patches`."""
    P = len(patches)
    p = _points(p_init).copy()
    textured, residual = np.zeros(P, bool), np.full(P, np.inf, np.float32)
    ox, oy, _ = patch_offsets(patches.radius, patches.stride)
    kernels.align_patches(
        patches.T,
        patches.gx,
        patches.gy,
        patches.w,
        _image(target),
        p,
        ox,
        oy,
        int(iters),
        float(eps),
        textured,
        residual,
    )
    return p, textured, residual


def _points(p: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(p, np.float64).reshape(-1, 2)


def _image(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image, np.float32)


def depth_mask(
    depth: np.ndarray, frames: np.ndarray, p: np.ndarray, radius: int, abs_tol: float, rel_tol: float, stride: int = 1
) -> np.ndarray:
    """``(P, M)`` True where the patch pixel around ``p (P, 2)`` in frame ``frames (P,)`` of ``depth (T, H, W)``
    lies on the centre's surface (similar depth)."""
    ox, oy, _ = patch_offsets(radius, stride)
    out = np.empty((len(p), len(ox)), bool)
    kernels.depth_mask(depth, np.asarray(frames, np.int64), _points(p), ox, oy, float(abs_tol), float(rel_tol), out)
    return out


def nearest_depth(depth: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``(P,)`` depth of the pixel nearest to each point ``p (P, 2)`` (0 outside the image)."""
    H, W = depth.shape
    c, r = np.rint(p[:, 0]), np.rint(p[:, 1])
    inside = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    out = np.zeros(len(p), np.float64)
    out[inside] = depth[r[inside].astype(np.int64), c[inside].astype(np.int64)]
    return out


def consistent_depth(
    depth: np.ndarray, p: np.ndarray, z_ref: np.ndarray, abs_tol: float, rel_tol: float
) -> tuple[np.ndarray, np.ndarray]:
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


def snap_to_surface(
    depth: np.ndarray, p: np.ndarray, z_ref: np.ndarray, radius: int, abs_tol: float, rel_tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Move each point ``p (P, 2)`` by the smallest whole-pixel offset (at most ``radius`` pixels along each axis)
    that puts it on its surface (:func:`consistent_depth` with ``z_ref (P,)``).

    A point tracked to within a pixel of a depth edge may land just across it; its own surface is then beside it.
    Returns ``(p (P, 2), z (P,), ok (P,))``: where no offset works, ``p`` is unchanged and ``ok`` False."""
    H, W = depth.shape
    offsets = [(du, dv) for du in range(-radius, radius + 1) for dv in range(-radius, radius + 1)]
    offsets.sort(key=lambda o: o[0] ** 2 + o[1] ** 2)  # nearest first: (0, 0), then the 4 neighbours, the corners
    out, z, found = p.copy(), np.zeros(len(p)), np.zeros(len(p), bool)
    for du, dv in offsets:
        todo = np.flatnonzero(~found)
        if not len(todo):
            break
        q = p[todo] + (du, dv)
        zq, ok = consistent_depth(depth, q, z_ref[todo], abs_tol, rel_tol)
        ok &= (q >= 0).all(1) & (q[:, 0] <= W - 1) & (q[:, 1] <= H - 1)  # never off the image
        hit = todo[ok]
        out[hit], z[hit], found[hit] = q[ok], zq[ok], True
    return out, z, found
