"""The executor on synthetic traces with known answers."""

import numpy as np
import pytest

from tracegen.act.executor import (
    ExecutorConfig,
    Plan,
    dip_object,
    plan_from_trace,
    recent_descent,
    snap_to_object,
)
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
    assert plan.excursion < 1e-9 and not plan.gripper_closed.any()


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
    assert mean.excursion > 0.01


def test_unknown_path_mode():
    rng = np.random.default_rng(4)
    pts = np.concatenate(scene(rng))
    with pytest.raises(ValueError, match="path_mode"):
        plan_from_trace(to_trace(np.repeat(pts[:, None], 3, 1)), K, W2C, EE, ExecutorConfig(path_mode="magic"))
    with pytest.raises(ValueError, match="kinematic_path .*'hidden'"):
        ExecutorConfig(kinematic_path="sometimes")


# --- grasping rules: contact point, arm links, first movers, dips (coarse retargeted steps, as the oracle gives)


def pick_trace(rng, contact_z=0.03, S=12, link=None):
    """An effector that descends from EE to ``contact_z`` (the bottom falls *between* two steps), picks an object
    there and lifts it; returns world tracks, the effector/object index ranges and the true contact point."""
    eff = EE + rng.uniform(-0.01, 0.01, (12, 3))
    contact = np.array([EE[0], EE[1], contact_z])
    obj = contact + [0, 0, -0.03] + rng.uniform(-0.01, 0.01, (6, 3))
    table = np.stack([rng.uniform(-0.4, 0.4, 60), rng.uniform(-0.2, 0.4, 60), np.zeros(60)], 1)
    t = np.linspace(0.0, 1.0, S)  # arc parameter: descent on [0, 0.4], lift after
    ee_z = np.where(t < 0.4, EE[2] + (contact_z - EE[2]) * t / 0.4, contact_z + (t - 0.4) / 0.6 * 0.15)
    lift = np.maximum(ee_z - contact_z, 0) * (t >= 0.4)
    eff_w = eff[:, None] + np.stack([np.zeros(S), np.zeros(S), ee_z - EE[2]], -1)
    obj_w = obj[:, None] + np.stack([np.zeros(S), np.zeros(S), lift], -1)
    world = np.concatenate([eff_w, obj_w, np.repeat(table[:, None], S, 1)])
    return world, contact


def test_contact_point_comes_from_the_carried_tracks_not_the_step_before_their_onset():
    world, contact = pick_trace(np.random.default_rng(5))
    cfg = ExecutorConfig(grasp_rules=("co-motion",))
    plan = plan_from_trace(to_trace(world), K, W2C, EE, cfg)
    assert plan.gripper_closed.any()
    np.testing.assert_allclose(plan.grasp_position, contact, atol=0.003)
    coarse = plan_from_trace(
        to_trace(world), K, W2C, EE, ExecutorConfig(grasp_rules=("co-motion",), contact_grasp=False)
    )
    assert np.linalg.norm(coarse.grasp_position - contact) > 0.01  # a step of the coarse trace away


def test_arm_links_moving_from_the_start_are_not_carried_objects():
    """A link next to the effector that follows it for a while (but is not coherent with it) is not an object."""
    rng = np.random.default_rng(6)
    S = 33
    eff = EE + rng.uniform(-0.01, 0.01, (12, 3))
    link = EE + [0.04, 0.0, 0.03] + rng.uniform(-0.01, 0.01, (6, 3))
    table = np.stack([rng.uniform(-0.4, 0.4, 60), rng.uniform(-0.2, 0.4, 60), np.zeros(60)], 1)
    move = np.stack([np.linspace(0, 0.15, S), np.zeros(S), np.zeros(S)], -1)  # the effector slides sideways
    drift = np.stack([np.zeros(S), np.zeros(S), np.maximum(0, np.linspace(-0.05, 0.05, S))], -1)  # link bends later
    world = np.concatenate([eff[:, None] + move, link[:, None] + move + drift, np.repeat(table[:, None], S, 1)])
    cfg = ExecutorConfig(grasp_rules=("co-motion",), first_movers=False)
    assert not plan_from_trace(to_trace(world), K, W2C, EE, cfg).gripper_closed.any()
    loose = ExecutorConfig(grasp_rules=("co-motion",), first_movers=False, carry_approach_m=0.0)
    assert plan_from_trace(to_trace(world), K, W2C, EE, loose).gripper_closed.any()  # the rule is what prevents it


def test_first_movers_seed_the_effector_not_a_closer_object_picked_later():
    world, contact = pick_trace(np.random.default_rng(7), contact_z=0.17)  # the object starts 6 cm below the EE
    world[:12, :, 1] += 0.08  # the effector's grid points sit 8 cm off the tool point: the object is closer
    plan = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig())
    assert set(plan.effector_tracks) <= set(range(12))
    naive = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(first_movers=False))
    assert not set(naive.effector_tracks) <= set(range(12))


def dip_world(heights, rng, xs=None):
    """Effector tracks following ``heights`` (and x offsets ``xs``) with a static table under them; and the
    effector's start."""
    S, heights = len(heights), np.asarray(heights, float)
    xs = np.zeros(S) if xs is None else xs
    start = np.array([EE[0], EE[1], heights[0]])
    eff = start + rng.uniform(-0.01, 0.01, (12, 3))
    table = np.stack([rng.uniform(-0.4, 0.4, 200), rng.uniform(-0.2, 0.4, 200), np.zeros(200)], 1)
    move = np.stack([xs, np.zeros(S), heights - heights[0]], -1)
    return np.concatenate([eff[:, None] + move, np.repeat(table[:, None], S, 1)]), start


def test_dip_closes_at_the_first_pick_and_refines_its_bottom_between_steps():
    # a pick (descent and rise at 5 cm per step meet at 0.025, between the steps at 0.05), a carry, a lower place
    h = [0.2, 0.15, 0.1, 0.05, 0.05, 0.1, 0.15, 0.2, 0.2, 0.1, 0.0, 0.0]
    xs = [0, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.2, 0.2, 0.2]
    world, start = dip_world(h, np.random.default_rng(8), np.array(xs, float))
    plan = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",)))
    assert plan.gripper_closed[3:].all() and not plan.gripper_closed[:3].any()  # the first dip, not the lowest point
    assert plan.grasp_position[0] == pytest.approx(EE[0], abs=0.01)
    assert plan.grasp_position[2] == pytest.approx(0.025, abs=0.003)
    flat = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",), dip_refine=False))
    assert flat.grasp_position[2] == pytest.approx(0.05, abs=0.003)


def test_the_dip_contact_is_above_the_object_when_the_lowest_step_is_already_on_the_way_out():
    # straight down onto the object at x = 0, then off sideways as the gripper closes: the lowest step (x = 3 cm,
    # reached by a move more sideways than down) is already on the way out; the step before it is above the object
    h = [0.2, 0.15, 0.1, 0.05, 0.03, 0.06, 0.11, 0.16]
    xs = [0, 0, 0, 0, 0.03, 0.06, 0.09, 0.12]
    world, start = dip_world(h, np.random.default_rng(9), np.array(xs, float))
    plan = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",)))
    assert plan.gripper_closed[4] and not plan.gripper_closed[3]
    assert plan.grasp_position[0] == pytest.approx(EE[0], abs=0.004)
    assert plan.grasp_position[2] < 0.03  # lowered to where the descent and the rise meet
    flat = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",), dip_refine=False))
    assert flat.grasp_position[0] == pytest.approx(EE[0] + 0.03, abs=0.004)
    # a slanted descent whose last move is mostly down: the lowest step is the bottom's place across
    xs = [0, 0.02, 0.04, 0.06, 0.07, 0.07, 0.07, 0.07]
    world, start = dip_world(h, np.random.default_rng(9), np.array(xs, float))
    plan = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",)))
    assert plan.grasp_position[0] == pytest.approx(EE[0] + 0.07, abs=0.004)


def ball_scene(centre, radius=0.03, seen_from=(-1.0, 0.0)):
    """Depth points of a floor (z = 0) and of the half of a ball on it that a camera on the ``seen_from`` side
    sees, and an arm link high above the ball."""
    g = np.linspace(-0.2, 0.2, 41)
    floor = np.stack(np.meshgrid(g, g) + [np.zeros((41, 41))], -1).reshape(-1, 3)
    floor = floor[np.linalg.norm(floor[:, :2] - centre[:2], axis=1) > radius]
    polar, azimuth = np.meshgrid(np.linspace(0, np.pi / 2, 8), np.linspace(0, 2 * np.pi, 24, endpoint=False))
    dirs = np.stack([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)], -1)
    ball = (centre + radius * dirs).reshape(-1, 3)
    ball = ball[(ball[:, :2] - centre[:2]) @ np.asarray(seen_from) >= 0]
    arm = centre + [0.0, 0.0, 0.25]
    return np.concatenate([floor, ball, arm[None]])


def test_dip_object_puts_the_contact_over_the_top_of_the_object_under_the_descent():
    up, centre = np.array([0.0, 0.0, 1.0]), np.array([0.01, 0.0, 0.03])
    start, end = np.array([-0.01, 0.0, 0.07]), np.array([0.04, 0.0, 0.02])  # the descent's last step
    points = ball_scene(centre)
    seen = points[(points[:, 2] > 0.01) & (points[:, 2] < 0.2)]
    assert seen[:, 0].mean() < centre[0] - 0.008  # what the camera sees of the ball lies to one side of it
    found = dip_object(start, end, points, up, 0.01, ExecutorConfig())
    assert found[0] == pytest.approx(centre[0], abs=0.004)  # ... its top does not
    assert found[1] == pytest.approx(0.0) and 0.02 <= found[2] <= 0.07  # on the segment
    assert dip_object(start, end, points[points[:, 2] == 0], up, 0.01, ExecutorConfig()) is None  # floor only
    far = ball_scene(np.array([0.2, 0.15, 0.03]))  # the ball beyond the radius: nothing under the descent
    assert dip_object(start, end, far, up, 0.01, ExecutorConfig()) is None


def test_snap_to_object_moves_a_contact_beside_an_object_over_its_top():
    """A learned plan's dip lands centimetres beside the object it means (it does not localise it); the snap takes
    the contact to the top of the nearest object the depth shows, and leaves a contact over an object alone."""
    up, cfg = np.array([0.0, 0.0, 1.0]), ExecutorConfig(dip_snap_m=0.08, dip_snap_keep_m=0.03)
    ball = np.array([0.05, 0.02, 0.03])
    other = ball_scene(np.array([-0.07, -0.03, 0.03]), radius=0.02)
    points = np.concatenate([ball_scene(ball, radius=0.02), other[other[:, 2] > 0.005]])
    beside = np.array([0.0, -0.02, 0.01])  # 6.4 cm from the ball's centre, 7.1 cm from the other's
    snapped = snap_to_object(beside, points, up, 0.01, cfg)
    assert np.linalg.norm(snapped[:2] - ball[:2]) < 0.01 and snapped[2] == pytest.approx(beside[2])
    assert snap_to_object(ball + [0.02, 0.0, -0.02], points, up, 0.01, cfg) is None  # over the ball's side: kept
    assert snap_to_object(beside, points, up, 0.01, ExecutorConfig(dip_snap_m=0.04)) is None  # nothing that near
    assert snap_to_object(beside, points[points[:, 2] == 0], up, 0.01, cfg) is None  # floor only


def test_a_dip_beside_a_ball_grasps_over_it_with_the_snap_centring_on_or_off():
    world, start = dip_world([0.2, 0.15, 0.1, 0.05, 0.03, 0.06, 0.11, 0.16], np.random.default_rng(9))
    ball = np.array([EE[0] + 0.06, EE[1], 0.03])  # 6 cm beside the straight-down dip
    points = ball_scene(ball, radius=0.02)
    for centre in (0.0, 0.03):
        cfg = ExecutorConfig(grasp_rules=("dip",), dip_centre_m=centre)
        snapped = plan_from_trace(to_trace(world), K, W2C, start, cfg, scene_points=points).grasp_position
        assert snapped[0] == pytest.approx(ball[0], abs=0.01) and snapped[1] == pytest.approx(ball[1], abs=0.01)
    off = ExecutorConfig(grasp_rules=("dip",), dip_snap_m=0.0)
    assert plan_from_trace(to_trace(world), K, W2C, start, off, scene_points=points).grasp_position[0] == (
        pytest.approx(EE[0], abs=0.004)
    )


def test_dip_centre_moves_the_contact_to_the_object_the_depth_shows():
    # the slanted descent of the test above ends at x = 7 cm; the depth shows a ball under its last step, at 6.1 cm
    h = [0.2, 0.15, 0.1, 0.05, 0.03, 0.06, 0.11, 0.16]
    xs = np.array([0, 0.02, 0.04, 0.06, 0.07, 0.07, 0.07, 0.07])
    world, start = dip_world(h, np.random.default_rng(9), xs)
    points = ball_scene(np.array([EE[0] + 0.061, EE[1], 0.03]), radius=0.02)
    off = ExecutorConfig(grasp_rules=("dip",), dip_centre_m=0.0)
    plain = plan_from_trace(to_trace(world), K, W2C, start, off, scene_points=points)
    assert plain.grasp_position[0] == pytest.approx(EE[0] + 0.07, abs=0.004)
    plan = plan_from_trace(to_trace(world), K, W2C, start, ExecutorConfig(grasp_rules=("dip",)), scene_points=points)
    assert plan.grasp_position[0] == pytest.approx(EE[0] + 0.061, abs=0.003)
    assert plan.grasp_position[2] == pytest.approx(plain.grasp_position[2])
    flat = ExecutorConfig(grasp_rules=("dip",), dip_object_raised_m=0.06)  # the 4 cm ball no longer stands out
    assert plan_from_trace(to_trace(world), K, W2C, start, flat, scene_points=points).grasp_position[0] == (
        pytest.approx(plain.grasp_position[0])
    )
    # a last step longer than 2.5 radii is not searched (it could reach another object): the contact stays put
    xs = np.array([0, 0, 0, 0, 0.09, 0.09, 0.09, 0.09])
    world, start = dip_world([0.2, 0.15, 0.1, 0.06, 0.03, 0.06, 0.11, 0.16], np.random.default_rng(9), xs)
    points = ball_scene(np.array([EE[0] + 0.04, EE[1], 0.03]), radius=0.02)
    for centre in (0.0, 0.03):
        cfg = ExecutorConfig(grasp_rules=("dip",), dip_centre_m=centre)
        plan = plan_from_trace(to_trace(world), K, W2C, start, cfg, scene_points=points)
        assert plan.grasp_position[0] == pytest.approx(EE[0], abs=0.004)  # the step before, above the object's side
    cfg = ExecutorConfig(grasp_rules=("dip",), dip_centre_m=0.04)  # 2.5 x 4 cm: now it is searched
    assert plan_from_trace(to_trace(world), K, W2C, start, cfg, scene_points=points).grasp_position[0] == (
        pytest.approx(EE[0] + 0.04, abs=0.004)
    )


def test_dip_next_to_the_observed_scene_when_no_track_is_near():
    h = [0.5, 0.4, 0.3, 0.4, 0.5]  # a dip in the air, far from every track
    world, start = dip_world(h, np.random.default_rng(9))
    cfg = ExecutorConfig(grasp_rules=("dip",))
    assert not plan_from_trace(to_trace(world), K, W2C, start, cfg).gripper_closed.any()
    surface = np.array([[EE[0], EE[1], 0.27]])  # ... but the depth image shows a surface just below its bottom
    assert plan_from_trace(to_trace(world), K, W2C, start, cfg, scene_points=surface).gripper_closed.any()


def test_recent_descent_measures_the_last_uninterrupted_descent():
    assert recent_descent([0.1, 0.3, 0.25, 0.2, 0.201, 0.1]) == pytest.approx(0.2)  # a 1 mm bump is noise
    assert recent_descent([0.3, 0.1, 0.2, 0.15]) == pytest.approx(0.05)  # a real rise ends the descent
    assert recent_descent([0.2]) == 0.0


def test_far_arm_link_drives_the_plan_when_the_gripper_is_hidden():
    rng = np.random.default_rng(10)
    S = 33
    link = EE + [0.0, 0.4, 0.2] + rng.uniform(-0.01, 0.01, (8, 3))  # 45 cm away: the only thing that moves
    table = np.stack([rng.uniform(-0.4, 0.4, 60), rng.uniform(-0.2, 0.4, 60), np.zeros(60)], 1)
    move = np.stack([np.linspace(0, 0.1, S), np.zeros(S), np.zeros(S)], -1)
    world = np.concatenate([link[:, None] + move, np.repeat(table[:, None], S, 1)])
    assert plan_from_trace(to_trace(world), K, W2C, EE).excursion == pytest.approx(0.1, abs=1e-6)
    assert plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(fallback_radius_m=0.3)).excursion < 1e-9


def hidden_effector_world(rng, S=9, onset=3, arm=None):
    """No grid point on the effector: an object 8 cm from it (7 cm lower) waits ``onset`` steps, then rises 15 cm
    (it is carried); ``arm`` (M, 3) adds a part that moves from the start. Returns world tracks and the object's
    index range."""
    obj = EE + [0.04, 0.0, -0.07] + rng.uniform(-0.005, 0.005, (6, 3))
    table = np.stack([rng.uniform(-0.4, 0.4, 60), rng.uniform(-0.2, 0.4, 60), np.zeros(60)], 1)
    rise = np.clip(np.arange(S) - onset + 1, 0, None) * 0.15 / (S - onset)
    obj_w = obj[:, None] + np.stack([np.zeros(S), np.zeros(S), rise], -1)
    parts = [obj_w, np.repeat(table[:, None], S, 1)]
    if arm is not None:
        parts.append(arm[:, None] + np.stack([np.linspace(0, 0.1, S), np.zeros(S), np.zeros(S)], -1))
    return np.concatenate(parts), slice(0, 6)


def test_a_hidden_effector_reaches_the_object_that_moves_then_carries_it():
    world, obj = hidden_effector_world(np.random.default_rng(11), onset=3)
    plan = plan_from_trace(to_trace(world), K, W2C, EE)
    seen = world[obj, 0].mean(0)
    camera = -W2C[:3, :3].T @ W2C[:3, 3]
    contact = seen + ExecutorConfig().reach_depth_m * (seen - camera) / np.linalg.norm(seen - camera)
    np.testing.assert_allclose(plan.grasp_position, contact, atol=1e-6)  # behind the object's seen face
    np.testing.assert_allclose(plan.positions[0], EE, atol=1e-9)
    np.testing.assert_allclose(plan.positions[2], contact, atol=1e-6)  # there by the last step before it moves
    assert plan.gripper_closed[3:].all() and not plan.gripper_closed[:3].any()
    np.testing.assert_allclose(plan.positions[-1] - plan.positions[2], [0, 0, 0.15], atol=1e-6)  # then carries it
    old = plan_from_trace(to_trace(world), K, W2C, EE, ExecutorConfig(reach_radius_m=0.0))
    assert not old.gripper_closed.any()  # the fallback: the object's motion, from where the effector is
    np.testing.assert_allclose(old.positions[-1] - EE, [0, 0, 0.15], atol=0.003)


def test_a_moving_part_at_the_effectors_height_or_a_nearer_arm_part_means_no_reach():
    rng = np.random.default_rng(12)
    level = EE + [0.0, 0.05, 0.0] + rng.uniform(-0.005, 0.005, (4, 3))  # 5 cm away, level: the effector's own
    world, obj = hidden_effector_world(rng, arm=level)
    plan = plan_from_trace(to_trace(world), K, W2C, EE)
    assert plan.grasp_position is None
    np.testing.assert_allclose(plan.positions[-1] - EE, [0.1, 0, 0], atol=0.003)
    wide = ExecutorConfig(reach_radius_m=0.3)  # objects beyond the effector radius may be reached too ...
    arm = EE + [0.0, 0.0, 0.11] + rng.uniform(-0.005, 0.005, (4, 3))  # ... unless an arm part above is nearer
    world, obj = hidden_effector_world(rng, arm=arm)
    world[obj] += [0.1, 0.0, 0.0]  # the object 13 cm away
    assert plan_from_trace(to_trace(world), K, W2C, EE, wide).grasp_position is None
    far = EE + [0.0, 0.0, 0.25] + rng.uniform(-0.005, 0.005, (4, 3))
    world, obj = hidden_effector_world(rng, arm=far)
    assert plan_from_trace(to_trace(world), K, W2C, EE, wide).grasp_position is not None


def press_plan(path, closed=None):
    positions = np.asarray(path, float)
    grip = np.zeros(len(positions), bool) if closed is None else np.asarray(closed)
    return Plan(positions, grip, np.arange(1), positions[None], None)


def test_a_final_press_is_the_last_descent_straight_down_followed_by_stillness():
    over, on = [0.0, 0.6, 0.3], [0.0, 0.6, 0.2]
    approach = [[0.2, 0.6, 0.3], [0.1, 0.6, 0.3], over]
    press = press_plan(approach + [[0.0, 0.6, 0.25], on, on, on])
    assert press.final_press_start(0.03) == 2  # from the step over the button: the sideways approach stays open
    assert press.final_press_start(0.2) is None  # a 10 cm press is not a 20 cm one
    pick = press_plan(approach + [on, [0.0, 0.6, 0.3]])  # down then up again: not a press
    assert pick.final_press_start(0.03) is None
    slanted = press_plan(approach + [[0.1, 0.6, 0.25], [0.2, 0.6, 0.2]])  # more sideways than down
    assert slanted.final_press_start(0.03) is None
    grasping = press_plan(approach + [on, on], closed=[False] * 4 + [True])  # a plan with a grasp is no press
    assert grasping.final_press_start(0.03) is None
