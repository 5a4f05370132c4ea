"""Dotted key=value settings on nested frozen dataclasses."""

import pytest

from tracegen.act.rollout import RolloutConfig
from tracegen.forge.config import ForgeConfig
from tracegen.settings import apply_settings, changed_settings, setting_keys


def test_nested_settings_keep_kinds_and_leave_the_rest():
    cfg = apply_settings(
        RolloutConfig(), ["gain=5", "executor.path_mode=rigid", 'executor.grasp_rules=["dip"]'], "executor.x"
    )
    assert cfg.gain == 5.0 and isinstance(cfg.gain, float)  # a whole number passes for a real one
    assert cfg.executor.path_mode == "rigid" and cfg.executor.grasp_rules == ("dip",)  # a list becomes a tuple
    assert cfg.executor.coherence_m == RolloutConfig().executor.coherence_m and cfg.max_replans == 40
    assert "executor.reach_radius_m" in setting_keys(cfg) and "executor" not in setting_keys(cfg)


@pytest.mark.parametrize(
    "item, message",
    [
        ("executor=1", "unknown setting 'executor'"),  # a whole section is not a setting
        ("latch_gripper=1", "latch_gripper takes a bool, not 1"),
        ("steps_per_plan=2.5", "steps_per_plan takes an int"),
        ("gian=3", "did you mean gain"),
        ("colour=red", "dotted names such as executor.x"),
    ],
)
def test_bad_settings_name_the_key(item, message):
    with pytest.raises(ValueError, match=message):
        apply_settings(RolloutConfig(), [item], "executor.x")


def test_the_configs_own_checks_still_run():
    with pytest.raises(ValueError, match="query_every must be >= 1"):
        apply_settings(ForgeConfig(), ["window.query_every=0"], "tracker.snap_radius")


def test_a_setting_without_a_default_keeps_the_config_hashable():
    cfg = apply_settings(ForgeConfig(), ["source.episodes=[0, 2]"], "tracker.snap_radius")
    assert cfg.source.episodes == (0, 2) and hash(cfg) and ForgeConfig.from_dict(cfg.to_dict()) == cfg


def test_changed_settings_lists_only_what_differs():
    cfg = apply_settings(RolloutConfig(), ["gain=10", "stuck_push_m=0", 'executor.grasp_rules=["dip"]'], "executor.x")
    assert changed_settings(cfg, RolloutConfig()) == {"stuck_push_m": 0.0, "executor.grasp_rules": ["dip"]}
