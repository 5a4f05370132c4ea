"""The model verbs end to end on the command line: train -> predict -> eval-traces -> bench-latency (tiny)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from synthetic import synthetic_episode
from tracegen.forge.windows import gt_samples
from tracegen.io.episode import write_episode
from tracegen.io.official import write_png
from tracegen.io.trace_dataset import write_dataset
from tracegen.model.commands import held_out_examples


def run(*args):
    out = subprocess.run(
        [sys.executable, "-m", "tracegen.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return out


def test_train_predict_evaluate_and_time(tmp_path, monkeypatch):
    shards = [(f"ep{i}", gt_samples(synthetic_episode(T=30, speed=0.01 * (i + 1), seed=i))[0]) for i in range(4)]
    write_dataset(tmp_path / "ds", shards, grid=20, retarget={})
    out = run(
        "train",
        "--data",
        tmp_path / "ds",
        "--out",
        tmp_path / "run",
        "--preset",
        "tiny",
        "--steps",
        "5",
        "batch_size=4",
        "val_fraction=0.25",
    )
    assert out.returncode == 0, out.stderr[-1500:]

    sample = shards[0][1][0]
    write_png(tmp_path / "obs.png", sample.rgb)
    np.save(tmp_path / "depth.npy", sample.depth)
    out = run(
        "predict",
        "--ckpt",
        tmp_path / "run",
        "--image",
        tmp_path / "obs.png",
        "--depth",
        tmp_path / "depth.npy",
        "--text",
        "slide the panel",
        "--out",
        tmp_path / "pred.npz",
        "--samples",
        "2",
    )
    assert out.returncode == 0, out.stderr[-1500:]
    traj = np.load(tmp_path / "pred.npz")["traj"]
    assert traj.shape == (2, 400, 33, 3) and (tmp_path / "pred.png").stat().st_size > 1000
    # the same depth as a 16-bit PNG in TraceForge's units (10000 per metre) starts every point where the .npy did
    write_png(tmp_path / "depth.png", np.clip(np.rint(sample.depth * 10000), 0, 65535).astype(np.uint16))
    args = ["--ckpt", tmp_path / "run", "--image", tmp_path / "obs.png", "--text", "slide the panel"]
    out = run("predict", *args, "--depth", tmp_path / "depth.png", "--out", tmp_path / "png.npz", "--samples", "2")
    assert out.returncode == 0, out.stderr[-1500:]
    np.testing.assert_allclose(np.load(tmp_path / "png.npz")["traj"][..., 0, 2], traj[..., 0, 2], atol=1e-4)
    # or straight from an episode's frame: its image, depth, intrinsics (3D points too) and instruction
    write_episode(tmp_path / "ep", synthetic_episode())
    out = run(
        "predict", "--ckpt", tmp_path / "run", "--episode", tmp_path / "ep", "--frame", "2", "--out", tmp_path / "e.npz"
    )
    assert out.returncode == 0, out.stderr[-1500:]
    pred = np.load(tmp_path / "e.npz")
    assert pred["xyz"].shape == (1, 400, 33, 3) and str(pred["instruction"]) == synthetic_episode().instructions[0]
    out = run("predict", "--ckpt", tmp_path / "run", "--out", tmp_path / "e.npz")
    assert out.returncode == 2 and "--image (and --depth) or as --episode" in out.stderr

    out = run(
        "eval-traces",
        "--ckpt",
        tmp_path / "run",
        "--data",
        tmp_path / "ds",
        "--json",
        tmp_path / "eval.json",
        "--samples",
        "2",
    )
    assert out.returncode == 0, out.stderr[-1500:]
    metrics = json.loads((tmp_path / "eval.json").read_text())
    assert metrics["split"] == "val" and metrics["samples"] > 0
    for key in (
        "ade_px",
        "fde_px",
        "ade_cm",
        "fde_cm",
        "mse_norm",
        "static_ade_px",
        "nn_ade_px",
        "best_of_k_ade_px",
        "false_motion",
    ):
        assert np.isfinite(metrics[key]), key
    assert metrics["best_of_k_ade_px"] <= metrics["ade_px"]
    assert metrics["provenance"]["tracegen"] and metrics["provenance"]["packages"]["torch"]
    monkeypatch.chdir(tmp_path / "run")  # the run's data by another spelling, from another folder: still its own
    assert held_out_examples(Path("."), ["../ds"], "auto", None)[2] == "val"

    out = run("bench-latency", "--ckpt", tmp_path / "run", "--json", tmp_path / "lat.json", "--runs", "3")
    assert out.returncode == 0, out.stderr[-1500:]
    lat = json.loads((tmp_path / "lat.json").read_text())
    assert 0 < lat["median_ms"] <= lat["p90_ms"]


def test_bad_inputs_fail_before_work(tmp_path):
    out = run("train", "--data", tmp_path / "missing", "--out", tmp_path / "run")
    assert out.returncode == 2 and "does not exist" in out.stderr and not (tmp_path / "run").exists()
    (tmp_path / "ds").mkdir()
    out = run("train", "--data", tmp_path / "ds", "--out", tmp_path / "run", "wings=3")
    assert out.returncode == 2 and "unknown setting 'wings'" in out.stderr
    out = run(
        "predict",
        "--ckpt",
        tmp_path / "nockpt",
        "--image",
        tmp_path / "x.png",
        "--text",
        "t",
        "--out",
        tmp_path / "p.npz",
    )
    assert out.returncode == 2 and "config.json: file not found" in out.stderr
