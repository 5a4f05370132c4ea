"""Paired comparison of two bench runs: counts, the exact sign test, unpaired episodes, bad logs."""

import json
import math

import pytest
from typer.testing import CliRunner

from tracegen.bench.compare import compare_runs, markdown, sign_test_p, tally
from tracegen.cli import app
from tracegen.errors import DataError


def write_run(path, outcomes):
    """A bench result file and its per-episode log: ``outcomes`` maps (task, camera, seed) -> success."""
    path.write_text(json.dumps({"planner": "model"}))
    lines = [json.dumps({"task": t, "camera": c, "seed": s, "success": ok}) for (t, c, s), ok in outcomes.items()]
    path.with_suffix(".episodes.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_sign_test_matches_the_binomial_by_hand():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 5) == 1.0
    assert sign_test_p(9, 1) == pytest.approx(2 * (1 + 10) / 2**10)
    assert sign_test_p(1, 9) == sign_test_p(9, 1)
    assert sign_test_p(10, 0) == pytest.approx(2 / 2**10)
    assert tally([(False, True)] * 30)["p"] == pytest.approx(2 / 2**30, rel=1e-2)  # not rounded to 0


def test_episodes_pair_by_task_camera_and_seed(tmp_path):
    base = {("door-open", "corner", s): s < 5 for s in range(10)}  # 5 successes: seeds 0-4
    base |= {("hammer", "corner2", s): False for s in range(10)}
    cand = {("door-open", "corner", s): s % 2 == 0 for s in range(10)}  # seeds 0, 2, 4, 6, 8
    cand |= {("hammer", "corner2", s): s < 7 for s in range(10)}
    cand[("hammer", "corner2", 99)] = True  # not in the baseline: left out
    r = compare_runs(write_run(tmp_path / "a.json", base), write_run(tmp_path / "b.json", cand))
    door, hammer, overall = r["per_task"]["door-open"], r["per_task"]["hammer"], r["overall"]
    assert (door["baseline"], door["candidate"], door["won"], door["lost"]) == (5, 5, 2, 2)  # won 6, 8; lost 1, 3
    assert (hammer["won"], hammer["lost"], hammer["episodes"]) == (7, 0, 10)
    assert (overall["episodes"], overall["won"], overall["lost"]) == (20, 9, 2)
    assert overall["z"] == pytest.approx(7 / math.sqrt(11), abs=0.01)
    assert r["per_camera"]["corner2"]["won"] == 7
    assert (r["only_in_baseline"], r["only_in_candidate"]) == (0, 1)


def test_the_settings_that_differ_are_named(tmp_path):
    episodes = {("door-open", "corner", 0): True}
    a, b = write_run(tmp_path / "a.json", episodes), write_run(tmp_path / "b.json", episodes)
    assert compare_runs(a, b)["differences"] == f"unknown ({tmp_path / 'a.settings.json'}: file not found)"
    settings = {"planner": "neighbour", "checkpoint": None, "rollout": None, "rules": {"path_mode": "mean"}}
    (tmp_path / "a.settings.json").write_text(json.dumps(settings))
    (tmp_path / "b.settings.json").write_text("[1, 2]")
    assert compare_runs(a, b)["differences"].endswith("b.settings.json: not a JSON object)")
    (tmp_path / "b.settings.json").write_text(
        json.dumps(settings | {"rollout": {"path_mode": "median"}} | {"rules": {"path_mode": "median"}})
    )
    r = compare_runs(a, b.with_suffix(".episodes.jsonl"))  # found beside the log too
    assert r["differences"] == "rules.path_mode: 'mean' -> 'median'"  # once: "rollout" repeats "rules"
    assert "Settings that differ: rules.path_mode" in markdown(r)
    # two models: their checkpoints' training settings too, not how the training ran
    for name, seed, threads in (("a", 0, 1), ("b", 1, 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "train_config.json").write_text(json.dumps({"seed": seed, "threads": threads, "model": {}}))
        model = {"retrieval": True, "dim": 128 if name == "a" else 64}  # as built: b's shape came from an --init
        (tmp_path / name / "config.json").write_text(json.dumps({"model": model}))
        (tmp_path / f"{name}.settings.json").write_text(json.dumps(settings | {"checkpoint": str(tmp_path / name)}))
    r = compare_runs(a, b)
    assert r["differences"] == (
        f"checkpoint: '{tmp_path / 'a'}' -> '{tmp_path / 'b'}', checkpoint.model.dim: 128 -> 64, "
        "checkpoint.train.seed: 0 -> 1"
    )
    (tmp_path / "b.settings.json").write_text(json.dumps(settings | {"checkpoint": str(tmp_path / "a")}))
    assert "Settings that differ: none recorded" in markdown(compare_runs(a, b))
    # the code that ran the episodes: one run resumed under a newer commit shows both
    log = b.with_suffix(".episodes.jsonl")
    log.write_text(
        json.dumps({"task": "door-open", "camera": "corner", "seed": 0, "success": True, "code": "0.1.0+gabc"})
    )
    assert compare_runs(a, b)["differences"] == "code: ['unrecorded'] -> ['0.1.0+gabc']"


def test_a_log_cut_by_a_kill_or_logged_twice_counts_each_episode_once(tmp_path):
    a = write_run(tmp_path / "a.json", {("door-open", "corner", 0): False})
    b = write_run(tmp_path / "b.json", {("door-open", "corner", 0): False})
    with open(b.with_suffix(".episodes.jsonl"), "a") as f:
        f.write(json.dumps({"task": "door-open", "camera": "corner", "seed": 0, "success": True}) + "\n")
        f.write('{"task": "door-op')  # cut by a kill
    r = compare_runs(a, b.with_suffix(".episodes.jsonl"))  # the log itself is accepted too
    assert (r["overall"]["episodes"], r["overall"]["won"]) == (1, 1)  # the last record of the episode


def test_bad_input_names_the_file(tmp_path):
    a = write_run(tmp_path / "a.json", {("door-open", "corner", 0): True})
    with pytest.raises(DataError, match="missing.json: no per-episode log"):
        compare_runs(a, tmp_path / "missing.json")
    other = write_run(tmp_path / "other.json", {("hammer", "corner", 0): True})
    with pytest.raises(DataError, match="other.json: shares no episode"):
        compare_runs(a, other)
    bad = tmp_path / "bad.episodes.jsonl"
    bad.write_text(json.dumps({"step": 3, "loss": 0.1}) + "\n")
    with pytest.raises(
        DataError, match="bad.episodes.jsonl: not a bench episode \\(no field task, camera, seed, success\\)"
    ):
        compare_runs(a, bad)
    bad.write_text("3\n")  # JSON, but not a record
    with pytest.raises(DataError, match="not a bench episode"):
        compare_runs(a, bad)


def test_cli_prints_the_table_and_writes_json(tmp_path):
    a = write_run(tmp_path / "a.json", {("door-open", "corner", s): False for s in range(3)})
    b = write_run(tmp_path / "b.json", {("door-open", "corner", s): True for s in range(3)})
    out = tmp_path / "cmp.json"
    res = CliRunner().invoke(app, ["bench", "compare", str(a), str(b), "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "| **overall** | 3 | 0 | 3 | 3 | 0 | 1.73 | 0.25 |" in res.output
    assert json.loads(out.read_text())["overall"]["won"] == 3


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from tracegen.cli import main

    a = write_run(tmp_path / "a.json", {("door-open", "corner", 0): True})
    binary = tmp_path / "bin.episodes.jsonl"
    binary.write_bytes(b"\xff\xfe\x00junk")
    for other, problem in ((tmp_path / "missing.json", "no per-episode log"), (binary, "is not text")):
        monkeypatch.setattr("sys.argv", ["tracegen", "bench", "compare", str(a), str(other)])
        with pytest.raises(SystemExit) as stop:
            main()
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and err.count("\n") == 0
        assert err.startswith(f"error: {other}: ") and problem in err
