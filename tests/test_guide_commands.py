"""Commands of docs/GUIDE.md that no other test runs, as written there, at tiny sizes: official TraceForge outputs in
and out, the CPU training recipe and the paper preset, the closed-loop benchmark with each planner, the executor
ablation script and a corpus file. (The TraceForge paths are in tests/forge/test_guide_commands.py.)"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthetic import synthetic_episode
from tracegen.cli import app
from tracegen.io.episode import write_episode
from tracegen.io.trace_dataset import TraceDataset

os.environ.setdefault("MUJOCO_GL", "egl")
ROOT = Path(__file__).resolve().parents[1]
TINY = "--preset tiny batch_size=4 val_fraction=0.25 threads=1"


def tracegen(command: str) -> str:
    """Runs ``tracegen COMMAND`` (a command line, as the GUIDE writes it) in-process; returns its output."""
    result = CliRunner().invoke(app, shlex.split(command), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def script(command: str) -> str:
    """Runs ``python benchmarks/COMMAND`` as a user would; returns its output."""
    name, *args = shlex.split(command)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """Four synthetic episodes exported to the official TraceForge layout by ``tracegen convert``."""
    root = tmp_path_factory.mktemp("guide")
    for i in range(4):
        write_episode(root / "eps" / f"ep{i}", synthetic_episode(T=30, speed=0.01 * (i + 1), seed=i))
    assert "samples: " in tracegen(f"convert {root / 'eps'} {root / 'official'} --to official")
    return root


def test_official_outputs_inspect_train_and_convert(official, tmp_path):
    summary = json.loads(tracegen(f"inspect {official / 'official'} --json"))
    assert summary["kind"] == "official" and summary["samples"] > 0
    tracegen(f"train --data {official / 'official'} --out {tmp_path / 'pre'} --steps 2 {TINY}")
    assert (tmp_path / "pre" / "model.safetensors").is_file()
    tracegen(f"convert {official / 'official'} {tmp_path / 'traces'} --to tracegen")
    assert len(TraceDataset(tmp_path / "traces")) == summary["samples"]


def test_cpu_recipe_pretrain_warm_up_evaluate(official, tmp_path):
    tracegen(f"convert {official / 'eps'} {tmp_path / 'traces'} --to tracegen")
    tracegen(f"train --data {tmp_path / 'traces'} --out {tmp_path / 'pre'} --steps 3 {TINY}")
    tracegen(
        f"train --data {tmp_path / 'traces'} --out {tmp_path / 'warm'} --init {tmp_path / 'pre'} --steps 2 "
        f"lr=1e-4 warmup_steps=1 {TINY}"
    )
    warm = json.loads((tmp_path / "warm" / "train_config.json").read_text())
    assert warm["init"] == str(tmp_path / "pre") and warm["lr"] == 1e-4
    tracegen(
        f"eval-traces --ckpt {tmp_path / 'warm'} --data {tmp_path / 'traces'} --json {tmp_path / 'e.json'} "
        "--split all --steps 1"
    )
    metrics = json.loads((tmp_path / "e.json").read_text())
    assert metrics["split"] == "all" and metrics["samples"] > 0 and metrics["ade_px"] >= 0


def test_paper_preset_trains_through_the_command(official, tmp_path):
    small = (
        "dim=32 image_size=32 image_channels=[8,16] image_tokens=2 cog_layers=1 cog_heads=2 cog_head_dim=8 "
        "cog_time_dim=16 cog_cond_tokens=8 batch_size=2 threads=1"
    )
    tracegen(f"train --data {official / 'official'} --out {tmp_path / 'paper'} --preset paper --steps 1 {small}")
    config = json.loads((tmp_path / "paper" / "config.json").read_text())["model"]
    assert config["decoder"] == "cogvideox" and config["prediction"] == "velocity"


def test_bench_metaworld_oracle_and_a_model_slice(tmp_path):
    from tracegen.model import TraceGen, preset

    tracegen(
        f"bench metaworld --protocol mini --planner oracle --tasks door-close --seeds 1 --json {tmp_path / 'o.json'}"
    )
    oracle = json.loads((tmp_path / "o.json").read_text())
    assert oracle["episodes"] == 1 and oracle["overall_success"] == 1.0
    TraceGen(preset("tiny")).save_pretrained(tmp_path / "warm")  # an untrained model: the loop runs, and fails
    tracegen(
        f"bench metaworld --protocol avdc --ckpt {tmp_path / 'warm'} --tasks door-open --cameras corner3 --seeds 1 "
        f"--max-replans 1 --guidance 2 --restore-speed --json {tmp_path / 'part.json'}"
    )
    part = json.loads((tmp_path / "part.json").read_text())
    assert part["episodes"] == 1 and part["per_task"]["door-open"] == {"corner3": "0/1"}
    assert part["settings"]["guidance"] == 2.0 and part["settings"]["restore_speed"] is True
    assert (tmp_path / "part.episodes.jsonl").read_text().count("\n") == 1

    out = script(
        f"plan_agreement.py --ckpt {tmp_path / 'warm'} --tasks door-close --cameras corner --seeds 1 --restore-speed "
        f"--json {tmp_path / 'agree.json'}"
    )
    assert "door-close" in out and "overall" in out
    overall = json.loads((tmp_path / "agree.json").read_text())["overall"]
    assert overall["episodes"] == 1 and overall["oracle_cm"] > 1.0  # the expert's first plan moves the effector

    out = script(
        f"first_grasp.py --ckpt {tmp_path / 'warm'} --tasks basketball --cameras corner --seeds 3 "
        f"--json {tmp_path / 'grasp.json'}"
    )
    assert "basketball   oracle" in out and "basketball   model" in out
    oracle = json.loads((tmp_path / "grasp.json").read_text())["per_task"]["basketball"]["oracle"]
    assert oracle["grasps"] == 3 and oracle["off_cm"] < 2.0  # the expert's first plan grasps the ball


def test_bench_metaworld_neighbour_planner_with_an_executor_setting(official, tmp_path):
    tracegen(f"convert {official / 'eps'} {tmp_path / 'traces'} --to tracegen")
    tracegen(
        f"bench metaworld --protocol mini --planner neighbour --data {tmp_path / 'traces'} --tasks door-close "
        f"--seeds 1 --max-replans 2 --set stuck_push_m=0 --json {tmp_path / 'nn.json'}"
    )
    nn = json.loads((tmp_path / "nn.json").read_text())
    assert nn["episodes"] == 1 and nn["planner"] == "neighbour" and nn["data"] == [str(tmp_path / "traces")]
    assert nn["settings"]["rollout"] == {"stuck_push_m": 0} and nn["settings"]["checkpoint"] is None


def test_executor_ablation_script():
    out = script(
        "executor_ablation.py --tasks door-close --seeds 1 --set grasp_press_m=0 --set executor.path_mode=rigid"
    )
    assert "door-close/0: " in out and "TOTAL " in out
    assert "'executor.path_mode': 'rigid'" in out and "'grasp_press_m': 0" in out


def test_sim_corpus_from_a_file(tmp_path):
    (tmp_path / "corpus.toml").write_text(
        "[record]\nheight = 32\nwidth = 32\nmax_steps = 8\nkeep_failures = true\ngrid = 4\n\n"
        '[[entry]]\nsuite = "metaworld"\ntasks = ["reach"]\nembodiments = ["sawyer"]\ncameras = ["corner3"]\n'
        "episodes = 1\nseed = 0\n"
    )
    tracegen(f"sim corpus {tmp_path / 'corpus.toml'} --out {tmp_path / 'corpus'} --no-progress")
    summary = json.loads((tmp_path / "corpus" / "corpus_summary.json").read_text())
    (row,) = summary["groups"]
    assert summary["provenance"]["packages"]["mujoco"]  # the code that recorded it
    assert row["written"] == 1 and row["error"] is None
    # the same entries with another embodiment (a cross-embodiment warm-up set); an unknown one is refused
    tracegen(f"sim corpus {tmp_path / 'corpus.toml'} --out {tmp_path / 'hand'} --embodiment hand --no-progress")
    assert [p.name for p in (tmp_path / "hand").glob("metaworld_*")] == ["metaworld_reach_hand_corner3_s000000"]
    command = f"sim corpus {tmp_path / 'corpus.toml'} --out {tmp_path / 'x'} --embodiment hnad"
    bad = CliRunner().invoke(app, shlex.split(command))
    assert bad.exit_code != 0 and "did you mean hand" in bad.output and not (tmp_path / "x").exists()


def test_expert_benchmark_script_at_its_smallest():
    assert re.search(r"total\s+1/1", script("sim_experts.py --suite metaworld --seeds 1 --tasks reach"))


def test_forge_vs_exact_script(tmp_path):
    """Two datasets of the same windows, one with every motion halved: the script pairs them and measures 0.5."""
    from dataclasses import replace

    from tracegen.forge.windows import WindowConfig, gt_samples
    from tracegen.io.trace_dataset import write_dataset

    shards = [(f"ep{i}", gt_samples(synthetic_episode(T=30, speed=0.02, seed=i), WindowConfig())[0]) for i in range(2)]
    halved = [(n, [replace(s, traj=s.traj[:, :1] + 0.5 * (s.traj - s.traj[:, :1])) for s in ss]) for n, ss in shards]
    write_dataset(tmp_path / "exact", shards, grid=20, retarget={})
    write_dataset(tmp_path / "forge", halved, grid=20, retarget={})
    script(
        f"forge_vs_exact.py --forge {tmp_path / 'forge'} --exact {tmp_path / 'exact'} --json {tmp_path / 'out.json'}"
    )
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["forge_only_windows"] == result["exact_only_windows"] == 0
    assert result["all"]["ratio_median"] == pytest.approx(0.5, abs=1e-4)
    assert result["episode_start"]["windows"] == 2 and result["all"]["error_px_median"] > 0


def test_closed_loop_models_script_composes_each_rows_commands(tmp_path):
    """benchmarks/closed_loop_models.sh with ``TG=echo``: the commands it would run, in order. With SEED=1 the rows
    train with seed 1 into ROW_s1, and every warm-up starts from the shared pretrained model (seed 0)."""
    rec, out = tmp_path / "rec", tmp_path / "out"
    (rec / "target").mkdir(parents=True)
    (rec / "cross_hand").mkdir()
    (rec / "cross_hand" / "corpus_summary.json").write_text("[]")
    for name in ("target", "target_gt", "cross_hand", "pretrain", "heldout"):
        (out / "traces" / name).mkdir(parents=True)
    env = {**os.environ, "TG": "echo", "REC": str(rec), "OUT": str(out), "ROWS": "scratch warmup", "SEED": "1"}
    path = ROOT / "benchmarks" / "closed_loop_models.sh"
    run = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(
        f"train --out {out}/scratch_s1 threads=2 moving_weight=4 seed=1 --data {out}/traces/target"
    )
    assert f"bench metaworld --protocol avdc --ckpt {out}/scratch_s1" in lines[1]  # (eval-traces: quiet)
    assert lines[2].startswith(f"train --out {out}/pretrained threads=2 moving_weight=4 seed=0 ")
    assert lines[3].startswith(f"train --out {out}/warmup_s1 threads=2 moving_weight=4 seed=1 ")
    assert f"--init {out}/pretrained" in lines[3] and f"--json {out}/bench_warmup_s1.json" in lines[4]
    # the painted row benches the cross model itself, with the Sawyer drawn as the hand
    env |= {"ROWS": "cross cross_painted", "SEED": "0"}
    run = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    benches = [line for line in run.stdout.splitlines() if line.startswith("bench ")]
    assert len(benches) == 2 and all(f"--ckpt {out}/cross " in line for line in benches)
    assert f"--json {out}/bench_cross.json" in benches[0] and "--observe-as" not in benches[0]
    assert benches[1].endswith(f"--json {out}/bench_cross_painted.json --observe-as hand")
