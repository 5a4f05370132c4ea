"""The arm's tracks read through its kinematics, on the real Sawyer of Meta-World."""

import dataclasses

import mujoco
import numpy as np
import pytest

from tracegen.act.executor import ExecutorConfig, effector_motion
from tracegen.act.kinematics import (
    ArmKinematics,
    BodyJacobians,
    KinematicFitConfig,
    arm_bodies,
    arm_joints,
    robot_bodies,
)
from tracegen.act.planners import OraclePlanner
from tracegen.act.rollout import PressMemory, RolloutConfig, finger_offsets, robot_pixels, rollout, scene_points
from tracegen.settings import apply_settings
from tracegen.sim.env import make_env
from tracegen.sim.gt_tracks import attach_grid, body_poses, world_points
from tracegen.sim.instructions import instructions


@pytest.fixture(scope="module")
def env():
    env = make_env("metaworld", "assembly", height=240, width=320)
    yield env
    env.close()


UNIFORM = KinematicFitConfig(near_effector_m=0)  # every attached track counts alike: exact tracks, an exact fit


def name(model, body):
    return mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(body))


def test_the_chain_is_the_arms_seven_joints_and_its_bodies_leave_the_fingers_out(env):
    m = env.model
    joints = arm_joints(m, env.effector_body)
    assert [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, int(j)) for j in joints] == [
        f"right_j{i}" for i in range(7)
    ]
    moved = {name(m, b) for b in np.flatnonzero(arm_bodies(m, joints))}
    assert {"right_l0", "right_l4", "hand"} <= moved
    assert not {"rightclaw", "leftclaw", "RoundNut", "world"} & moved  # fingers have joints of their own


def test_the_robot_as_a_camera_sees_it_adds_the_fingers_and_nothing_of_the_scene(env):
    m = env.model
    joints = arm_joints(m, env.effector_body)
    robot = {name(m, b) for b in np.flatnonzero(robot_bodies(m, joints))}
    assert {name(m, b) for b in np.flatnonzero(arm_bodies(m, joints))} < robot
    assert {"rightclaw", "leftclaw", "hand", "right_l0"} <= robot
    assert not {"RoundNut", "peg", "world"} & robot


def test_the_dip_rules_scene_without_the_robot_leaves_out_exactly_its_pixels(env):
    env.reset(0)
    frame = env.render("corner", depth=True, seg=True)
    K, w2c = env.intrinsics("corner"), env.extrinsics("corner")
    mask = robot_pixels(env, frame)
    geom = frame.geom_ids()
    bodies = {name(env.model, b) for b in np.unique(env.model.geom_bodyid[geom[mask]])}
    assert mask.sum() > 500 and {"hand", "rightpad", "leftpad"} <= bodies and "RoundNut" not in bodies
    cfg = RolloutConfig(scene_stride=1)
    whole, less = scene_points(frame, K, w2c, cfg), scene_points(frame, K, w2c, cfg, hidden=mask)
    assert len(whole) - len(less) == (mask & (frame.depth > 0) & (frame.depth < cfg.executor.max_depth_m)).sum()
    finger = env.data.xpos[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_BODY, "rightpad")]
    assert np.linalg.norm(whole - finger, axis=1).min() < 0.03  # the finger pad is in the whole scene ...
    assert np.linalg.norm(less - finger, axis=1).min() > np.linalg.norm(whole - finger, axis=1).min()  # ... not here
    assert robot_pixels(env, env.render("corner", depth=True)) is None  # no segmentation, no mask


def test_the_open_fingers_lie_either_side_of_the_tool_centre(env):
    env.reset(0)
    offsets = finger_offsets(env, env.ee_pose()[:3, 3])  # (F, 2) m: claws and pads, both sides
    assert len(offsets) == 4
    assert np.abs(offsets.mean(0)).max() < 0.005  # symmetric about the tool centre ...
    assert np.linalg.norm(offsets, axis=1).min() > 0.04 and np.linalg.norm(offsets, axis=1).max() < 0.06  # ~5 cm


def test_the_press_memory_keeps_the_scene_without_the_robot_and_the_open_hand(env):
    env.reset(0)
    K, w2c = env.intrinsics("corner"), env.extrinsics("corner")
    memory = PressMemory(RolloutConfig())
    frame = env.render("corner", depth=True, seg=True)
    unlabelled = dataclasses.replace(frame, seg=np.full_like(frame.seg, -1))  # e.g. a painted view's filled hole
    memory.observe(env, unlabelled, K, w2c)
    assert memory.heights.empty  # pixels that show no geom are not remembered
    memory.observe(env, frame, K, w2c)
    hand = env.data.xpos[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_BODY, "hand")]
    below = memory.heights.top(hand[:2], 0.05)
    assert np.isfinite(below) and below < hand[2] - 0.1  # around the hand: the scene, not the hand or its fingers
    open_reach = np.linalg.norm(memory.fingers, axis=1).max()
    for _ in range(40):
        env.step(np.array([0, 0, 0, 1.0], np.float32))  # close the gripper
    memory.observe(env, env.render("corner", depth=True, seg=True), K, w2c)
    assert np.linalg.norm(finger_offsets(env, env.ee_pose()[:3, 3]), axis=1).max() < open_reach - 0.02  # closed ...
    assert np.linalg.norm(memory.fingers, axis=1).max() == open_reach  # ... the memory keeps the open hand's


def arm_motion(env, camera, action, steps=25, every=5):
    """Grid tracks ``(N, S, 3)`` of a real arm motion seen by ``camera``, their bodies, the true tool centre point
    ``(S, 3)`` and the joint positions at the start."""
    env.reset(0)
    frame = env.render(camera, depth=True, seg=True)
    K, w2c = env.intrinsics(camera), env.extrinsics(camera)
    body, local = attach_grid(env.model, body_poses(env.data), K, w2c, frame.depth, frame.geom_ids())
    qpos = env.data.qpos.copy()
    points, tcp = [world_points(body_poses(env.data), body, local)], [env.ee_pose()[:3, 3]]
    for t in range(steps):
        env.step(np.asarray(action, np.float32))
        if (t + 1) % every == 0:
            points.append(world_points(body_poses(env.data), body, local))
            tcp.append(env.ee_pose()[:3, 3])
    return np.stack(points, 1), body, np.stack(tcp), qpos


def test_the_fit_finds_the_tool_from_the_arm_links_when_the_grid_misses_the_gripper(env):
    world, body, tcp, qpos = arm_motion(env, "corner2", [0.5, 0.7, -0.4, -1.0])
    arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, UNIFORM)
    path, fitted = arm.fit(world, min_motion_m=0.01)
    names = {name(env.model, b) for b in body[fitted]}
    assert "hand" not in names and "right_l4" in names  # far away, the 20 x 20 grid has no point on the gripper
    err = np.linalg.norm(path - tcp, axis=1)
    nearest = fitted[np.argmin(np.linalg.norm(world[fitted, 0] - tcp[0], axis=1))]
    link_err = np.linalg.norm(tcp[0] + world[nearest] - world[nearest, :1] - tcp, axis=1)  # the nearest link's motion
    motion = np.linalg.norm(tcp[-1] - tcp[0])
    assert motion > 0.15
    # the wrist is unseen, so the hand's small tilt under fast motion (a few degrees) is the error left
    assert err.max() < 0.15 * motion and err.max() < 0.6 * link_err.max()


def test_with_the_gripper_in_view_the_fit_is_within_a_centimetre(env):
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0])
    path, fitted = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, UNIFORM).fit(world, 0.01)
    assert {"right_hand", "right_l6"} & {name(env.model, b) for b in body[fitted]}  # the wrist is seen
    assert np.linalg.norm(path - tcp, axis=1).max() < 0.01


def test_a_trace_the_arm_cannot_make_is_refitted_towards_the_tool(env):
    """Exact tracks: the arm explains them (RMS under a centimetre), and the fit is the plain one. A prediction errs
    on the far links (here: every arm track starting over 30 cm from the tool drifts 6 cm sideways): refitted with
    the tracks near the tool weighing most, the tool centre point stays nearer the truth than with all alike. Seen
    from far (no track near the tool), a noisy trace moves the tool only part of the way: a cautious step, the
    longer the more iterations the fit takes."""
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0])
    uniform = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, UNIFORM)
    default = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body)  # near_effector_m=0.1
    np.testing.assert_allclose(default.fit(world, 0.01)[0], uniform.fit(world, 0.01)[0])

    idx, _ = uniform.attach(world[:, 0])
    distance = np.linalg.norm(world[idx, 0] - tcp[0], axis=1)
    np.testing.assert_allclose(default.track_weights(world[idx, 0]), np.exp(-distance / 0.1), rtol=1e-6)
    noisy = world.copy()
    noisy[idx[distance > 0.3]] += np.linspace(0, 1, world.shape[1])[:, None] * np.array([0.06, -0.06, 0.0])
    err_uniform = np.linalg.norm(uniform.fit(noisy, 0.01)[0] - tcp, axis=1).max()
    err_default = np.linalg.norm(default.fit(noisy, 0.01)[0] - tcp, axis=1).max()
    assert err_default < 0.6 * err_uniform and err_uniform > 0.04

    world, body, tcp, qpos = arm_motion(env, "corner2", [0.5, 0.7, -0.4, -1.0])
    noise = np.random.default_rng(0).normal(0, 0.03, world.shape) * np.linspace(0, 1, world.shape[1])[:, None]
    motion, fitted = tcp[-1] - tcp[0], {}
    for iterations in (8, 64):
        cfg = KinematicFitConfig(iterations=iterations)
        far = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, cfg).fit(world + noise, 0.01)[0]
        fitted[iterations] = far[-1] - far[0]
        assert fitted[iterations] @ motion > 0
    assert np.linalg.norm(fitted[8]) < 0.5 * np.linalg.norm(motion)
    assert np.linalg.norm(fitted[8]) < np.linalg.norm(fitted[64]) < np.linalg.norm(motion)


def test_the_quick_check_tells_a_trace_the_arm_can_make_from_one_it_cannot(env):
    """The plain fit of every fourth step (``check_stride``) gives the verdict of a fit of every step: exact tracks
    are consistent, tracks whose far links drift 6 cm are not."""
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0])
    noisy, paths = world.copy(), {}
    for stride in (1, 4):
        arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, KinematicFitConfig(check_stride=stride))
        idx, tracks, bodies, local = arm.attached_tracks(world, 0.01)
        far = np.linalg.norm(tracks[:, 0] - tcp[0], axis=1) > 0.3
        noisy[idx[far]] = world[idx[far]] + np.linspace(0, 1, world.shape[1])[:, None] * np.array([0.06, -0.06, 0.0])
        assert arm.consistent(tracks, bodies, local)
        assert not arm.consistent(noisy[idx], bodies, local)
        q_end = arm.effector_path(tracks, bodies, local, np.ones(len(idx)))[1]
        assert arm.residual_rms(q_end, tracks[:, -1], bodies, local) < 0.005
        fits = []  # a consistent trace's path: the check's own fit when it fitted every step, else one more fit
        arm.effector_path = lambda *args, f=arm.effector_path, fits=fits: fits.append(args[0].shape[1]) or f(*args)
        paths[stride] = arm.fit(world, 0.01)[0]
        S = world.shape[1]
        assert fits == ([S] if stride == 1 else [len(set(range(0, S, 4)) | {S - 1}), S])
    np.testing.assert_allclose(paths[1], paths[4])
    with pytest.raises(ValueError, match="check_stride"):
        KinematicFitConfig(check_stride=0)


def test_no_fit_without_tracks_on_the_arm_or_without_motion(env):
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0], steps=5)
    arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], np.full_like(body, -1))
    assert arm.fit(world, min_motion_m=0.01) is None  # no track starts on the arm
    still = np.repeat(world[:, :1], world.shape[1], axis=1)
    assert ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body).fit(still, min_motion_m=0.01) is None


def test_the_oracle_solves_a_far_camera_pick_that_the_effector_tracks_alone_cannot(env):
    """assembly on `corner2`, seed 0: no grid point on the gripper or the nut; the nearest arm link's motion took the
    nut half a metre away from the peg. (The snap to the object under a dip rescues that path's grasp too: off.)"""
    instruction = instructions("metaworld", "assembly")[0]
    results = {}
    for mode in ("off", "always"):
        settings = [f"executor.kinematic_path={mode}", "executor.dip_snap_m=0"]
        cfg = apply_settings(RolloutConfig(), settings, example="executor.path_mode")
        results[mode] = rollout(env, OraclePlanner(), "corner2", 0, instruction, cfg)
    assert results["always"].success and not results["off"].success


def test_the_same_executor_drives_a_robosuite_arm():
    """robosuite's Panda through its own action space (OSC deltas, SimEnv.effector_action): the oracle's traces,
    the kinematic path and the closed loop lift the cube."""
    env = make_env("robosuite", "Lift", embodiment="Panda", height=120, width=160)
    try:
        cfg = RolloutConfig(max_env_steps=120, max_replans=6)
        result = rollout(env, OraclePlanner(), "frontview", 0, instructions("robosuite", "Lift")[0], cfg)
    finally:
        env.close()
    assert result.success, result.reason


def test_hidden_fits_only_when_no_track_near_the_effector_moves(env):
    for camera, seen in (("corner", True), ("corner2", False)):
        world, body, tcp, qpos = arm_motion(env, camera, [0.5, 0.7, -0.4, -1.0])
        w2c = env.extrinsics(camera)
        depth = world[:, 0] @ w2c[2, :3] + w2c[2, 3]  # (N,) start depth in the camera
        arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body)
        _, fitted = arm.fit(world, min_motion_m=0.01)
        for mode in ("always", "hidden", "off"):
            tracks, path = effector_motion(world, tcp[0], depth, ExecutorConfig(kinematic_path=mode), arm)
            uses_fit = len(tracks) == len(fitted) and (tracks == fitted).all()
            assert uses_fit == (mode == "always" or (mode == "hidden" and not seen)), (camera, mode)


def test_the_fits_normal_equations_match_finite_differences(env):
    """Each iteration's system against central differences of the fit's cost: g is its gradient, and at a pose whose
    points land on their targets, H - damping I is its Hessian (JᵀJ); the held orientation's term is first-order
    (small-angle form)."""
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0], steps=5)

    def system(cfg, targets, dq=0.0):
        arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, cfg)
        idx, local = arm.attach(world[:, 0])
        jacobians = BodyJacobians(env.model, arm.data, np.append(body[idx], env.effector_body))
        weight = np.random.default_rng(0).uniform(0.2, 1.0, len(idx))
        arm._set(arm.q0 + 0.01 + dq, jacobians=True)  # off the goal orientation: its term is not trivially zero
        if targets is None:  # where the points are now: a zero residual
            targets = arm._attached_points(body[idx], local)
        return arm._normal_equations(body[idx], local, targets, weight, jacobians), targets

    def differences(cfg, targets, value):  # (J, ...) central differences of value(H, g, cost)
        columns = []
        for j in range(7):
            dq = np.zeros(7)
            dq[j] = 1e-6
            plus, minus = system(cfg, targets, dq)[0], system(cfg, targets, -dq)[0]
            columns.append((value(*plus) - value(*minus)) / 2e-6)
        return np.array(columns)

    points_only = KinematicFitConfig(orientation_weight_m=0.0, damping=1e-3)
    (H, g, _), targets = system(points_only, None)
    far = targets + 0.05  # every point 8.7 cm off its target
    (_, g_far, _), _ = system(points_only, far)
    np.testing.assert_allclose(g_far, differences(points_only, far, lambda H, g, c: c), rtol=1e-6, atol=1e-9)
    assert np.abs(g).max() < 1e-12  # at zero residual: no gradient, and the Hessian is JᵀJ
    np.testing.assert_allclose(H - 1e-3 * np.eye(7), differences(points_only, targets, lambda H, g, c: g), atol=1e-7)
    held = KinematicFitConfig()  # the orientation too (the points still on their targets)
    (_, g_held, _), _ = system(held, targets)
    np.testing.assert_allclose(g_held, differences(held, targets, lambda H, g, c: c), rtol=0.02, atol=1e-7)
    assert np.abs(g_held).max() > 1e-5


def test_a_trace_beyond_the_joints_limits_is_fitted_within_them(env):
    """Tracks pulled far beyond what the arm can reach: the fitted pose is the one taken, within the joints' limits
    (a joint held at its limit has stopped moving, whatever step the solver asks of it)."""
    world, body, tcp, qpos = arm_motion(env, "corner", [0.5, 0.7, -0.4, -1.0])
    arm = ArmKinematics(env.model, qpos, env.effector_body, tcp[0], body, UNIFORM)
    idx, _, bodies, local = arm.attached_tracks(world, 0.01)
    far = world[idx] + np.linspace(0, 1, world.shape[1])[:, None] * np.array([0.0, 0.0, 3.0])  # 3 m straight up
    path, q = arm.effector_path(far, bodies, local, np.ones(len(idx)))
    lo, hi = env.model.jnt_range[arm.joints].T
    limited = env.model.jnt_limited[arm.joints].astype(bool)
    assert (((q >= lo) & (q <= hi)) | ~limited).all()
    assert ((np.isclose(q, lo) | np.isclose(q, hi)) & limited).any()  # the trace drove a joint to its limit
    arm._set(q)
    R, p = arm._pose(env.effector_body)
    np.testing.assert_allclose(path[-1], p + R @ arm.tcp_local)  # the path's last point is that pose's tool
