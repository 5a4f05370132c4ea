"""robosuite 1.5.2 tasks with six arms behind the :class:`~tracegen.sim.env.SimEnv` interface.

The environment is built once (1.5-3.5 s) with ``hard_reset=False`` and re-seeded per episode: ``reset(seed)``
rewinds robosuite's random generator (object placements, joint noise) to ``default_rng(seed)`` in place, so
the same seed always gives the same initial state. Control: the default BASIC composite controller,
operational-space pose control with delta inputs at 20 Hz; actions are 7-D ``[dx, dy, dz, drx, dry, drz,
gripper]`` in [-1, 1] (``1`` = 5 cm / 0.5 rad; gripper -1 open, +1 closed). Rendering goes through tracegen's
renderer on robosuite's raw MuJoCo model, showing the visual geoms (group 1) only, as robosuite does.

Cameras: ``frontview``, ``birdview``, ``agentview``, ``sideview``, ``robot0_robotview``,
``robot0_eye_in_hand``.
"""

from __future__ import annotations

import logging

import mujoco
import numpy as np

from tracegen.sim.env import SimEnv, unknown_name

TASKS = ("Lift", "Stack", "Door", "PickPlaceCan", "NutAssemblySquare")
ROBOTS = ("Panda", "Sawyer", "IIWA", "UR5e", "Jaco", "Kinova3")
CAMERAS = ("frontview", "birdview", "agentview", "sideview", "robot0_robotview", "robot0_eye_in_hand")
CONTROL_FREQ = 20
COMMAND_GAIN = 3.0  # OSC position units per unit of an effector command (SimEnv.effector_action)
HORIZON = {"Lift": 300, "Stack": 400, "Door": 300, "PickPlaceCan": 500, "NutAssemblySquare": 500}  # at 20 Hz


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _quiet_robosuite() -> None:
    """Drop robosuite's import-time warnings (optional packages, private macro file) and controller INFO
    lines. A filter on its logger survives the handlers and levels robosuite sets up when imported."""
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _ErrorsOnly) for f in logger.filters):
        logger.addFilter(_ErrorsOnly())


def _descends(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    """Is ``body`` ``ancestor`` or one of its descendants?"""
    while body != ancestor and body > 0:
        body = model.body_parentid[body]
    return body == ancestor


class RobosuiteEnv(SimEnv):
    suite = "robosuite"
    visible_geom_groups = (1,)
    fps = float(CONTROL_FREQ)
    action_dim = 7

    def __init__(
        self,
        task: str,
        robot: str = "Panda",
        height: int = 224,
        width: int = 224,
        fast_render: bool = True,
        max_steps: int | None = None,
    ):
        if task not in TASKS:
            raise unknown_name("robosuite task", task, TASKS)
        if robot not in ROBOTS:
            raise unknown_name("robosuite robot", robot, ROBOTS)
        super().__init__(task, robot, height, width, fast_render)
        _quiet_robosuite()
        import robosuite

        self.max_steps = max_steps or HORIZON[task]
        self.env = robosuite.make(
            task,
            robots=robot,
            has_renderer=False,
            has_offscreen_renderer=False,
            use_camera_obs=False,
            use_object_obs=True,
            control_freq=CONTROL_FREQ,
            horizon=self.max_steps + 1,
            hard_reset=False,
            ignore_done=True,
            reward_shaping=False,
            seed=0,
        )
        self.robot = self.env.robots[0]
        self._free_base()
        self._eef_site = self.robot.eef_site_id["right"]
        self._pads = self._pad_geoms()
        self._expert = None
        self._success = False

    @property
    def model(self) -> mujoco.MjModel:
        return self.env.sim.model._model

    @property
    def data(self) -> mujoco.MjData:
        return self.env.sim.data._data

    def reset(self, seed: int) -> None:
        from tracegen.sim.experts import make_expert

        # All of robosuite's randomness (placements, joint noise) draws from env.rng; rewind it in place,
        # since the placement samplers hold references to the same generator.
        self.env.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        gripper = self.robot.gripper["right"]
        gripper.current_action = np.zeros(gripper.dof)  # robosuite never resets this integrated command
        self.env.reset()
        self._success = False
        self._expert = make_expert(self)

    def step(self, action: np.ndarray) -> None:
        self.env.step(np.asarray(action, dtype=np.float64))
        self._success = bool(self.env._check_success())

    def expert_action(self) -> np.ndarray:
        return np.clip(next(self._expert), -1.0, 1.0).astype(np.float32)

    @property
    def success(self) -> bool:
        return self._success

    def ee_pose(self) -> np.ndarray:
        T = np.eye(4)
        T[:3, :3] = self.data.site_xmat[self._eef_site].reshape(3, 3)
        T[:3, 3] = self.data.site_xpos[self._eef_site]
        return T

    def effector_action(self, command: np.ndarray) -> np.ndarray:
        """OSC action ``(7,)``: the command's displacement in the base frame at the waypoint expert's gain (its
        1.5 / 0.05 m per unit against the executor's 10 per metre: ``COMMAND_GAIN``; so a command beyond 1/3
        saturates), no rotation (the controller is sent none; its orientation may drift), and the gripper effort
        (positive closes, as in Meta-World)."""
        move = self.base_rotation().T @ (COMMAND_GAIN * np.asarray(command[:3], np.float64))
        return np.concatenate([np.clip(move, -1.0, 1.0), np.zeros(3), [float(command[3])]])

    @property
    def effector_body(self) -> int:
        return int(self.model.site_bodyid[self._eef_site])

    def gripper_opening(self) -> float:
        """Finger-pad distance / 10 cm, clipped to [0, 1] (Meta-World's definition)."""
        return float(np.clip(self.pad_distance() / 0.1, 0.0, 1.0))

    def close_sim(self) -> None:
        self.env.close()

    def _free_base(self) -> None:
        """Turn off collisions of the robot's fixed base geoms. robosuite's Sawyer rests with its first link
        touching the base, and the contact's friction stalls the base joint under operational-space control;
        nothing else ever reaches the base, so this changes no task."""
        m = self.model
        root = m.body(self.robot.robot_model.root_body).id
        in_robot = np.array([_descends(m, b, root) for b in range(m.nbody)])
        base_geoms = (in_robot & (m.body_weldid == 0))[m.geom_bodyid]  # robot bodies welded to the world
        m.geom_contype[base_geoms] = 0
        m.geom_conaffinity[base_geoms] = 0

    # ------------------------------------------------------------------ helpers for the experts

    def _pad_geoms(self) -> tuple[np.ndarray, np.ndarray]:
        geoms = self.robot.gripper["right"].important_geoms

        def ids(side: str) -> np.ndarray:
            return np.array([self.model.geom(name).id for name in geoms[f"{side}_fingerpad"]])

        return ids("left"), ids("right")

    def pad_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """World positions ``(3,)`` of the left and right finger pads (mean over a side's pads)."""
        xpos = self.data.geom_xpos
        return xpos[self._pads[0]].mean(0), xpos[self._pads[1]].mean(0)

    def pad_distance(self) -> float:
        left, right = self.pad_centres()
        return float(np.linalg.norm(left - right))

    def body_pos(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def body_mat(self, name: str) -> np.ndarray:
        return self.data.body(name).xmat.reshape(3, 3).copy()

    def site_pos(self, name: str) -> np.ndarray:
        return self.data.site(name).xpos.copy()

    def base_rotation(self) -> np.ndarray:
        """``(3, 3)`` robot base -> world rotation (OSC deltas are expressed in the base frame)."""
        return np.asarray(self.robot.base_ori).reshape(3, 3)
