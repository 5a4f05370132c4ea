"""Meta-World v3 (3.1.1): all 50 tasks, their scripted experts, and the embodiment variants.

**Seeds.** ``reset(seed)`` gives the initial state of ``ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[task](seed=seed)``
-- the constructor the AVDC benchmark seeds its episodes with -- without rebuilding the environment: the
task's random vector is drawn from ``np.random.seed(seed)`` exactly as that constructor does (the global numpy
state is restored afterwards), then frozen, and the environment is reset once more, as the benchmark does
after construction (Meta-World's first observation after drawing a new task vector is stale). The simulator
state is cleared first, so an episode never depends on the previous one.

**Cameras.** ``topview``, ``corner``, ``corner2``, ``corner3``, ``corner4``, ``behindGripper``,
``gripperPOV``. The ``corner*`` cameras are re-aimed upright by default (same position and fov;
:mod:`tracegen.sim.cameras`).

One step is 12.5 ms of simulated time (frame skip 5 x 2.5 ms), so a recording at one frame per step is 80 fps.
"""

from __future__ import annotations

import warnings

import gymnasium
import mujoco
import numpy as np

from tracegen.sim.embodiments import compile_model, get_embodiment
from tracegen.sim.env import SimEnv, unknown_name

gymnasium.logger.min_level = 40  # silence observation-space warnings

import metaworld  # noqa: E402  (after silencing gymnasium)
from metaworld.policies import ENV_POLICY_MAP  # noqa: E402

TASKS: tuple[str, ...] = tuple(sorted(name.removesuffix("-v3") for name in metaworld.ALL_V3_ENVIRONMENTS))
CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")


def task_name(task: str) -> str:
    """Canonical task name without the version suffix: ``drawer-open-v3`` -> ``drawer-open``."""
    name = task.removesuffix("-v3")
    if name not in TASKS:
        raise unknown_name("Meta-World task", task, TASKS)
    return name


def _env_class(task: str, embodiment: str) -> type:
    """The task's environment class, compiled with the embodiment's edits when it is not the stock Sawyer."""
    base = metaworld.ALL_V3_ENVIRONMENTS[f"{task}-v3"]
    if embodiment == "sawyer":
        return base

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = compile_model(self.fullpath, embodiment)
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    return type(f"{base.__name__}_{embodiment}", (base,), {"_initialize_simulation": _initialize_simulation})


class MetaWorldEnv(SimEnv):
    suite = "metaworld"
    upright_cameras = ("corner", "corner2", "corner3", "corner4")
    fps = 80.0
    action_dim = 4

    def __init__(
        self,
        task: str,
        embodiment: str = "sawyer",
        height: int = 224,
        width: int = 224,
        fast_render: bool = True,
        max_steps: int = 500,
    ):
        task = task_name(task)
        get_embodiment(embodiment)
        super().__init__(task, embodiment, height, width, fast_render)
        env = _env_class(task, embodiment)()
        env._partially_observable = False  # goal-observable, as ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        env._set_task_called = True
        env.__dict__.pop("sawyer_observation_space", None)  # cached before the goal became observable
        self.env = env
        self.max_steps = min(max_steps, env.max_path_length)
        self.policy = ENV_POLICY_MAP[f"{task}-v3"]()
        self._obs: np.ndarray | None = None
        self._success = False

    @property
    def model(self) -> mujoco.MjModel:
        return self.env.model

    @property
    def data(self) -> mujoco.MjData:
        return self.env.data

    def reset(self, seed: int) -> None:
        env, saved = self.env, np.random.get_state()
        np.random.seed(seed)
        env._freeze_rand_vec, env.seeded_rand_vec = False, False
        try:
            mujoco.mj_resetData(env.model, env.data)
            env.reset()  # draws the task's random vector (its first observation is stale in Meta-World)
        finally:
            env._freeze_rand_vec = True
            np.random.set_state(saved)
        self._obs, _ = env.reset()  # same state, fresh observation: what the AVDC benchmark starts from
        self._success = False

    def step(self, action: np.ndarray) -> None:
        self._obs, _, _, _, info = self.env.step(np.asarray(action, dtype=np.float32))
        self._success = bool(info["success"])

    @property
    def episode_over(self) -> bool:
        return self.env.curr_path_length >= self.env.max_path_length  # Meta-World raises on a step past it

    def expert_action(self) -> np.ndarray:
        with warnings.catch_warnings():  # some policies warn that their gains exceed the action range
            warnings.simplefilter("ignore", UserWarning)
            action = self.policy.get_action(self._obs)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    @property
    def observation(self) -> np.ndarray:
        """The goal-observable Meta-World observation ``(39,)`` (what the scripted experts read)."""
        return self._obs

    @property
    def success(self) -> bool:
        return self._success

    def ee_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.body("hand").xmat.reshape(3, 3)
        T[:3, 3] = self.env.tcp_center
        return T

    @property
    def effector_body(self) -> int:
        return self.model.body("hand").id

    def gripper_opening(self) -> float:
        return float(self._obs[3])

    def close_sim(self) -> None:
        self.env.close()
