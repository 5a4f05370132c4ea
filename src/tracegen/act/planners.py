"""Planners: where a trace comes from at each replan — the learned model, the oracle (the scripted expert's real
future, exactly tracked in a copy of the simulator), or the nearest training trace (the baseline a model must beat).
The executor cannot tell them apart."""

from __future__ import annotations

import copy
from typing import Protocol

import mujoco
import numpy as np

from tracegen.sim.env import SimEnv
from tracegen.sim.gt_tracks import attach_grid, body_poses, world_points
from tracegen.sim.render import Frame
from tracegen.traces import (
    DEFAULT_GRID,
    DEFAULT_HORIZON,
    RetargetConfig,
    decode_deltas,
    grid_points,
    grid_start_depth,
    restore_speed,
    retarget,
    static_grid,
    world_to_reference,
)


class Planner(Protocol):
    name: str

    def begin_episode(self, seed: int) -> None:
        """A new episode starts from ``env.reset(seed)`` (called by :func:`tracegen.act.rollout.rollout`): a planner's
        randomness may depend on the episode, never on what ran before it in this process."""

    def plan(self, env: SimEnv, frame: Frame, K: np.ndarray, w2c: np.ndarray, instruction: str) -> np.ndarray:
        """A trace ``(N, S, 3)`` (u, v px; z m) in the camera (K, w2c) of ``frame``, S <= horizon + 1."""


def sampling_seed(planner_seed: int, episode_seed: int, plan: int) -> int:
    """The model's sampling seed for plan number ``plan`` (1-based) of episode ``episode_seed``: a 32-bit number that
    depends on these three (non-negative) integers only, well mixed (numpy's ``SeedSequence``)."""
    return int(np.random.SeedSequence([planner_seed, episode_seed, plan]).generate_state(1)[0])


class ModelPlanner:
    """TraceGen's prediction from the current RGB-D observation. Its sampling noise is a function of (``seed``, the
    episode's seed, the plan's number in the episode) only (:func:`sampling_seed`), so an episode plans the same
    traces whichever episodes ran before it, in this process or another. With ``restore_speed`` the prediction's
    moving steps get the retargeted step length back (:func:`tracegen.traces.restore_speed`: a model unsure of where
    or how soon things move predicts shorter steps than any retargeted trace has)."""

    name = "model"

    def __init__(
        self, model, steps: int | None = None, guidance: float | None = None, seed: int = 0, restore_speed: bool = False
    ):
        self.model, self.steps, self.guidance, self.seed = model, steps, guidance, seed
        self.restore_speed = restore_speed
        self.episode, self.calls = 0, 0  # the episode's seed; plans made in it so far

    def begin_episode(self, seed: int) -> None:
        self.episode, self.calls = seed, 0

    def plan(self, env: SimEnv, frame: Frame, K: np.ndarray, w2c: np.ndarray, instruction: str) -> np.ndarray:
        self.calls += 1
        pred = self.model.predict(
            frame.rgb,
            frame.depth,
            instruction,
            steps=self.steps,
            guidance=self.guidance,
            seed=sampling_seed(self.seed, self.episode, self.calls),
        )
        traj = pred.traj[0, 0]
        return restore_speed(traj, *frame.rgb.shape[:2]) if self.restore_speed else traj


class NeighbourPlanner:
    """The nearest-neighbour baseline in the closed loop: at each replan, the training triplet whose observation and
    instruction are closest to the current ones (:class:`tracegen.model.retrieval.RetrievalBank`, the
    baseline of ``tracegen eval-traces``), its increments replayed from the current observation's query grid and
    depth. It retrieves one of its demonstrations and never generalises; a model has to beat it to show that it does.

    ``examples``: the training triplets (:func:`tracegen.train.load_examples`); ``text``: a sentence encoder with
    ``encode(texts) -> (B, D)`` (the model's :class:`~tracegen.model.encoders.TextEncoder`)."""

    name = "neighbour"

    def __init__(self, examples: list, text, grid: int = DEFAULT_GRID):
        from tracegen.model.retrieval import RetrievalBank

        if not examples:
            raise ValueError("the neighbour planner needs at least one training triplet")
        grids = sorted({int(round(np.sqrt(len(e.x0)))) for e in examples})
        if grids != [grid]:
            raise ValueError(
                f"the neighbour planner's triplets have {'/'.join(f'{g}x{g}' for g in grids)} query "
                f"grids; the executor here expects {grid}x{grid}"
            )
        self.text, self.grid = text, grid
        self.image_size = examples[0].rgb.shape[-1]
        self.bank = RetrievalBank.from_examples(examples, text)

    def begin_episode(self, seed: int) -> None:
        """Nothing to do: retrieval has no randomness."""

    def plan(self, env: SimEnv, frame: Frame, K: np.ndarray, w2c: np.ndarray, instruction: str) -> np.ndarray:
        import torch

        from tracegen.model.data import resize_observation
        from tracegen.model.encoders import clean_instruction
        from tracegen.model.retrieval import retrieval_keys

        H, W = frame.rgb.shape[:2]
        rgb, _ = resize_observation(frame.rgb, None, self.image_size)
        text = torch.from_numpy(self.text.encode([clean_instruction(instruction)]))
        x = self.bank.retrieve(retrieval_keys(torch.from_numpy(rgb)[None] / 255.0, text))[0].double().numpy()
        start_z = None if frame.depth is None else grid_start_depth(frame.depth, self.grid)
        return decode_deltas(x, grid_points(H, W, self.grid), start_z, H, W)


class SimState:
    """Everything needed to put a simulated episode back where it was: MuJoCo's full physics state and the
    wrapper's own Python attributes (step counters, last observation)."""

    def __init__(self, env: SimEnv):
        self.spec = mujoco.mjtState.mjSTATE_INTEGRATION
        self.physics = np.empty(mujoco.mj_stateSize(env.model, self.spec))
        mujoco.mj_getState(env.model, env.data, self.physics, self.spec)
        self.python = [(obj, _plain_attributes(obj)) for obj in _stateful_objects(env)]

    def restore(self, env: SimEnv) -> None:
        mujoco.mj_setState(env.model, env.data, self.physics, self.spec)
        mujoco.mj_forward(env.model, env.data)
        for obj, attrs in self.python:
            for k, v in attrs.items():
                setattr(obj, k, copy.copy(v))


def _stateful_objects(env: SimEnv) -> list:
    inner = getattr(env, "env", None)
    return [env] + ([inner] if inner is not None else [])


def _plain_attributes(obj) -> dict:
    """Counters, flags and arrays (not models, renderers or policies)."""
    keep = (int, float, bool, np.ndarray, np.generic, type(None))
    return {k: copy.copy(v) for k, v in vars(obj).items() if isinstance(v, keep)}


class OraclePlanner:
    """The ceiling of the executor: roll the scripted expert forward from the current state in a copy of the
    simulation, track the query grid exactly (rigid attachment), retarget, and return the first ``horizon + 1`` points.
    """

    name = "oracle"

    def __init__(
        self,
        horizon_frames: int = 128,
        grid: int = DEFAULT_GRID,
        horizon: int = DEFAULT_HORIZON,
        retarget_config: RetargetConfig = RetargetConfig(),
    ):
        self.horizon_frames, self.grid, self.horizon, self.retarget = horizon_frames, grid, horizon, retarget_config

    def begin_episode(self, seed: int) -> None:
        """Nothing to do: the oracle's future is the simulator's own."""

    def plan(self, env: SimEnv, frame: Frame, K: np.ndarray, w2c: np.ndarray, instruction: str) -> np.ndarray:
        if frame.depth is None or frame.seg is None:
            raise ValueError("the oracle needs the frame's depth and segmentation (render with depth=True, seg=True)")
        saved = SimState(env)
        body, local = attach_grid(env.model, body_poses(env.data), K, w2c, frame.depth, frame.geom_ids(), self.grid)
        track = [world_points(body_poses(env.data), body, local)]
        try:
            for _ in range(self.horizon_frames - 1):
                if env.episode_over:  # the simulator's own episode limit: the future ends here
                    break
                env.step(env.expert_action())
                track.append(world_points(body_poses(env.data), body, local))
        finally:
            saved.restore(env)
        uvz = world_to_reference(np.stack(track, 1), K, w2c)  # (N, T, 3)
        background = body < 0  # rays that hit no surface: static, depth 0 (= no measurement)
        uvz[background] = static_grid(*frame.depth.shape, frame.depth, self.grid)[background, None]
        out = retarget(uvz, *frame.depth.shape, self.retarget)
        return out.traj[:, : min(out.num_valid, self.horizon + 1)]
