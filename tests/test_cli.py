"""The command line as a user runs it: a real subprocess, exit codes and one-line errors."""

import json
import subprocess
import sys

import pytest

from synthetic import synthetic_episode
from tracegen.io.episode import write_episode


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tracegen.cli", *map(str, args)], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("verb", [[], ["convert"], ["inspect"]])
def test_every_verb_has_help(verb):
    out = run(*verb, "--help")
    assert out.returncode == 0 and "Usage" in out.stdout


def test_convert_then_inspect(tmp_path):
    write_episode(tmp_path / "eps" / "ep0", synthetic_episode())
    out = run("convert", tmp_path / "eps", tmp_path / "official", "--to", "official")
    assert out.returncode == 0, out.stderr
    assert "samples: " in out.stdout
    out = run("inspect", tmp_path / "official", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["kind"] == "official" and summary["samples"] > 0
    assert "u_px_range" in run("inspect", tmp_path / "official").stdout


def test_invalid_data_exits_non_zero_with_one_line(tmp_path):
    write_episode(tmp_path / "ep", synthetic_episode())
    (tmp_path / "ep" / "rgb.mp4").write_bytes(b"\x00" * 100)
    out = run("inspect", tmp_path / "ep")
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and "rgb.mp4" in out.stderr
    out = run("forge", tmp_path / "nothing", "--out", tmp_path / "o")  # a missing source, the same way
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "nothing: does not exist" in out.stderr


def test_wrong_arguments_fail_before_work(tmp_path):
    out = run("convert", tmp_path, tmp_path / "x", "--to", "nonsense")
    assert out.returncode == 2 and "nonsense" in out.stderr
    assert not (tmp_path / "x").exists()
    out = run("inspect", tmp_path / "missing")
    assert out.returncode == 2 and "does not exist" in out.stderr


@pytest.mark.parametrize("flag, value, message", [("--workers", 0, "at least 1"), ("--videos", -1, "at least 0")])
def test_bench_refuses_a_bad_count_in_one_line_before_any_episode(tmp_path, flag, value, message):
    out = run("bench", "metaworld", "--planner", "oracle", "--json", tmp_path / "b.json", flag, value)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"error: {flag} must be {message}, not {value}")
    assert list(tmp_path.iterdir()) == []


def test_bench_refuses_an_unknown_executor_rule_in_one_line_before_any_episode(tmp_path):
    out = run("bench", "metaworld", "--planner", "oracle", "--json", tmp_path / "b.json", "--set", "executor.gian=2")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: unknown setting 'executor.gian'") and list(tmp_path.iterdir()) == []
