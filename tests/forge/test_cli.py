"""``tracegen forge`` / ``forge-eval``: the commands work end to end, and a wrong argument fails before any work."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tracegen.errors import DataError
from tracegen.forge.cli import app, parse_episodes

runner = CliRunner()


def flat(output: str) -> str:
    """Typer's error box without its frame and line breaks."""
    return " ".join(output.replace("│", " ").split())


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_forge_and_forge_eval_on_simulated_episodes(tmp_path, sim_dir):
    result = invoke(
        "forge",
        sim_dir,
        "--out",
        tmp_path / "out",
        "--no-progress",
        "--set",
        "tracker.snap_max_run=3",
        "--set",
        "window.retarget.step=0.04",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["episodes_out"] == 1
    saved = json.loads((tmp_path / "out" / "forge_config.json").read_text())  # the settings are the run's own
    assert saved["tracker"]["snap_max_run"] == 3 and saved["window"]["retarget"]["step"] == 0.04
    result = invoke(
        "forge-eval", "--episodes", sim_dir, "--json", tmp_path / "eval.json", "--no-progress", "--workers", "1"
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    for key in (
        "moving_within_4px",
        "moving_median_px",
        "lk_moving_within_4px",
        "err3d_median_cm",
        "err3d_p90_cm",
        "clips_per_min",
        "episodes",
    ):
        assert report[key] is not None, key
    assert report["episodes"] == 1 and report["stage_seconds_per_clip"]["tracker"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--camera", "telepathy"], "telepathy"),
        (["--workers", "0"], "workers"),
        (["--tracker", "cotracker3"], "CoTracker3 weights not found"),
        (["--depth", "vggt", "--weights", "{tmp}"], "VGGT weights not found"),
        (["--episodes", "1-x"], "--episodes must look like"),
        (["--intrinsics", "{tmp}/nope.json"], "nope.json"),
        (["--set", "tracker.snap_radiu=0"], "did you mean tracker.snap_radius?"),
        (["--set", "tracker.snap_radius"], "is not key=value"),
        (["--set", "tracker.kind=telepathy"], "unknown tracker 'telepathy'"),
        (["--set", "snap_radius=1"], "did you mean tracker.snap_radius?"),
        (["--set", "colour=red"], "dotted names such as tracker.snap_radius"),
        (["--set", "tracker.snap_radius=wide"], "setting tracker.snap_radius takes an int, not 'wide'"),
        (["--set", "tracker.surface_depth=1"], "setting tracker.surface_depth takes a bool, not 1"),
        (["--set", "tracker.snap_radius=1px"], "'1px' is not a number, list or true/false/null"),
    ],
)
def test_wrong_arguments_fail_before_any_work(tmp_path, sim_dir, monkeypatch, args, message):
    monkeypatch.delenv("TRACEGEN_WEIGHTS", raising=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["forge", str(sim_dir), "--out", str(out)] + [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2
    assert message in flat(result.output)
    assert not out.exists()  # nothing was started


def test_missing_source_and_episode_ranges(tmp_path):
    with pytest.raises(DataError, match="nothing: does not exist"):  # (the command prints it in one line, exit 2)
        runner.invoke(app, ["forge", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")], catch_exceptions=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips found"):
        runner.invoke(app, ["forge", str(tmp_path / "empty"), "--out", str(tmp_path / "o")], catch_exceptions=False)
    assert not (tmp_path / "o").exists()
    assert parse_episodes("0,2,5-7") == (0, 2, 5, 6, 7) and parse_episodes(None) is None
