import numpy as np
import pytest

from tracegen.geometry import project, transform_points
from tracegen.sim.cameras import (
    CameraPose,
    CameraSpec,
    jitter,
    look_at,
    resolve,
    rotation_looking_along,
    upright,
)

UPSIDE_DOWN = CameraPose(np.array([1.0, -0.5, 1.2]), rotation_looking_along([-1.0, 1.0, -0.8], up=[0, 0, -1]), 45.0)


def test_upright_keeps_position_fov_and_viewing_direction():
    up = upright(UPSIDE_DOWN)
    assert np.allclose(up.pos, UPSIDE_DOWN.pos) and up.fovy == UPSIDE_DOWN.fovy
    assert np.allclose(up.forward, UPSIDE_DOWN.forward)
    assert up.up[2] > 0 > UPSIDE_DOWN.up[2]
    assert np.allclose(up.rot.T @ up.rot, np.eye(3)) and np.isclose(np.linalg.det(up.rot), 1.0)


def test_w2c_and_K_follow_the_opencv_convention():
    pose = look_at([2.0, 0.0, 1.0], [0.0, 0.0, 1.0], fovy=60.0)
    K, w2c = pose.K(48, 64), pose.w2c()
    targets = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.5], [0.0, 0.5, 1.0]])  # centre, above, right
    uv, z = project(transform_points(w2c, targets), K)
    assert np.allclose(uv[0], [31.5, 23.5]) and np.allclose(z, 2.0)  # integer pixel centres
    assert uv[1, 1] < uv[0, 1]  # world up is image up
    assert uv[2, 0] > uv[0, 0]  # +y is on the right when looking along -x with z up


def test_jitter_is_seeded_and_small():
    a = jitter(UPSIDE_DOWN, np.random.default_rng(3), 0.05, 5.0)
    b = jitter(UPSIDE_DOWN, np.random.default_rng(3), 0.05, 5.0)
    assert np.array_equal(a.pos, b.pos) and np.array_equal(a.rot, b.rot)
    angle = np.degrees(np.arccos(np.clip(a.forward @ UPSIDE_DOWN.forward, -1, 1)))
    assert 0 < angle < 30 and 0 < np.linalg.norm(a.pos - UPSIDE_DOWN.pos) < 0.3


def test_spec_parsing_labels_and_per_episode_jitter():
    assert CameraSpec.parse("corner3") == CameraSpec("corner3")
    spec = CameraSpec.parse("corner3@0.05,4#2")
    assert (spec.jitter_pos, spec.jitter_deg, spec.jitter_seed, spec.label) == (0.05, 4.0, 2, "corner3-jit2")
    assert spec.for_episode(0) != spec.for_episode(1) and spec.for_episode(0) == spec.for_episode(0)
    assert CameraSpec("corner").for_episode(5) == CameraSpec("corner")
    with pytest.raises(ValueError, match="NAME@POS_STD"):
        CameraSpec.parse("corner@x")
    pose = resolve(CameraSpec("c", upright=None), UPSIDE_DOWN, upright_default=True)
    assert pose.up[2] > 0
