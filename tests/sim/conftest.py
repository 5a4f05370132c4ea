"""Shared simulator fixtures: environments are built once per module (robosuite takes seconds to build)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

SIZE = 64  # tiny images keep every test to a few seconds


@pytest.fixture(scope="module")
def drawer_env():
    from tracegen.sim.env import make_env

    env = make_env("metaworld", "drawer-open", "sawyer", SIZE, SIZE)
    yield env
    env.close()


@pytest.fixture(scope="session")
def size() -> int:
    return SIZE


def _run_expert(env, seed: int, steps: int) -> np.ndarray:
    """Reset and run the expert for ``steps`` steps; returns the proprio states ``(steps + 1, 8)``."""
    env.reset(seed)
    states = [env.proprio()]
    for _ in range(steps):
        env.step(env.expert_action())
        states.append(env.proprio())
    return np.stack(states)


@pytest.fixture(scope="session")
def run_expert():
    return _run_expert
