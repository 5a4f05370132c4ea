"""A tiny trace dataset shared by the model's training tests: four synthetic episodes of ground-truth traces."""

import pytest

from synthetic import synthetic_episode
from tracegen.forge.windows import gt_samples
from tracegen.io.trace_dataset import write_dataset


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ds"
    shards = [(f"ep{i}", gt_samples(synthetic_episode(T=30, speed=0.01 * (i + 1), seed=i))[0]) for i in range(4)]
    write_dataset(path, shards, grid=20, retarget={})
    return str(path)
