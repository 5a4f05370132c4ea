"""The TraceForge commands of docs/GUIDE.md ("TraceForge on your own videos", "Scaling out with Ray"), as written
there, at tiny sizes: fixed RGB-D videos with depth and intrinsics files, a moving camera through SfM without depth
or intrinsics, LeRobot datasets, the Ray runner, and forge-eval's flags."""

from __future__ import annotations

import json

import numpy as np
import pytest
from forge_data import panel_clip, write_depth_pngs
from typer.testing import CliRunner

from lerobot_fixture import FRONT, write_v3
from tracegen.cli import app
from tracegen.io.episode import read_episode
from tracegen.io.trace_dataset import TraceDataset
from tracegen.io.video import write_video


def tracegen(*args):
    """``tracegen ARGS`` in-process; the JSON summary a forge run prints, or the failed result."""
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def forge_summary(result) -> dict:
    return json.loads(result.stdout[result.stdout.index("{") :])


def write_k(path, clip):
    K = clip.K[0]
    path.write_text(json.dumps({"fx": K[0, 0], "fy": K[1, 1], "cx": K[0, 2], "cy": K[1, 2]}))
    return path


def test_fixed_rgbd_camera_one_clip_and_a_folder(tmp_path):
    clip = panel_clip(T=30, speed=1.5, hold=3)
    write_video(tmp_path / "clip.mp4", clip.rgb, clip.fps)
    write_depth_pngs(tmp_path / "clip_depth", clip.depth)
    K = write_k(tmp_path / "K.json", clip)
    out = forge_summary(
        tracegen(
            "forge",
            tmp_path / "clip.mp4",
            "--out",
            tmp_path / "traces",
            "--depth-path",
            tmp_path / "clip_depth",
            "--intrinsics",
            K,
            "--no-progress",
        )
    )
    assert out["episodes_out"] == 1 and out["windows_kept"] > 0
    sample = TraceDataset(tmp_path / "traces")[0]
    assert sample.has_depth and np.allclose(sample.depth, 1.0, atol=1e-3) and sample.K[0, 0] == clip.K[0, 0, 0]

    (tmp_path / "videos").mkdir()
    (tmp_path / "depths").mkdir()
    for name, speed in (("a", 1.0), ("b", 2.0)):
        c = panel_clip(T=30, speed=speed, hold=3)
        write_video(tmp_path / "videos" / f"{name}.mp4", c.rgb, c.fps)
        np.savez(tmp_path / "depths" / f"{name}.npz", depth=c.depth)
    out = forge_summary(
        tracegen(
            "forge",
            tmp_path / "videos",
            "--out",
            tmp_path / "traces2",
            "--depth-path",
            tmp_path / "depths",
            "--intrinsics",
            K,
            "--no-progress",
        )
    )
    assert out["episodes_out"] == 2 and set(TraceDataset(tmp_path / "traces2").episodes()) == {"a", "b"}


def test_moving_phone_camera_without_intrinsics_or_depth(tmp_path, moving_dir):
    (episode,) = [p for p in moving_dir.iterdir() if p.is_dir()]
    ep = read_episode(episode)
    write_video(tmp_path / "phone.mp4", ep.rgb, ep.fps)  # only the pixels: no depth, no cameras
    out = forge_summary(
        tracegen(
            "forge",
            tmp_path / "phone.mp4",
            "--out",
            tmp_path / "traces",
            "--camera",
            "colmap",
            "--depth",
            "none",
            "--max-size",
            384,
            "--no-progress",
        )
    )
    assert out["episodes_out"] == 1, out
    samples = TraceDataset(tmp_path / "traces")
    assert len(samples) > 0 and not samples[0].has_depth  # 2D-only traces


def test_lerobot_inspect_forge_and_convert(tmp_path):
    root = write_v3(tmp_path / "lerobot_ds")
    assert '"episodes": 3' in tracegen("inspect", root, "--json").stdout
    result = tracegen(
        "forge", root, "--out", tmp_path / "traces", "--camera-key", FRONT, "--episodes", "0-1", "--no-progress"
    )
    summary = json.loads((tmp_path / "traces" / "forge_summary.json").read_text())
    # the fixture's episodes (12 and 9 frames) are shorter than one window: selected, read, and skipped with the reason
    assert summary["episodes_in"] == 2 and summary["episodes_failed"] == 2
    assert result.stderr.count("shorter than one window") == 2
    tracegen("convert", root, tmp_path / "episodes", "--to", "tracegen")
    assert len([p for p in (tmp_path / "episodes").iterdir() if p.is_dir()]) == 6  # 3 episodes x 2 cameras


def test_ray_runner_and_forge_eval_flags(tmp_path, sim_dir):
    ray = pytest.importorskip("ray")
    # connected first, as the guide says to reach a cluster: the runner uses that Ray and leaves it running
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        out = forge_summary(
            tracegen("forge", sim_dir, "--out", tmp_path / "traces", "--runner", "ray", "--workers", 2, "--no-progress")
        )
        assert out["runner"] == "ray" and out["episodes_out"] == 1 and ray.is_initialized()
    finally:
        ray.shutdown()
    tracegen(
        "forge-eval",
        "--episodes",
        sim_dir,
        "--json",
        tmp_path / "eval.json",
        "--no-throughput",
        "--match",
        "door-open",
        "--no-progress",
    )
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["episodes"] == 1 and "clips_per_min" not in report and report["moving_within_4px"] is not None
    tracegen(
        "forge-eval",
        "--episodes",
        sim_dir,
        "--json",
        tmp_path / "off.json",
        "--no-throughput",
        "--no-progress",
        "--no-baseline",
        "--set",
        "tracker.snap_radius=0",
    )
    off = json.loads((tmp_path / "off.json").read_text())
    assert off["config"]["tracker"]["snap_radius"] == 0 and report["config"]["tracker"]["snap_radius"] == 1
