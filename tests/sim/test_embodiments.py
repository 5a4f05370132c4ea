import mujoco
import numpy as np
import pytest

from tracegen.sim.embodiments import EMBODIMENTS, effector_geoms
from tracegen.sim.env import make_env

SIZE = 96
VARIANTS = ("sawyer", "floating_gripper", "hand")


@pytest.fixture(scope="module")
def rollouts():
    """Same task, seed and expert with every embodiment: trajectories, images and robot masks."""
    out = {}
    for name in VARIANTS:
        with make_env("metaworld", "pick-place", name, SIZE, SIZE) as env:
            env.reset(1)
            states = [env.proprio()]
            for _ in range(25):
                env.step(env.expert_action())
                states.append(env.proprio())
            frame = env.render("corner3", seg=True)
            robot = np.isin(frame.geom_ids(), effector_geoms(env.model))
            out[name] = (np.stack(states), frame.rgb.astype(int), robot, env.model)
    return out


def test_variants_are_registered():
    assert set(VARIANTS) <= set(EMBODIMENTS)


def _collision_geoms(model) -> list[tuple]:
    return sorted(
        (
            model.body(model.geom_bodyid[g]).name,
            int(model.geom_type[g]),
            *model.geom_size[g].round(6),
            int(model.geom_contype[g]),
            int(model.geom_conaffinity[g]),
        )
        for g in range(model.ngeom)
        if model.geom_contype[g] or model.geom_conaffinity[g]
    )


def test_same_physics_and_motion(rollouts):
    base_states, *_, base_model = rollouts["sawyer"]
    for name in VARIANTS[1:]:
        states, *_, model = rollouts[name]
        assert np.array_equal(states, base_states), name  # bit-identical motion
        for field in ("body_mass", "body_inertia", "body_ipos"):
            assert np.array_equal(getattr(base_model, field), getattr(model, field)), (name, field)
        assert _collision_geoms(model) == _collision_geoms(base_model), name


def test_variants_change_the_effector_but_not_the_scene(rollouts):
    base_rgb, base_robot = rollouts["sawyer"][1], rollouts["sawyer"][2]
    for name in VARIANTS[1:]:
        rgb, robot = rollouts[name][1], rollouts[name][2]
        either = base_robot | robot
        scene = ~either
        assert np.abs(rgb - base_rgb)[scene].max() == 0, name  # everything else is pixel-identical
        changed = np.abs(rgb - base_rgb).max(-1)[either]
        assert (changed > 30).mean() > 0.3, name  # the robot region clearly differs


def test_hand_closes_with_the_gripper():
    with make_env("metaworld", "pick-place", "hand", SIZE, SIZE) as env:
        env.reset(0)
        fingers = [
            g
            for g in range(env.model.ngeom)
            if env.model.body(env.model.geom_bodyid[g]).name == "leftclaw"
            and env.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE
        ]
        thumb = [
            g
            for g in range(env.model.ngeom)
            if env.model.body(env.model.geom_bodyid[g]).name == "rightclaw"
            and env.model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE
        ]
        xpos = env.data.geom_xpos
        open_gap = np.linalg.norm(xpos[fingers[0]] - xpos[thumb[0]])
        for _ in range(15):
            env.step(np.array([0, 0, 0, 1.0], np.float32))
        assert len(fingers) == 4 and len(thumb) == 1
        assert np.linalg.norm(xpos[fingers[0]] - xpos[thumb[0]]) < open_gap - 0.01
