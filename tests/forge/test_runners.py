"""Runners: a folder of episodes to a trace dataset; resumable; bad episodes recorded and skipped; byte-identical
output with 1 or 2 local workers and with Ray; the result exports to the official layout."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from forge_data import occluder_clip, panel_clip

from tracegen.forge.config import ForgeConfig, SourceConfig
from tracegen.forge.pipeline import marker_path
from tracegen.forge.runners import run
from tracegen.forge.sources import discover
from tracegen.io import convert, official
from tracegen.io.episode import Episode, write_episode
from tracegen.io.files import load_json
from tracegen.io.trace_dataset import TraceDataset
from tracegen.io.video import write_video


@pytest.fixture(scope="module")
def episodes(tmp_path_factory, sim_dir) -> Path:
    """Three episodes: the simulated door (with ground truth), and two synthetic sliding panels."""
    root = tmp_path_factory.mktemp("episodes")
    for ep_dir in sim_dir.iterdir():
        if ep_dir.is_dir():
            shutil.copytree(ep_dir, root / ep_dir.name)
    for k, speed in enumerate((1.5, 2.5)):
        c = panel_clip(T=36, speed=speed, hold=3)
        write_episode(
            root / f"panel_{k}",
            Episode(
                c.rgb, c.fps, c.instructions, c.depth, c.K, c.w2c, meta={"episode_id": f"panel_{k}", "task": "slide"}
            ),
        )
    return root


def digest(out: Path) -> dict[str, str]:
    """Hashes of every trace file (shards) of a run."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "shards").glob("*"))}


def test_local_run_writes_a_readable_dataset_and_summary(tmp_path, episodes):
    summary = run(discover(episodes), ForgeConfig(), tmp_path / "out", progress=False)
    assert summary["episodes_in"] == 3 and summary["episodes_out"] == 3 and summary["episodes_failed"] == 0
    assert summary["windows_kept"] > 10 and sum(summary["windows_dropped"].values()) > 0
    assert set(summary["stage_seconds"]) >= {"load", "camera", "depth", "tracker", "compensate", "windows", "write"}
    ds = TraceDataset(tmp_path / "out")
    assert len(ds) == summary["windows_kept"] and set(ds.episodes()) >= {"panel_0", "panel_1"}
    sample = ds[0]
    assert sample.traj.shape[0] == 400 and sample.has_depth and len(sample.instructions) >= 3
    assert load_json(tmp_path / "out" / "forge_config.json") == ForgeConfig().to_dict()
    assert load_json(tmp_path / "out" / "forge_summary.json")["windows_kept"] == summary["windows_kept"]
    # the official-layout writer exports it
    result = convert.convert(tmp_path / "out", tmp_path / "official", "official")
    assert result["episodes"] == 3 and result["samples"] == summary["windows_kept"]
    back = official.read_official_episode(tmp_path / "official" / "panel_0")
    assert back[0].traj.shape == (400, 128, 3)


def test_rerun_skips_done_work_and_redoes_partial_work(tmp_path, episodes):
    items = discover(episodes)
    out = tmp_path / "out"
    run(items, ForgeConfig(), out, progress=False)
    first = digest(out)
    marker_path(out, "panel_1").unlink()  # as if killed after the shard, before its marker
    (out / "shards" / ".tmp-panel_1.json.abc").write_text("{")  # and a half-written file
    again = run(items, ForgeConfig(), out, progress=False)
    assert again["episodes_skipped"] == 2 and again["episodes_processed"] == 1
    assert digest(out) == first and not list((out / "shards").glob(".tmp-*"))
    with pytest.raises(ValueError, match=r"other settings .*source\.stride: 1 -> 2"):  # names what changed
        run(items, ForgeConfig(source=SourceConfig(stride=2)), out, progress=False)


def test_bad_episodes_fail_with_reasons_and_the_others_go_on(tmp_path):
    src, depths = tmp_path / "videos", tmp_path / "depths"
    depths.mkdir()
    good = panel_clip(T=36, speed=2.0)
    write_video(src / "good.mp4", good.rgb, 10.0)
    np.savez(depths / "good.npz", depth=good.depth)
    write_video(src / "truncated.mp4", good.rgb, 10.0)
    data = (src / "truncated.mp4").read_bytes()
    (src / "truncated.mp4").write_bytes(data[: len(data) // 4])
    write_video(src / "short.mp4", good.rgb[:8], 10.0)
    np.savez(depths / "short.npz", depth=good.depth[:8])
    write_video(src / "still.mp4", np.repeat(good.rgb[:1], 30, 0), 10.0)
    np.savez(depths / "still.npz", depth=np.repeat(good.depth[:1], 30, 0))
    write_video(src / "nodepth.mp4", good.rgb, 10.0)  # its depth file is missing
    rgb, depth, _ = occluder_clip(T=20)
    write_video(src / "wrongdepth.mp4", rgb, 10.0)
    np.savez(depths / "wrongdepth.npz", depth=depth[:, :50])
    write_video(src / "nandepth.mp4", rgb, 10.0)
    np.savez(depths / "nandepth.npz", depth=np.where(depth > 1.5, np.nan, depth))
    cfg = ForgeConfig(source=SourceConfig(depth_path=str(depths)))
    summary = run(discover(src, cfg.source), cfg, tmp_path / "out", progress=False)
    reasons = {f["name"]: f["reason"] for f in summary["failures"]}
    assert summary["episodes_out"] == 1
    assert set(reasons) == {"truncated", "short", "still", "wrongdepth", "nandepth", "nodepth"}
    assert "truncated.mp4" in reasons["truncated"]
    assert "shorter than one window" in reasons["short"]
    assert "zero-motion" in reasons["still"]
    assert "does not match the frames" in reasons["wrongdepth"] and "NaN" in reasons["nandepth"]
    assert "depth not found" in reasons["nodepth"]
    shards = {p.stem for p in (tmp_path / "out" / "shards").glob("*.json")}
    assert shards == {"good"}  # nothing partial for the failed ones
    again = run(discover(src, cfg.source), cfg, tmp_path / "out", progress=False)
    assert again["episodes_processed"] == 0 and again["episodes_failed"] == 6  # failures are remembered


def test_a_crash_is_not_bad_data_and_a_rerun_tries_it_again(tmp_path, episodes, monkeypatch):
    from tracegen.forge import pipeline

    items = discover(episodes)
    real = pipeline.Pipeline.run

    def crash_once(self, item):  # a bug, or a full disk, in one episode
        if item.name == items[0].name:
            raise OSError("No space left on device")
        return real(self, item)

    monkeypatch.setattr(pipeline.Pipeline, "run", crash_once)
    summary = run(items, ForgeConfig(), tmp_path / "out", progress=False)
    assert summary["episodes_errored"] == 1 and summary["episodes_out"] == len(items) - 1
    assert "unexpected OSError" in summary["failures"][0]["reason"]
    monkeypatch.setattr(pipeline.Pipeline, "run", real)
    again = run(items, ForgeConfig(), tmp_path / "out", progress=False)  # no --retry-failed needed
    assert again["episodes_processed"] == 1 and again["episodes_out"] == len(items) and again["episodes_errored"] == 0


def test_two_workers_and_ray_give_byte_identical_files(tmp_path, episodes):
    items = discover(episodes)
    run(items, ForgeConfig(), tmp_path / "one", workers=1, progress=False)
    run(items, ForgeConfig(), tmp_path / "two", workers=2, progress=False)
    reference = digest(tmp_path / "one")
    assert len(reference) == 6 and digest(tmp_path / "two") == reference
    pytest.importorskip("ray")
    summary = run(items, ForgeConfig(), tmp_path / "ray", runner="ray", workers=2, progress=False)
    assert summary["runner"] == "ray" and summary["episodes_out"] == 3
    assert digest(tmp_path / "ray") == reference
