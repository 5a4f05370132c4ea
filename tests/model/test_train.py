"""Training behaviour at tiny size: the loss falls, resume continues the same curve, DDP runs two processes."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from synthetic import tiny_train_config as tiny
from tracegen.errors import DataError
from tracegen.train import TrainConfig, build_model, parse_overrides, train


def losses(run):
    return [r["loss"] for r in map(json.loads, open(run / "log.jsonl")) if "loss" in r]


def test_loss_decreases_on_a_small_fixed_dataset(dataset, tmp_path):
    train(tiny(dataset, tmp_path / "run", 150, lr=3e-3))
    curve = losses(tmp_path / "run")
    assert np.mean(curve[-20:]) < 0.75 * np.mean(curve[:5])  # the flow loss has an irreducible noise floor
    assert (tmp_path / "run" / "model.safetensors").exists() and (tmp_path / "run" / "train_config.json").exists()


def test_resume_continues_the_same_loss_curve(dataset, tmp_path):
    train(tiny(dataset, tmp_path / "straight", 8))
    train(tiny(dataset, tmp_path / "resumed", 8, ckpt_every=4), stop_at=6)  # killed at step 6, checkpoint at 4
    train(tiny(dataset, tmp_path / "resumed", 8, ckpt_every=4))
    log = losses(tmp_path / "resumed")
    assert len(log) == 10  # steps 1-6, then 5-8 again after resuming from step 4
    log = log[:4] + log[6:]
    np.testing.assert_allclose(log, losses(tmp_path / "straight"), rtol=1e-6)


def test_warm_up_from_a_pretrained_checkpoint(dataset, tmp_path):
    train(tiny(dataset, tmp_path / "pre", 4))
    warm = tiny(dataset, tmp_path / "warm", 3, init=str(tmp_path / "pre"), model={"moving_weight": 2.0, "dim": 64})
    result = train(warm)
    assert result["steps"] == 3 and (tmp_path / "warm" / "model.safetensors").exists()
    model = json.loads((tmp_path / "warm" / "config.json").read_text())["model"]
    assert model["moving_weight"] == 2.0 and model["dim"] == 32  # loss settings apply; the shape is the checkpoint's
    assert (tmp_path / "warm" / "training_state" / "ema.safetensors").exists()  # a resume reads the EMA from there
    dropped = build_model(tiny(dataset, tmp_path / "w2", 1, init=str(tmp_path / "pre"), model={"dropout": 0.3}))
    rates = {m.p for m in dropped.decoder.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.3}  # the layers themselves, not only the saved config


def test_overrides_reach_train_and_model_settings():
    cfg = parse_overrides(TrainConfig(), ["lr=1e-4", "dim=64", "model.depth=2", "image_channels=[8,16]"])
    assert cfg.lr == 1e-4 and cfg.model == {"dim": 64, "depth": 2, "image_channels": (8, 16)}
    with pytest.raises(ValueError, match="unknown setting 'nope'"):
        parse_overrides(TrainConfig(), ["nope=1"])
    for bad, message in (
        ("lr=abc", "setting lr takes a float, not 'abc'"),
        ("dim=abc", "setting dim takes an int, not 'abc'"),
        ("batch_size=0", "batch_size=0 \\(at least 1\\)"),
        ("val_fraction=1", "val_fraction=1 \\(in \\[0, 1\\)\\)"),
        ("steps=-5", "steps=-5"),
        ("device=gpu", "device=gpu: not a device"),
        ("split_by=camera", "split_by='camera' \\(rollout or episode\\)"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_overrides(TrainConfig(), [bad])  # before any work: nothing trained, no run folder
    with pytest.raises(ValueError, match="unknown preset 'bogus'"):
        parse_overrides(TrainConfig(preset="bogus"), [])


def test_ddp_two_processes(dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "tracegen.train",
        "--data",
        dataset,
        "--out",
        str(tmp_path / "ddp"),
        "--preset",
        "tiny",
        "--steps",
        "3",
        "batch_size=4",
        "log_every=1",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(losses(tmp_path / "ddp")) == 3 and (tmp_path / "ddp" / "model.safetensors").exists()


def test_ema_copies_during_warm_up_then_ramps_to_its_decay():
    from tracegen.train import ema_decay_at

    cfg = TrainConfig(warmup_steps=10, ema_decay=0.999)
    assert [ema_decay_at(s, cfg) for s in (0, 9)] == [0.0, 0.0]
    ramp = [ema_decay_at(s, cfg) for s in range(10, 12000)]  # (1 + k) / (10 + k) reaches 0.999 near k = 9000
    assert ramp[0] == 0.1 and all(b >= a for a, b in zip(ramp, ramp[1:], strict=False)) and ramp[-1] == 0.999
    assert ema_decay_at(110, cfg) < 0.95  # after 100 steps the average still follows the run closely


def test_a_gpu_asked_for_without_cuda_is_refused_before_any_work(dataset, tmp_path):
    """``device=auto`` trains on the CPU here; ``device=cuda`` on a machine without CUDA says what to do instead
    (the CUDA path itself -- nccl, one GPU per rank -- needs a GPU, which these machines do not have)."""
    import torch

    from tracegen.train import resolve_device

    if torch.cuda.is_available():
        pytest.skip("CUDA is present: nothing to refuse")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="use device=cpu"):
        train(tiny(dataset, tmp_path / "run", 2, device="cuda"))
    assert not (tmp_path / "run").exists()


def test_shift_augmentation_trains_and_out_of_range_shifts_are_refused(dataset, tmp_path):
    result = train(tiny(dataset, tmp_path / "shifted", 3, shift_cells=1))
    assert result["steps"] == 3 and np.isfinite(losses(tmp_path / "shifted")).all()
    with pytest.raises(ValueError, match="shift_cells=10"):
        train(tiny(dataset, tmp_path / "bad", 3, shift_cells=10))


def test_resuming_with_other_settings_is_refused(dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny(dataset, run, 8, ckpt_every=4), stop_at=5)  # killed after its checkpoint at step 4
    saved = (run / "train_config.json").read_text()
    with pytest.raises(DataError, match=r"lr: 0.0003 -> 0.001") as refused:
        train(tiny(dataset, run, 8, ckpt_every=4, lr=1e-3))
    assert refused.value.path == run / "train_config.json"
    with pytest.raises(DataError, match=r"model.moving_weight: 0.0 -> 3.0"):
        train(tiny(dataset, run, 8, ckpt_every=4, model={"moving_weight": 3.0}))
    with pytest.raises(DataError, match="has trained 4 steps; --steps 3"):
        train(tiny(dataset, run, 3, ckpt_every=4))
    assert (run / "train_config.json").read_text() == saved  # a refusal changes nothing
    # the preset's own value given explicitly, a setting the saved file predates, a longer schedule, other threads
    # and the same data named another way all resume
    older = json.loads(saved)
    del older["shift_cells"], older["split_by"]  # a run from before split_by split per-camera episodes
    (run / "train_config.json").write_text(json.dumps(older))
    with pytest.raises(DataError, match="split_by: 'episode' -> 'rollout'"):
        train(tiny(dataset, run, 10, ckpt_every=4))
    same = tiny(os.path.relpath(dataset), run, 10, ckpt_every=4, threads=1, model={"image_channels": (8, 16)})
    assert train(dataclasses.replace(same, split_by="episode"))["steps"] == 10


def test_a_run_resumes_from_another_working_directory(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(dataset, tmp_path)
    train(tiny(data, "run", 6, ckpt_every=3), stop_at=4)  # relative paths, as typed in tmp_path
    monkeypatch.chdir(tmp_path.parent)
    assert train(tiny(str(dataset), tmp_path / "run", 6, ckpt_every=3))["steps"] == 6


def test_module_entry_point_reports_bad_data_in_one_line(tmp_path):
    missing = tmp_path / "no_such_traces"
    cmd = [sys.executable, "-m", "tracegen.train", "--data", str(missing), "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {missing}: does not exist"
