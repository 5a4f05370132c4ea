"""The compiled patch kernels reproduce the array code they replaced (OpenCV remap + NumPy) bit for bit."""

import cv2
import numpy as np
import pytest

from tracegen.forge import patch_kernels as kernels
from tracegen.forge.flow import ClipImages, align, depth_mask, patch_offsets, template_patches

RADIUS, STRIDE = 9, 2


def remap(image, u, v):
    return cv2.remap(
        image, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def reference_align(T, gx, gy, w, target, p_init, iters, eps=0.01):
    """The NumPy refinement the kernel replaced (all points at once, float32 arrays)."""
    ox, oy, _ = patch_offsets(RADIUS, STRIDE)
    ws = np.maximum(w.sum(1), 1e-6)
    gx = gx - (w * gx).sum(1, keepdims=True) / ws[:, None]
    gy = gy - (w * gy).sum(1, keepdims=True) / ws[:, None]
    hxx, hxy, hyy = (w * gx**2).sum(1), (w * gx * gy).sum(1), (w * gy**2).sum(1)
    det = hxx * hyy - hxy**2
    textured = det > 1e-3 * (hxx + hyy) ** 2 + 1e-4 * ws**2
    det = np.where(textured, det, 1.0)
    p, residual = p_init.astype(np.float64).copy(), np.full(len(T), np.inf, np.float32)
    todo = np.flatnonzero(textured)
    for _ in range(iters):
        if not len(todo):
            break
        pt = p[todo]
        r = remap(target, pt[:, :1] + ox, pt[:, 1:] + oy) - T[todo]
        wt = w[todo]
        r -= (wt * r).sum(1, keepdims=True) / ws[todo, None]
        bx, by = (wt * gx[todo] * r).sum(1), (wt * gy[todo] * r).sum(1)
        dx = (hyy[todo] * bx - hxy[todo] * by) / det[todo]
        dy = (hxx[todo] * by - hxy[todo] * bx) / det[todo]
        step = np.clip(np.stack([dx, dy], 1), -3.0, 3.0)
        p[todo] -= step
        residual[todo] = (wt * np.abs(r)).sum(1) / ws[todo]
        todo = todo[np.abs(step).sum(1) > eps]
    return p, textured, residual


def textured_frames(n=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size + 8, size + 8)).astype(np.float32), (0, 0), 1.5)
    frames = [np.clip(base[k : k + size, 2 * k : 2 * k + size] * 2 - 128, 0, 255).astype(np.uint8) for k in range(n)]
    return np.stack([cv2.cvtColor(f, cv2.COLOR_GRAY2RGB) for f in frames])


def test_bilinear_is_opencvs_remap_including_the_border():
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (40, 50)).astype(np.float32)
    u = rng.uniform(-6, 56, (30, 40)).astype(np.float32)
    v = rng.uniform(-6, 46, (30, 40)).astype(np.float32)
    u[0, :8], v[0, :8] = [0, 49, 49.5, -0.5, 10 + 1 / 64, 10 + 3 / 64, 7.0, 48.99], 3.0  # ties and edges
    got = np.array([[kernels.bilinear(image, u[i, j], v[i, j]) for j in range(u.shape[1])] for i in range(len(u))])
    assert np.array_equal(got, remap(image, u, v))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 100, 128, 169, 300])
def test_row_sum_is_numpys_pairwise_float32_sum(n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal((200, n)) * rng.uniform(1e-3, 1e3, (200, 1))).astype(np.float32)
    assert np.array_equal([kernels.row_sum(row) for row in a], a.sum(1))


def test_patches_residual_and_refinement_match_the_array_code():
    rgb = textured_frames()
    images = ClipImages(rgb, keep=3)
    rng = np.random.default_rng(2)
    P = 300
    frames = rng.integers(0, 2, P)
    p = rng.uniform(-1, 64, (P, 2))
    mask = rng.random((P, len(patch_offsets(RADIUS, STRIDE)[0]))) > 0.2
    mask[:5] = False  # no pixel left: too little texture
    stack, slots = images.prepared(frames)
    patches = template_patches(stack, slots, p, RADIUS, mask, STRIDE)
    ox, oy, gauss = patch_offsets(RADIUS, STRIDE)
    for f in (0, 1):  # the samples: OpenCV's, frame by frame
        image, gx, _ = images.smooth(f)
        sel = frames == f
        u, v = p[sel, :1] + ox, p[sel, 1:] + oy
        assert np.array_equal(patches.T[sel], remap(image, u, v))
        assert np.array_equal(patches.gx[sel], remap(gx, u, v))
    target = images.smooth(2)[0]
    p_init = p + rng.normal(0, 1.5, p.shape)
    got = align(patches, target, p_init, iters=4)
    want = reference_align(patches.T, patches.gx, patches.gy, patches.w, target, p_init, iters=4)
    assert got[1][:5].sum() == 0 and got[1].mean() > 0.8
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    w = patches.w
    r = remap(target, p_init[:, :1] + ox, p_init[:, 1:] + oy) - patches.T
    ws = np.maximum(w.sum(1), 1e-6)
    r -= (w * r).sum(1, keepdims=True) / ws[:, None]
    assert np.array_equal(patches.residual(target, p_init), (w * np.abs(r)).sum(1) / ws)


def test_prepared_frames_must_fit_the_slots():
    images = ClipImages(textured_frames(4), keep=3)
    stack, slots = images.prepared(np.array([1, 3, 2]))
    assert np.array_equal(stack[slots[1], 0], images.smooth(3)[0])
    with pytest.raises(ValueError):
        images.prepared(np.array([0, 3]))


def test_depth_mask_matches_the_array_code():
    rng = np.random.default_rng(3)
    depth = rng.choice([0.0, 1.0, 1.01, 1.05, 2.0], (3, 30, 40)).astype(np.float32)
    p = rng.uniform(-3, 43, (200, 2))
    p[:4] = [[0.5, 0.5], [1.5, 2.5], [39.5, 29.5], [10.49999, 3.5]]  # halves round to even
    frames = rng.integers(0, 3, len(p))
    ox, oy, _ = patch_offsets(RADIUS, STRIDE)
    c = np.clip(np.rint(p[:, :1] + ox), 0, 39).astype(np.int64)
    r = np.clip(np.rint(p[:, 1:] + oy), 0, 29).astype(np.int64)
    z = depth[frames[:, None], r, c]
    centre = np.rint(np.clip(p, 0, [39, 29])).astype(np.int64)
    zc = depth[frames, centre[:, 1], centre[:, 0]].astype(np.float64)[:, None]
    want = (np.abs(z - zc) < 0.02 + 0.03 * zc) & (z > 0)
    assert np.array_equal(depth_mask(depth, frames, p, RADIUS, 0.02, 0.03, STRIDE), want)


def test_frames_are_prepared_on_demand_and_made_again_when_their_slot_was_reused():
    rgb = textured_frames(5)
    images = ClipImages(rgb, keep=2)
    assert images._stack is None  # the LK baseline only needs the grey images
    first = images.smooth(1)[0].copy()
    images.smooth(3)  # takes frame 1's slot
    assert np.array_equal(images.smooth(1)[0], first)
    assert np.array_equal(first, cv2.GaussianBlur(images.gray[1].astype(np.float32), (0, 0), 0.7))
    stack, slots = images.prepared(np.zeros(0, np.int64))
    assert stack.shape == (2, 3, 64, 64) and len(slots) == 0
