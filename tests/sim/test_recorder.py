import filecmp
import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tracegen.io.episode import is_episode, read_episode
from tracegen.sim import recorder
from tracegen.sim.recorder import (
    CorpusEntry,
    RecordConfig,
    build_corpus,
    episode_name,
    expand_entries,
    load_corpus_config,
    record_group,
    summary_table,
)

CFG = RecordConfig(height=64, width=64, max_steps=24, stop_on_success=False, keep_failures=True, query_every=8, grid=8)
ENTRY = CorpusEntry("metaworld", "reach", "sawyer", ("corner3", "corner@0.03,3"), episodes=2, seed=10)


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    return out, record_group(ENTRY, out, CFG)


def test_episodes_load_with_the_foundation_readers(recorded):
    out, result = recorded
    assert result.written == 4 and result.seeds == [10, 11]
    ep = read_episode(out / episode_name("metaworld", "reach", "sawyer", "corner3", 10))
    assert ep.num_frames == 25 and ep.rgb.shape == (25, 64, 64, 3) and ep.depth.shape == (25, 64, 64)
    assert ep.K.shape == (25, 3, 3) and ep.w2c.shape == (25, 4, 4)
    assert ep.state.shape == (25, 8) and ep.action.shape == (25, 4) and not ep.action[-1].any()
    assert list(ep.gt.query_frames) == [0, 8, 16, 24] and ep.gt.grid == 8
    assert len(ep.instructions) == 4 and ep.fps == 80.0
    meta = ep.meta
    assert (meta["suite"], meta["task"], meta["embodiment"], meta["camera"], meta["seed"]) == (
        "metaworld",
        "reach",
        "sawyer",
        "corner3",
        10,
    )


def test_jittered_cameras_differ_per_episode(recorded):
    out, _ = recorded
    a, b = (
        read_episode(out / episode_name("metaworld", "reach", "sawyer", "corner-jit0", s), load_rgb=False)
        for s in (10, 11)
    )
    fixed = read_episode(out / episode_name("metaworld", "reach", "sawyer", "corner3", 10), load_rgb=False)
    assert not np.allclose(a.w2c[0], b.w2c[0]) and np.allclose(a.w2c[0], a.w2c[-1])
    assert np.allclose(fixed.w2c[0], fixed.w2c[-1]) and a.meta["camera_spec"]["jitter_pos"] == 0.03


def test_same_arguments_give_identical_files(recorded, tmp_path):
    out, _ = recorded
    record_group(ENTRY, tmp_path, CFG)
    files = _files(out)
    assert files == _files(tmp_path)
    match, mismatch, errors = filecmp.cmpfiles(out, tmp_path, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors


def test_rerun_skips_finished_episodes(recorded):
    out, _ = recorded
    again = record_group(ENTRY, out, CFG)
    assert again.skipped == 4 and again.written == 0 and again.attempts == 0


def test_only_successful_episodes_unless_asked(tmp_path):
    cfg = RecordConfig(height=64, width=64, max_steps=3, grid=4, max_attempts=2)  # too short to succeed
    result = record_group(CorpusEntry("metaworld", "reach", "sawyer", ("corner3",), 1, 0), tmp_path, cfg)
    assert result.attempts == 2 and result.successes == 0 and result.written == 0
    assert not any(is_episode(p) for p in tmp_path.iterdir())
    assert "0/2" in summary_table([result])


def test_corpus_config_expansion(tmp_path):
    path = tmp_path / "corpus.toml"
    path.write_text(
        '[record]\nheight = 32\nwidth = 32\n\n[[entry]]\nsuite = "metaworld"\ntasks = ["reach", "push"]\n'
        'embodiments = ["sawyer", "hand"]\ncameras = ["corner3"]\nepisodes = 1\n\n[[entry]]\n'
        'suite = "robosuite"\ntask = "Lift"\nrobots = ["Panda", "UR5e"]\ncamera = "agentview"\n'
        "episodes = 2\nseed = 5\n"
    )
    entries, cfg = load_corpus_config(path)
    assert cfg.height == 32 and len(entries) == 6
    assert entries[-1] == CorpusEntry("robosuite", "Lift", "UR5e", ("agentview",), 2, 5)
    assert (
        len(
            expand_entries([dict(suite="metaworld", tasks="avdc", embodiment="sawyer", cameras=["corner"], episodes=1)])
        )
        == 11
    )
    with pytest.raises(ValueError, match="unknown corpus entry keys"):
        expand_entries(
            [
                dict(
                    suite="metaworld",
                    task="reach",
                    embodiment="sawyer",
                    camera="corner",
                    episodes=1,
                    colour="red",
                )
            ]
        )


def test_killed_corpus_build_resumes_without_half_written_episodes(tmp_path):
    config = tmp_path / "corpus.json"
    config.write_text(
        json.dumps(
            {
                "record": {
                    "height": 64,
                    "width": 64,
                    "max_steps": 40,
                    "stop_on_success": False,
                    "keep_failures": True,
                    "grid": 6,
                    "query_every": 10,
                },
                "entry": [
                    {
                        "suite": "metaworld",
                        "task": "reach",
                        "embodiment": "sawyer",
                        "cameras": ["corner3"],
                        "episodes": 4,
                    }
                ],
            }
        )
    )
    out = tmp_path / "corpus"
    cmd = [
        sys.executable,
        "-m",
        "tracegen.sim.cli",
        "corpus",
        str(config),
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and not any(is_episode(p) for p in out.glob("metaworld_*")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = [p for p in out.glob("metaworld_*")]
    assert 1 <= len(finished) < 4 and all(is_episode(p) for p in finished)
    for p in finished:
        read_episode(p)
    entries, cfg = load_corpus_config(config)
    results = build_corpus(entries, out, cfg, progress=False)
    assert results[0].skipped == len(finished) and results[0].written == 4 - len(finished)
    assert len([p for p in out.iterdir() if is_episode(p)]) == 4 and not list(out.glob(".tmp-*"))


def test_a_resumed_group_does_not_simulate_failed_seeds_again(tmp_path, monkeypatch):
    out = tmp_path / "new"  # does not exist yet: the first marker makes it
    cfg = RecordConfig(height=32, width=32, max_steps=2, keep_failures=False, max_attempts=2, grid=4)
    entry = CorpusEntry("metaworld", "reach", "sawyer", ("corner3",), episodes=1, seed=3)
    first = record_group(entry, out, cfg)  # two steps: the expert cannot reach, nothing is kept
    assert (first.attempts, first.written, first.known_failures) == (2, 0, 0)
    assert sorted(p.name for p in (out / ".failed").iterdir()) == [
        "metaworld_reach_sawyer_s000003",
        "metaworld_reach_sawyer_s000004",
    ]
    again = record_group(entry, out, cfg)
    assert (again.attempts, again.known_failures) == (0, 2)
    assert summary_table([again]).splitlines()[-1].split()[-3] == "2"  # the "failed before" column
    longer = record_group(entry, out, replace(cfg, max_steps=3))  # another config may succeed: tried again
    assert (longer.attempts, longer.known_failures) == (2, 0)
    monkeypatch.setattr(recorder, "package_version", lambda package: "another")  # so may another simulator
    assert record_group(entry, out, replace(cfg, max_steps=3)).attempts == 2
    kept = record_group(entry, out, replace(cfg, keep_failures=True))  # keeping failures tries them anew
    assert kept.attempts == 1 and kept.written == 1


def test_a_corpus_recorded_with_other_settings_is_not_added_to(tmp_path):
    from tracegen.sim.recorder import RecordConfig, build_corpus

    (tmp_path / "corpus.json").write_text(json.dumps({"record": {"height": 224, "width": 224}, "entry": []}))
    with pytest.raises(ValueError, match="other settings \\(height: 224 -> 64, width: 224 -> 64\\)"):
        build_corpus([], tmp_path, RecordConfig(height=64, width=64), progress=False)
    assert json.loads((tmp_path / "corpus.json").read_text())["record"] == {"height": 224, "width": 224}  # untouched
    build_corpus([], tmp_path, RecordConfig(height=224, width=224), progress=False)  # the same settings: resumes
