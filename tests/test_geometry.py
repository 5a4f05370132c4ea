import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tracegen import geometry as g


def random_camera(rng):
    K = g.intrinsics(*rng.uniform(100, 800, 2), *rng.uniform(50, 300, 2))
    eye = rng.uniform(-2, 2, 3)
    target = eye + rng.normal(size=3)
    return K, g.look_at(eye, target, up=rng.normal(size=3))


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_project_unproject_round_trip(seed):
    rng = np.random.default_rng(seed)
    K, w2c = random_camera(rng)
    uv = rng.uniform(0, 640, (50, 2))
    z = rng.uniform(0.1, 10, 50)
    uvz = np.concatenate([uv, z[:, None]], -1)
    X = g.pixels_to_world(uvz, K, w2c)
    np.testing.assert_allclose(g.world_to_pixels(X, K, w2c), uvz, rtol=0, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_rigid_inverse_and_similarity_alignment(seed):
    rng = np.random.default_rng(seed)
    _, T = random_camera(rng)
    np.testing.assert_allclose(g.invert_rigid(T) @ T, np.eye(4), atol=1e-12)
    src = rng.normal(size=(30, 3))
    s, R, t = rng.uniform(0.2, 5), g.invert_rigid(T)[:3, :3], rng.normal(size=3)
    dst = s * src @ R.T + t
    s2, R2, t2 = g.umeyama(src, dst)
    assert abs(s2 - s) < 1e-9
    np.testing.assert_allclose(R2, R, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    R3, _ = g.kabsch(src, src @ R.T + t)
    np.testing.assert_allclose(R3, R, atol=1e-9)


def test_opencv_axes_of_look_at():
    w2c = g.look_at([0, 0, 5], [0, 0, 0], up=[0, 1, 0])
    K = g.intrinsics(100, 100, 50, 50)
    uvz = g.world_to_pixels(np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]), K, w2c)
    np.testing.assert_allclose(uvz[0], [50, 50, 5])  # the target projects to the principal point, 5 m ahead
    assert uvz[1, 0] > 50  # +x of the world is to the right in this view
    assert uvz[2, 1] < 50  # world 'up' is up in the image (+v is down)


def test_mujoco_opengl_pose_conversion_matches_look_at():
    w2c = g.look_at([1.0, -2.0, 1.5], [0.0, 0.5, 0.2], up=[0, 0, 1])
    gl_rot = g.opengl_rotation_from_w2c(w2c)  # columns: camera x right, y up, z backwards in world
    centre = g.invert_rigid(w2c)[:3, 3]
    np.testing.assert_allclose(g.w2c_from_opengl_pose(centre, gl_rot), w2c, atol=1e-12)
    np.testing.assert_allclose(gl_rot[:, 2], -w2c[2, :3], atol=1e-12)  # OpenGL looks along -z


def test_intrinsics_from_fovy_and_resize():
    K = g.intrinsics_from_fovy(90.0, 100, 200)
    assert K[0, 0] == pytest.approx(50.0) and K[0, 2] == pytest.approx(99.5) and K[1, 2] == pytest.approx(49.5)
    K2 = g.resize_intrinsics(K, (100, 200), (50, 100))
    np.testing.assert_allclose(K2[:2, 2], [49.5, 24.5])  # still the image centre
    assert K2[0, 0] == pytest.approx(25.0)
    np.testing.assert_allclose(g.fx_fy_cx_cy(K), [50, 50, 99.5, 49.5])


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    K, w2c = random_camera(rng)
    uvz = np.concatenate([rng.uniform(0, 300, (8, 2)), rng.uniform(1, 3, (8, 1))], -1)
    X = g.pixels_to_world(uvz, K, w2c)
    Xt = g.pixels_to_world(torch.tensor(uvz), torch.tensor(K), torch.tensor(w2c))
    assert isinstance(Xt, torch.Tensor)
    np.testing.assert_allclose(Xt.numpy(), X, atol=1e-9)


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(ValueError, match="N >= 3"):
        g.umeyama(np.zeros((2, 3)), np.zeros((2, 3)))
