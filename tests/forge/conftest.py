"""Fixtures of the TraceForge tests: tiny simulated episodes with exact ground truth, recorded once per session
(synthetic inputs are in ``forge_data``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).parent))  # forge_data, the synthetic inputs


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory) -> Path:
    """One Meta-World door-open episode (41 frames, 128 x 128, fixed camera ``corner3``) with ground truth."""
    from tracegen.sim.recorder import CorpusEntry, RecordConfig, record_group

    out = tmp_path_factory.mktemp("sim")
    cfg = RecordConfig(height=128, width=128, max_steps=40, keep_failures=True)
    result = record_group(CorpusEntry("metaworld", "door-open", "sawyer", ("corner3",), 1, 1000), out, cfg)
    assert result.written == 1, result.error
    return out


@pytest.fixture(scope="session")
def moving_dir(tmp_path_factory) -> Path:
    """The same demonstration filmed by a camera moving along a hand-held-like path (160 x 160)."""
    from tracegen.forge.simdata import record_moving

    out = tmp_path_factory.mktemp("moving")
    record_moving("metaworld", "door-open", "corner3", 1000, out, height=160, width=160, max_steps=40)
    return out
