"""Dense depth alignment of a moving camera (tracegen.forge.rgbd_align) on ray-cast depth of a known scene: a
corner of three planes with a ball on the floor, filmed along an orbit; poses start a few tenths of a degree and
a centimetre off, as SfM leaves them."""

from __future__ import annotations

import numpy as np
import pytest

from tracegen.forge.rgbd_align import align_depth
from tracegen.geometry import intrinsics, invert_rigid, look_at, make_rigid

H, W = 96, 128
K = intrinsics(120.0, 120.0, (W - 1) / 2, (H - 1) / 2)
PLANES = [(np.array([0.0, 0.0, 1.0]), 0.0), (np.array([-1.0, 0.0, 0.0]), -1.2), (np.array([0.0, -1.0, 0.0]), -1.2)]


def render_depth(w2c: np.ndarray, ball: np.ndarray, radius: float = 0.25) -> np.ndarray:
    """``(H, W)`` metres: the nearest hit of each pixel's ray with the planes ``n . X = d`` and the ball."""
    c2w = invert_rigid(w2c)
    v, u = np.mgrid[0:H, 0:W]
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)  # z = 1
    rays = rays_cam @ c2w[:3, :3].T
    eye = c2w[:3, 3]
    best = np.full((H, W), np.inf)
    for n, d in PLANES:
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (d - n @ eye) / (rays @ n)
        best = np.where((s > 0) & (s < best), s, best)
    oc = eye - ball
    a, b, c = (rays**2).sum(-1), 2 * rays @ oc, oc @ oc - radius**2
    disc = b**2 - 4 * a * c
    s = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    best = np.where((disc > 0) & (s > 0) & (s < best), s, best)
    return np.where(np.isfinite(best), best, 0.0)  # s is the depth: the rays have z = 1 in the camera


def orbit(T: int) -> np.ndarray:
    target = np.array([0.3, 0.3, 0.1])
    poses = []
    for t in range(T):
        a = np.radians(-135 + 15 * np.sin(2 * np.pi * t / T))
        eye = target + np.array([1.4 * np.cos(a), 1.4 * np.sin(a), 0.8 + 0.05 * np.sin(4 * np.pi * t / T)])
        poses.append(look_at(eye, target))
    return np.stack(poses)


def perturb(w2c: np.ndarray, deg: float, metres: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = w2c.copy()
    for t in range(len(w2c)):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        a = np.radians(deg)
        R = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
        out[t] = make_rigid(R, rng.normal(size=3) * metres / np.sqrt(3)) @ w2c[t]
    return out


def relative_errors(w2c: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the error (degrees, metres) of its pose relative to frame 0's -- what traces depend on."""
    rot, trans = [], []
    for t in range(len(w2c)):
        D = (w2c[t] @ invert_rigid(w2c[0])) @ invert_rigid(truth[t] @ invert_rigid(truth[0]))
        rot.append(np.degrees(np.arccos(np.clip((np.trace(D[:3, :3]) - 1) / 2, -1, 1))))
        trans.append(np.linalg.norm(D[:3, 3]))
    return np.array(rot), np.array(trans)


def test_alignment_recovers_the_poses_to_a_fraction_of_sfm_error():
    truth = orbit(16)
    depth = np.stack([render_depth(w, np.array([0.3, 0.3, 0.25])) for w in truth])
    start = perturb(truth, deg=0.4, metres=0.01)
    w2c, stats = align_depth(depth, np.repeat(K[None], len(truth), 0), start)
    rot0, trans0 = relative_errors(start, truth)
    rot, trans = relative_errors(w2c, truth)
    assert np.median(rot0) > 0.3 and np.median(trans0) > 0.005
    assert rot.max() < 0.05 and trans.max() < 0.001  # measured ~0.01 deg and ~0.1 mm
    assert stats["icp_residual_mm_after"] < 0.1 * stats["icp_residual_mm_before"]


def test_a_moving_object_and_unregistered_end_frames_do_not_pull_the_cameras():
    truth = orbit(20)
    # the ball rolls 2 cm per frame (an arm's speed): it must be an outlier, not a constraint
    depth = np.stack([render_depth(w, np.array([0.3 + 0.02 * t, 0.3, 0.25])) for t, w in enumerate(truth)])
    start = perturb(truth, deg=0.3, metres=0.005, seed=1)
    start[14:] = start[13]  # SfM registered frames 0..13; the rest were held at the last pose (degrees off)
    known = np.arange(20) < 14
    w2c, _ = align_depth(depth, np.repeat(K[None], 20, 0), start, known)
    rot0, _ = relative_errors(start, truth)
    rot, trans = relative_errors(w2c, truth)
    assert rot0[-1] > 3.0  # the held pose is far off
    assert rot.max() < 0.1 and trans.max() < 0.002


def test_frames_without_depth_keep_their_pose():
    truth = orbit(8)
    depth = np.stack([render_depth(w, np.array([0.3, 0.3, 0.25])) for w in truth])
    depth[3] = 0.0  # a dropped depth frame: nothing to align, nothing to break
    start = perturb(truth, deg=0.3, metres=0.005, seed=2)
    w2c, _ = align_depth(depth, np.repeat(K[None], 8, 0), start)
    assert np.isfinite(w2c).all()
    np.testing.assert_allclose(w2c[3], start[3])


def test_a_clip_without_any_depth_is_left_as_it_was():
    start = orbit(4)
    w2c, stats = align_depth(np.zeros((4, H, W)), np.repeat(K[None], 4, 0), start)
    np.testing.assert_allclose(w2c, start, atol=1e-12)
    assert stats == {"icp_residual_mm_before": None, "icp_residual_mm_after": None, "icp_kept_start": False}


def test_short_clips_nan_depth_and_no_registered_frame_are_handled():
    truth = orbit(16)[:2]
    depth = np.stack([render_depth(w, np.array([0.3, 0.3, 0.25])) for w in truth])
    depth[0, :10] = np.nan  # a sensor's missing rows
    start = perturb(truth, deg=0.3, metres=0.005, seed=3)
    w2c, stats = align_depth(depth, np.repeat(K[None], 2, 0), start, known=np.zeros(2, bool))
    rot, trans = relative_errors(w2c, truth)
    assert np.isfinite(w2c).all() and rot.max() < 0.05 and trans.max() < 0.001
    assert stats["icp_kept_start"] is False
    one, _ = align_depth(depth[:1], K[None], start[:1])
    np.testing.assert_allclose(one, start[:1], atol=1e-12)  # nothing to align a single frame to


def test_inputs_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="known"):
        align_depth(np.ones((3, H, W)), np.repeat(K[None], 3, 0), orbit(3), known=np.ones(2, bool))
