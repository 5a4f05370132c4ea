"""The geometric step of the forge tracker: a surface fitted rigidly to the next depth map."""

import numpy as np

from tracegen.forge.surface import align_surface, surface_patches

H = W = 64
K = np.array([[200.0, 0, 31.5], [0, 200.0, 31.5], [0, 0, 1]])


def bumpy_depth(shift: np.ndarray) -> np.ndarray:
    """Planar depth of a bumpy surface Z = 1 + bumps(X, Y) translated by ``shift`` (camera K at the origin, looking
    along +z): generic enough that its fit to the depth pins every direction of a translation."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    z = np.ones_like(u)
    for _ in range(30):  # the ray (x z, y z, z) meets the surface: fixed point of z = Z(x z, y z)
        X, Y = x * z - shift[0], y * z - shift[1]
        z = 1.0 + shift[2] + 0.03 * np.sin(40 * X) * np.cos(30 * Y) + 0.02 * np.cos(25 * X + 35 * Y)
    return z.astype(np.float32)


def project(X: np.ndarray) -> np.ndarray:
    return (X[:, :2] / X[:, 2:]) * K[[0, 1], [0, 1]] + K[:2, 2]


def test_align_surface_recovers_the_step_that_photometry_falls_short_of():
    step = np.array([0.004, -0.002, 0.003])  # per frame: about 0.8 / 0.4 px and 3 mm further
    depth0 = bumpy_depth(np.zeros(3))
    p0 = np.array([[28.0, 30.0], [35.0, 27.0], [31.0, 36.0]])
    z0 = depth0[p0[:, 1].astype(int), p0[:, 0].astype(int)].astype(np.float64)
    X0 = np.concatenate([(p0 - K[:2, 2]) / K[[0, 1], [0, 1]] * z0[:, None], z0[:, None]], 1)
    off, mask = surface_patches(depth0, K, np.eye(4), p0, z0, 9, 1, 0.01, 0.02)
    R, centre = np.tile(np.eye(3), (3, 1, 1)), X0.copy()
    for t in range(1, 6):  # chained over frames, model-to-frame
        depth = bumpy_depth(t * step)
        truth = project(X0 + t * step)
        prev = project(centre)
        p_init = prev + 0.9 * (truth - prev)  # the photometric estimate falls 10 % short
        R, centre, p, ok = align_surface(depth, K, np.eye(4), off, mask, R, centre, p_init)
        assert ok.all()
        err = np.linalg.norm(p - truth, axis=1)
        assert (err < 0.3 * np.linalg.norm(p_init - truth, axis=1)).all()  # well past the photometric estimate
    assert np.linalg.norm(centre - (X0 + 5 * step), axis=1).max() < 1e-3  # no drift over the frames


def test_the_world_frame_does_not_matter_and_failed_points_come_back_unchanged():
    """The same fit with the world expressed in another frame (w2c not the identity): the same pixels, the same
    motion; a point without surface pixels is returned as it came (its photometric pixel, its old pose)."""
    from tracegen.geometry import invert_rigid

    depth0, depth1 = bumpy_depth(np.zeros(3)), bumpy_depth(np.array([0.004, -0.002, 0.003]))
    p0 = np.array([[28.0, 30.0], [35.0, 27.0], [31.0, 36.0]])
    z0 = depth0[p0[:, 1].astype(int), p0[:, 0].astype(int)].astype(np.float64)
    X0 = np.concatenate([(p0 - K[:2, 2]) / K[[0, 1], [0, 1]] * z0[:, None], z0[:, None]], 1)
    off, mask = surface_patches(depth0, K, np.eye(4), p0, z0, 9, 1, 0.01, 0.02)
    mask[2] = False  # no surface pixels: the fit must leave this point alone
    p_init = p0 + 0.5
    R, centre, p, ok = align_surface(depth1, K, np.eye(4), off, mask, np.tile(np.eye(3), (3, 1, 1)), X0, p_init)

    a = np.radians(30.0)  # world' = a rotation and a shift of the camera frame
    w2c = np.eye(4)
    w2c[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    w2c[:3, 3] = [0.3, -0.2, 0.5]
    c2w = invert_rigid(w2c)
    off_w, _ = surface_patches(depth0, K, c2w, p0, z0, 9, 1, 0.01, 0.02)
    X0_w = X0 @ c2w[:3, :3].T + c2w[:3, 3]
    R_w, centre_w, p_w, ok_w = align_surface(depth1, K, w2c, off_w, mask, np.tile(np.eye(3), (3, 1, 1)), X0_w, p_init)
    assert ok.tolist() == ok_w.tolist() == [True, True, False]
    np.testing.assert_allclose(p_w, p, atol=1e-6)
    np.testing.assert_allclose(centre_w[:2], (centre @ c2w[:3, :3].T + c2w[:3, 3])[:2], atol=1e-9)
    np.testing.assert_array_equal(p_w[2], p_init[2])
    np.testing.assert_array_equal(centre_w[2], X0_w[2])
    np.testing.assert_array_equal(R_w[2], np.eye(3))


def test_lifted_surfaces_match_the_array_code():
    """The compiled lifting gives the array code's offsets and mask bit for bit (borders and depth holes too)."""
    from tracegen.forge.flow import patch_offsets
    from tracegen.geometry import invert_rigid

    depth = bumpy_depth(np.zeros(3))
    depth[10:14, 20:30] = 0.0  # a hole
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(-2, 65, (40, 2)), [[0.5, 2.5], [63.0, 63.0]]])
    z = rng.uniform(0.9, 1.1, len(p))
    w2c = np.eye(4)
    w2c[:3, :3] = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    c2w = invert_rigid(w2c)
    off, mask = surface_patches(depth, K, c2w, p, z, 18, 3, 0.01, 0.02)

    ox, oy, _ = patch_offsets(18, 3)
    c, r = np.rint(p[:, :1] + ox).astype(np.int64), np.rint(p[:, 1:] + oy).astype(np.int64)
    inside = (c >= 0) & (c < W) & (r >= 0) & (r < H)
    c, r = np.clip(c, 0, W - 1), np.clip(r, 0, H - 1)
    d = depth[r, c].astype(np.float64)
    want_mask = inside & (d > 0) & (np.abs(d - z[:, None]) < 0.01 + 0.02 * z[:, None])
    rel = np.stack([(c - p[:, :1]) * d / K[0, 0], (r - p[:, 1:]) * d / K[1, 1], d - z[:, None]], -1)
    rel[..., 0] += (p[:, :1] - K[0, 2]) * (d - z[:, None]) / K[0, 0]
    rel[..., 1] += (p[:, 1:] - K[1, 2]) * (d - z[:, None]) / K[1, 1]
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(off, (rel @ c2w[:3, :3].T).astype(np.float32))
