"""The model verbs end to end on the command line: train -> predict -> eval-traces -> bench-latency (tiny)."""

import json
import subprocess
import sys

import numpy as np

from synthetic import synthetic_episode
from tracegen.forge.windows import gt_samples
from tracegen.io.official import write_png
from tracegen.io.trace_dataset import write_dataset


def run(*args):
    out = subprocess.run(
        [sys.executable, "-m", "tracegen.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    return out


def test_train_predict_evaluate_and_time(tmp_path):
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
