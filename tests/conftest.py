"""Shared fixtures (tests/ is on sys.path, see pyproject.toml)."""

import pytest

from synthetic import synthetic_episode
from tracegen.io.episode import Episode


@pytest.fixture
def episode() -> Episode:
    return synthetic_episode()
