"""A planner for the benchmark's worker tests (``BenchConfig.planner_factory="dying_planner:make"``): it plans traces
in which nothing moves (so episodes end in a few steps) and kills its process, as a segfault would, when episode
:data:`DIE_ON_SEED` begins. A module of its own, so that a spawned worker process can import it (tests/ is on the
path)."""

import os

import numpy as np

from tracegen.traces import DEFAULT_HORIZON, static_grid

DIE_ON_SEED = 1


class StillOrDie:
    name = "still"

    def begin_episode(self, seed: int) -> None:
        if seed == DIE_ON_SEED:
            os._exit(3)

    def plan(self, env, frame, K, w2c, instruction) -> np.ndarray:
        still = static_grid(*frame.depth.shape, frame.depth)
        return np.repeat(still[:, None], DEFAULT_HORIZON + 1, 1)


def make(cfg) -> StillOrDie:
    return StillOrDie()
