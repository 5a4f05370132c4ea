"""The executor on synthetic traces with known answers."""

import numpy as np
import pytest

from tracegen.act.executor import ExecutorConfig, plan_from_trace
from tracegen.geometry import intrinsics, look_at, world_to_pixels

K = intrinsics(200.0, 200.0, 111.5, 111.5)
W2C = look_at([0.0, -1.0, 0.8], [0.0, 0.0, 0.1], up=[0, 0, 1])
EE = np.array([0.0, 0.0, 0.2])


def scene(rng, n_effector=12, n_object=10, n_static=100):
    """World points: a cluster on the effector, an object just below it, and a static table."""
    eff = EE + rng.uniform(-0.03, 0.03, (n_effector, 3))
    obj = EE + [0, 0, -0.09] + rng.uniform(-0.02, 0.02, (n_object, 3))
    table = np.stack([rng.uniform(-0.4, 0.4, n_static), rng.uniform(-0.2, 0.4, n_static), np.zeros(n_static)], 1)
    return eff, obj, table


def to_trace(world_steps):
    """World tracks (N, S, 3) -> (u, v, z) in the camera."""
    return world_to_pixels(np.swapaxes(world_steps, 0, 1), K, W2C).swapaxes(0, 1)


def test_pure_translation_moves_the_effector_by_that_amount():
    rng = np.random.default_rng(0)
    eff, obj, table = scene(rng)
    S, d = 33, np.array([0.10, -0.04, 0.06])
    alpha = np.linspace(0, 1, S)[None, :, None]
    world = np.concatenate([eff[:, None] + alpha * d, np.repeat(np.concatenate([obj, table])[:, None], S, 1)])
    for mode in ("mean", "rigid"):
        plan = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(path_mode=mode))
        np.testing.assert_allclose(plan.positions[-1] - EE, d, atol=1e-6)
        assert set(plan.effector_tracks) <= set(range(len(eff)))
        assert not plan.gripper_closed.any()  # the object below stays put: nothing is carried


def test_static_trace_produces_no_motion():
    rng = np.random.default_rng(1)
    pts = np.concatenate(scene(rng))
    plan = plan_from_trace(to_trace(np.repeat(pts[:, None], 33, 1)), K, W2C, EE)
    assert plan.displacement < 1e-9 and not plan.gripper_closed.any()


def test_gripper_closes_when_object_tracks_start_moving_with_the_effector():
    rng = np.random.default_rng(2)
    eff, obj, table = scene(rng)
    S = 33
    down = np.concatenate([np.linspace(0, -0.04, 11), np.full(S - 11, -0.04)])  # approach for 10 steps
    up = np.concatenate([np.zeros(11), np.linspace(0, 0.15, S - 11)])  # then lift
    ee_z = down + up
    eff_w = eff[:, None] + np.stack([np.zeros(S), np.zeros(S), ee_z], -1)
    obj_w = obj[:, None] + np.stack([np.zeros(S), np.zeros(S), up], -1)  # the object rises with the effector
    world = np.concatenate([eff_w, obj_w, np.repeat(table[:, None], S, 1)])
    plan = plan_from_trace(to_trace(world), K, W2C, EE)
    assert plan.gripper_closed[11:].all() and not plan.gripper_closed[:9].any()
    np.testing.assert_allclose(plan.positions[-1, 2] - EE[2], ee_z[-1], atol=1e-6)


def test_rigid_fit_follows_a_rotating_effector_where_the_mean_cannot():
    rng = np.random.default_rng(3)
    eff = EE + [0.05, 0, 0] + rng.uniform(-0.02, 0.02, (12, 3))  # the tracks sit beside the effector's point
    S = 33
    angles = np.linspace(0, np.pi / 4, S)
    R = np.stack(
        [
            [np.cos(angles), -np.sin(angles), np.zeros(S)],
            [np.sin(angles), np.cos(angles), np.zeros(S)],
            [np.zeros(S), np.zeros(S), np.ones(S)],
        ]
    ).transpose(2, 0, 1)  # (S, 3, 3) about z through EE
    world = np.einsum("sij,nj->nsi", R, eff - EE) + EE
    rigid = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(path_mode="rigid", effector_radius_m=0.1))
    mean = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(path_mode="mean", effector_radius_m=0.1))
    np.testing.assert_allclose(rigid.positions, np.repeat(EE[None], S, 0), atol=1e-6)  # rotation about the EE
    assert mean.displacement > 0.01


def test_unknown_path_mode():
    rng = np.random.default_rng(4)
    pts = np.concatenate(scene(rng))
    with pytest.raises(ValueError, match="path_mode"):
        plan_from_trace(to_trace(np.repeat(pts[:, None], 3, 1)), K, W2C, EE, ExecutorConfig(path_mode="magic"))
