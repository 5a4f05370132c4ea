"""`tracegen demo` end to end at tiny size: every stage runs for real, the report (with rollout clips) is written,
the time left is printed after each stage, a rerun is cached; `--full` is the benchmark protocol's configuration,
and its closed loop runs through `tracegen bench metaworld`'s code."""

import base64
import io
import json
import re
import subprocess
import sys

import pytest
from PIL import Image

from headless_browser import NO_BROWSER, check_report, find_browser
from tracegen import demo
from tracegen.sim.protocol import AVDC_METAWORLD


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tracegen.cli", "demo", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """One tiny demo run shared by the tests below: (its parent folder, the finished process)."""
    tmp_path = tmp_path_factory.mktemp("tiny_demo")
    return tmp_path, run("--out", tmp_path / "demo", "--scale", "tiny")


def test_tiny_demo_end_to_end_and_cached_rerun(tiny_demo):
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    res = summary["results"]
    assert res["record"]["target"]["episodes"] == 2
    assert res["traces"]["pretrain"]["windows_kept"] > 0 and res["traces"]["heldout"]["samples"] > 0
    assert set(res["closed_loop"]["success_rate"]) == {"oracle", "pretrained+warmup", "scratch"}
    for name in ("warmup", "scratch"):
        assert res["eval"][name]["samples"] > 0 and res["eval"][name]["ade_px"] > 0
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "Closed-loop success" in report and "Trace accuracy" in report and "example" in report
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 1
    assert "pretrained + warm-up" in out.stdout and "report:" in out.stdout
    # the time left: an estimate before the first stage, then after every stage but the last
    assert re.search(r"5 stage\(s\) to run: .*(~\d+|<1) min left \(estimated\)", out.stdout), out.stdout
    assert len(re.findall(r"^\[[1-4]/5\] \w+: [\d.]+ s; (~\d+|<1) min left$", out.stdout, re.M)) == 4, out.stdout

    again = run("--out", tmp_path / "demo", "--scale", "tiny")
    assert again.returncode == 0 and again.stdout.count(": cached") == 5 and "min left" not in again.stdout


def test_rollout_clips_are_in_the_report_and_decode(tiny_demo):
    """The first seed of the target task, for the warmed-up model and the oracle: a small animated GIF each,
    linked from report.md and inlined in report.html."""
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    clips = json.loads((tmp_path / "demo" / "summary.json").read_text())["results"]["closed_loop"]["clips"]
    assert {(c["planner"], c["task"], c["seed"]) for c in clips} == {
        ("pretrained+warmup", "button-press", 0),
        ("oracle", "button-press", 0),
    }
    report = (tmp_path / "demo" / "report.md").read_text()
    gifs = re.findall(r"data:image/gif;base64,([A-Za-z0-9+/=]+)", (tmp_path / "demo" / "report.html").read_text())
    assert len(gifs) == len(clips)
    for clip, data in zip(clips, gifs, strict=True):
        path = tmp_path / "demo" / clip["file"]
        assert f"]({clip['file']})" in report and path.read_bytes() == base64.b64decode(data)
        assert path.stat().st_size < 300_000
        with Image.open(io.BytesIO(path.read_bytes())) as gif:
            assert gif.n_frames >= min(clip["plans"], 2) and gif.size[0] >= 128
    oracle = next(c for c in clips if c["planner"] == "oracle")
    assert oracle["success"] and oracle["reason"] == "success"  # the executor's ceiling presses the button


@pytest.mark.skipif(find_browser() is None, reason=NO_BROWSER)
def test_the_report_renders_in_a_headless_browser(tiny_demo):
    """As a person sees it: every image of report.html decodes, no page errors, the pictures are on screen."""
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    report = tmp_path / "demo" / "report.md"
    clips = report.read_text().count("![rollout")
    assert clips == 2
    check_report(
        report.with_suffix(".html"), tmp_path, expected_images=report.read_text().count("!["), expected_clips=clips
    )


def test_demo_refuses_an_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = run("--out", blocker / "demo", "--scale", "tiny")
    assert out.returncode != 0 and "cannot write" in out.stderr


def test_full_is_the_benchmark_protocol(tmp_path):
    """`--full` selects the `full` scale: the AVDC protocol's tasks, cameras, image size, demonstrations and every
    episode of its closed loop, on more data and training than the default; `--dry-run` checks it and says so."""
    cfg, default = demo.make_config("full", out="x"), demo.make_config("default", out="x")
    assert cfg.protocol == "avdc" and cfg.target_tasks == AVDC_METAWORLD.tasks
    assert cfg.cameras == AVDC_METAWORLD.cameras and cfg.hw == AVDC_METAWORLD.render_hw
    assert cfg.target_demos == AVDC_METAWORLD.demos_per_task_camera and cfg.demo_seed == AVDC_METAWORLD.demo_seed_start
    others = demo.pretrain_tasks(cfg)
    assert len(others) > len(default.pretrain_tasks) and not set(others) & set(AVDC_METAWORLD.tasks)
    assert len(demo.closed_loop_episodes(cfg)) == AVDC_METAWORLD.num_episodes == 825
    for key in ("record", "traces", "train", "closed_loop"):
        assert demo.work_units(cfg)[key] > 5 * demo.work_units(default)[key]
    assert sum(demo.expected_seconds(cfg).values()) > 3600  # hours, and said so before it starts

    out = run("--full", "--dry-run", "--out", tmp_path / "full")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "scale full" in out.stdout and "protocol avdc" in out.stdout and "3 planners x 825" in out.stdout
    assert " h)" in out.stdout and not (tmp_path / "full").exists()  # a dry run writes nothing
    clash = run("--full", "--scale", "tiny", "--dry-run")
    assert clash.returncode != 0 and "contradicts" in clash.stderr


def test_the_protocol_closed_loop_runs_through_the_benchmark(tiny_demo):
    """The `full` scale's closed loop, restricted to one task x camera x seed, on the tiny demo's checkpoints: it
    runs `run_bench` per planner (the JSON and episode log of `tracegen bench metaworld`), then records clips of the
    protocol's first seed with the benchmark's rollout settings: the same outcome as the benchmark's episode."""
    tmp_path, out = tiny_demo
    assert out.returncode == 0, out.stderr[-3000:]
    overrides = dict(protocol="avdc", size=240, width=320, cameras=("corner",), rollout_seeds=1, clips=1)
    cfg = demo.make_config("tiny", out=str(tmp_path / "demo"), **overrides)
    demo.check_config(cfg)
    stage = demo.Stage(cfg, "closed_loop_avdc")
    result = demo.closed_loop(cfg, stage)
    assert result["protocol"] == AVDC_METAWORLD.name and result["episodes_per_planner"] == 1
    assert result["successes"]["oracle"] == {"button-press": 1}
    for name, bench in result["bench"].items():
        logged = (stage.dir / bench).with_suffix(".episodes.jsonl").read_text().splitlines()
        assert json.loads(logged[0])["task"] == "button-press", name
    assert [(c["task"], c["planner"]) for c in result["clips"]] == [
        ("button-press", "pretrained+warmup"),
        ("button-press", "oracle"),
    ]
    for clip in result["clips"]:
        assert clip["success"] == bool(result["successes"][clip["planner"]]["button-press"]), clip
        assert (tmp_path / "demo" / clip["file"]).stat().st_size > 0


def test_a_protocol_needs_its_image_size(tmp_path):
    cfg = demo.make_config("tiny", out=str(tmp_path), protocol="avdc")
    with pytest.raises(SystemExit, match="renders 240 x 320 px"):
        demo.check_config(cfg)


def test_recording_uses_the_parallel_corpus_builder(tmp_path, monkeypatch):
    """The record stage hands each set to `build_corpus` with `cfg.workers` processes."""
    from tracegen.sim import recorder

    calls = []

    def fake_build(entries, out, cfg, workers, progress):
        calls.append((out.name, len(entries), workers))
        return [recorder.GroupResult(e, written=e.episodes, attempts=e.episodes, successes=e.episodes) for e in entries]

    monkeypatch.setattr(recorder, "build_corpus", fake_build)
    cfg = demo.make_config("tiny", out=str(tmp_path), workers=2)
    result = demo.record(cfg, demo.Stage(cfg, "record"))
    assert calls == [("pretrain", 4, 2), ("target", 1, 2), ("heldout", 1, 2)]
    assert result["target"] == {"episodes": 2, "expert_success": 1.0, "errors": []}


def test_cached_stages_belong_to_one_configuration(tmp_path):
    """A second run of the same configuration reuses the folder (other workers too); another scale is refused."""
    demo.check_cache(demo.make_config("tiny", out=str(tmp_path)))
    demo.check_cache(demo.make_config("tiny", out=str(tmp_path), workers=2))
    with pytest.raises(SystemExit, match="another configuration.*--fresh"):
        demo.check_cache(demo.make_config("full", out=str(tmp_path)))


def test_fresh_deletes_the_demo_and_nothing_else(tmp_path):
    """``--fresh`` may point at a folder that holds other files too: only the demo's stages and files go."""
    for name in demo.STAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text("{}")
    for name in ("config.json", "summary.json", "report.md", "report.html", "notes.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "mine").mkdir()
    demo.clear_stages(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "notes.txt"]
    (tmp_path / "train").mkdir()  # the user's own folder of that name, in a folder the demo did not make
    (tmp_path / "train" / "weights.pt").write_text("x")
    demo.clear_stages(tmp_path)
    assert (tmp_path / "train" / "weights.pt").exists()
