"""One readable training loop for TraceGen: pretraining and warm-up are the same loop with another init and data.

    tracegen train --data DATA [DATA ...] --out RUN [--init PRETRAINED] [--preset default] [--steps N] [key=value ...]
    torchrun --nproc_per_node 2 -m tracegen.train --data DATA --out RUN      # data-parallel (gloo on CPU, nccl on GPUs)

Every step draws its batch, its noise and its dropout from a generator seeded by (seed, step, rank), so a run that is
killed and resumed from its last checkpoint continues the very same loss curve. A run folder holds::

    RUN/model.safetensors, RUN/config.json     EMA weights + model config: TraceGen.from_pretrained(RUN)
    RUN/retrieval.safetensors                  with retrieval=True: the bank of training triplets (written once)
    RUN/train_config.json                      the TrainConfig that made it
    RUN/training_state/                        raw weights, optimizer state (safetensors), step: for resuming
    RUN/log.jsonl, RUN/tb/                     metrics (JSON lines; TensorBoard)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tracegen.errors import DataError
from tracegen.io.convert import detect, trace_shards
from tracegen.io.files import atomic_dir, describe_changes, load_json, parse_setting, recover_dir, save_json
from tracegen.model.augment import color_jitter, shift_by_cells
from tracegen.model.config import TraceGenConfig, preset
from tracegen.model.data import Example, collate, make_example, source_ids
from tracegen.model.retrieval import RetrievalBank
from tracegen.model.tracegen import TraceGen, without_retired
from tracegen.settings import ABOVE_ZERO, AT_LEAST_ONE, AT_LEAST_ZERO, FRACTION, out_of_range, rules, same_kind


@dataclass
class TrainConfig:
    data: list[str] = field(default_factory=list)  # trace datasets (tracegen or official layout)
    out: str = "runs/tracegen"
    init: str | None = None  # a pretrained checkpoint folder: warm-up / fine-tuning
    preset: str = "default"
    steps: int = 2000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    val_fraction: float = 0.1  # of episodes
    split_by: str = "rollout"  # the validation split and retrieval's own-episode exclusion: "rollout" (one rollout's
    # films by several cameras together) or "episode" (each film on its own: runs before 2026-12-08)
    seed: int = 0
    color_jitter: float = 0.2  # brightness / contrast / saturation amplitude; 0 = off
    shift_cells: int = 0  # translate each observation by up to this many query-grid cells, its trace moved to match
    # (tracegen.model.augment.shift_by_cells); 0 = off
    log_every: int = 25
    eval_every: int = 250
    ckpt_every: int = 250
    threads: int = 2
    device: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda or cuda:N; DDP: one GPU per rank
    model: dict[str, Any] = field(default_factory=dict)  # model config overrides (shape fields ignored with init)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Refuse, before any work, a value no run can use (naming the setting): a number of the wrong kind or out
        of range, an unknown preset, a model setting its preset rejects, a device this torch does not have."""
        default = TrainConfig()
        for f in dataclasses.fields(self):
            if f.name not in ("data", "model"):
                same_kind(f.name, getattr(default, f.name), getattr(self, f.name))  # ValueError naming it
        bad = out_of_range(self, _RANGES)
        if self.split_by not in ("rollout", "episode"):
            bad.append(f"split_by={self.split_by!r} (rollout or episode)")
        if bad:
            raise ValueError(f"training settings out of range: {', '.join(bad)}")
        if self.init is None:
            preset(self.preset, **self.model)  # ValueError naming an unknown preset or a bad model setting
        resolve_device(self.device)  # ValueError: a CUDA device without CUDA


# what TrainConfig's numbers must be
_RANGES = rules(AT_LEAST_ONE, "steps", "batch_size", "threads", "log_every", "eval_every", "ckpt_every")
_RANGES |= rules(ABOVE_ZERO, "lr", "grad_clip")
_RANGES |= rules(AT_LEAST_ZERO, "weight_decay", "warmup_steps", "color_jitter", "shift_cells")
_RANGES |= rules(FRACTION, "ema_decay", "val_fraction")
_RANGES |= {"min_lr_ratio": ("in [0, 1]", lambda v: 0 <= v <= 1)}


# --- data ---


def load_examples(dirs: list[str], cfg: TraceGenConfig) -> tuple[list[Example], list[str]]:
    """Every triplet of the given datasets as model examples; non-finite samples are reported and skipped."""
    examples, skipped = [], []
    for d in dirs:
        for _, samples in trace_shards(d, detect(d)):
            for s in samples:
                ex = make_example(s, cfg)
                if all(np.isfinite(a).all() for a in (ex.x0, ex.depth, ex.traj[..., :2])):
                    examples.append(ex)
                else:
                    skipped.append(f"{s.meta.get('episode_id')}@{s.meta.get('query_frame')}")
    if not examples:
        raise ValueError(f"no usable training samples in {dirs}")
    return examples, skipped


def split_by_episode(
    examples: list[Example], val_fraction: float, seed: int, by: str = "rollout"
) -> tuple[list[Example], list[Example]]:
    """Hold out whole rollouts (never samples of a training rollout, through any camera) for validation; ``by=
    "episode"``: whole per-camera episodes, as runs before 2026-12-08 did."""
    ids = source_ids(examples, by)
    episodes = sorted(set(ids))
    random.Random(seed).shuffle(episodes)
    n_val = int(round(val_fraction * len(episodes))) if len(episodes) > 1 else 0
    val_ids = set(episodes[:n_val])
    train = [e for e, i in zip(examples, ids, strict=True) if i not in val_ids]
    return train, [e for e, i in zip(examples, ids, strict=True) if i in val_ids]


def make_batch(
    model: TraceGen,
    examples: list[Example],
    idx: list[int],
    g: torch.Generator,
    jitter: float = 0.0,
    shift_cells: int = 0,
    top_k: int | None = None,
) -> dict:
    """A training batch on the model's device (built and augmented on the CPU, with the CPU generator ``g``).
    With retrieval, each sample's neighbour is one of the ``top_k`` (default: the config's) nearest triplets of
    other episodes."""
    picks = [examples[i] for i in idx]
    texts = [e.instructions[int(torch.randint(len(e.instructions), (1,), generator=g))] for e in picks]
    batch = collate(picks, texts)
    batch["text_emb"] = model.embed_texts(texts)
    # retrieval (before the jitter, like at test time): a neighbour from another rollout, one of the top k; its
    # scene (retrieval_scene) is not jittered, so the model learns to compare scenes across changes of colour
    own = source_ids(picks, model.bank.ids) if model.bank is not None else None  # left out of their own search
    batch = model.with_retrieved(batch, own, top_k or model.cfg.retrieval_top_k, g)
    if jitter > 0:
        batch["rgb"] = color_jitter(batch["rgb"], jitter, g)
    if shift_cells > 0:
        batch = shift_by_cells(batch, shift_cells, model.cfg.grid, g)
    return {k: v.to(model.device) if torch.is_tensor(v) else v for k, v in batch.items()}


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: the rank's GPU when CUDA is present, else the CPU; a CUDA device asked for without CUDA is an
    error that says so (rather than a crash deep inside the first step)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={name}: this torch has no usable CUDA ({torch.__version__}); use device=cpu "
            "or install a CUDA build of torch"
        )
    if name == "cuda":
        name = f"cuda:{local_rank}"
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name}: not a device; use auto, cpu, cuda or cuda:N") from None


# --- optimisation state ---


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save_state(
    run: Path, step: int, model: TraceGen, ema: TraceGen, opt: torch.optim.Optimizer, tcfg: TrainConfig, extra: dict
) -> None:
    """Checkpoint atomically: everything needed to resume exactly (raw and EMA weights, optimiser, step) in one
    folder swapped in whole, then the EMA model for inference (a kill in between leaves that one a checkpoint
    behind; a resume reads the folder)."""
    from safetensors.torch import save_file

    save_json(run / "train_config.json", tcfg.to_dict())
    tensors, groups = flatten_optimizer(opt)
    with atomic_dir(run / "training_state") as tmp:
        for name, weights in (("model", model), ("ema", ema)):
            save_file(
                {k: v.cpu().contiguous() for k, v in weights.state_dict().items()}, str(tmp / f"{name}.safetensors")
            )
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        save_json(tmp / "state.json", {"step": step, "param_groups": groups, **extra})
    ema.save_pretrained(run)


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    sd = opt.state_dict()
    tensors = {f"{i}.{k}": v.detach().cpu().clone() for i, s in sd["state"].items() for k, v in s.items()}
    return tensors, sd["param_groups"]


def load_state(run: Path, model: TraceGen, ema: TraceGen, opt: torch.optim.Optimizer) -> dict:
    from safetensors.torch import load_file

    state_dir = run / "training_state"
    meta = load_json(state_dir / "state.json")
    model.load_state_dict(without_retired(load_file(str(state_dir / "model.safetensors")), model))
    if (state_dir / "ema.safetensors").exists():
        ema.load_state_dict(without_retired(load_file(str(state_dir / "ema.safetensors")), ema))
    else:  # a run checkpointed before the EMA weights were kept here
        ema.load_state_dict(TraceGen.from_pretrained(run, load_bank=False).state_dict())
    flat = load_file(str(state_dir / "optimizer.safetensors"))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        i, name = key.split(".", 1)
        per_param.setdefault(int(i), {})[name] = value
    opt.load_state_dict({"state": per_param, "param_groups": meta["param_groups"]})
    return meta


def ema_decay_at(step: int, tcfg: TrainConfig) -> float:
    """0 (copy) during the learning-rate warm-up, then ramping as (1 + k) / (10 + k) up to ``ema_decay``.

    The ramp lets short runs (a warm-up of a few hundred steps) end with an average of their own recent weights
    rather than of the initial ones.
    """
    k = step - tcfg.warmup_steps
    return 0.0 if k < 0 else min(tcfg.ema_decay, (1 + k) / (10 + k))


@torch.no_grad()
def ema_update(ema: TraceGen, model: TraceGen, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameter by parameter."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1 - decay)


@torch.no_grad()
def validation_loss(model: TraceGen, examples: list[Example], batch_size: int, seed: int) -> float | None:
    """Flow loss on held-out examples with fixed noise (comparable across steps and runs)."""
    if not examples:
        return None
    model.eval()
    g = torch.Generator().manual_seed(seed)
    losses = []
    for start in range(0, len(examples), batch_size):
        idx = list(range(start, min(start + batch_size, len(examples))))
        batch = make_batch(model, examples, idx, g, 0.0, top_k=1)  # the nearest neighbour, as in inference
        losses.append(float(model.loss(batch, generator=g)) * len(idx))
    model.train()
    return sum(losses) / len(examples)


# --- the loop ---


# model config fields that shape only the training loss, not the weights: a warm-up (--init) may set them
LOSS_FIELDS = (
    "cond_dropout",
    "depth_dropout",
    "dropout",
    "moving_weight",
    "moving_threshold",
    "path_loss",
    "retrieval_top_k",
)


def build_model(tcfg: TrainConfig) -> TraceGen:
    if tcfg.init:
        model = TraceGen.from_pretrained(tcfg.init, load_bank=False)  # warm-up: architecture from the checkpoint
        # (a retrieval model's bank is rebuilt from the warm-up data)
        trainable = {k: v for k, v in tcfg.model.items() if k in LOSS_FIELDS}
        for k, v in trainable.items():
            setattr(model.cfg, k, v)
        for layer in model.decoder.modules():  # its dropout layers were built with the checkpoint's rate
            if isinstance(layer, torch.nn.Dropout):
                layer.p = model.cfg.dropout
        return model.train()
    return TraceGen(preset(tcfg.preset, **tcfg.model)).train()


# settings a resumed run may change: where it is, how long it runs (not shorter than it has run: another length
# reshapes the rest of its cosine schedule), the machine it runs on, how often it logs and saves
RESUME_FREE = ("out", "steps", "threads", "device", "log_every", "eval_every", "ckpt_every")


def check_resume(run: Path, tcfg: TrainConfig) -> None:
    """Refuse to resume ``run`` with other settings (data, init, model, optimiser, seed, ...) than it was started with,
    or with fewer steps than it has trained: the weights would continue under settings they were not trained with,
    and its ``train_config.json`` would no longer say what made them. The model compares as the configuration it
    builds (a preset default given explicitly is no change; under ``--init`` only the loss settings count); paths
    compare resolved, the saved ones from the folder the run was started in; a setting the saved file predates counts
    as its default."""
    path = run / "train_config.json"
    if not path.exists():
        return
    trained = int(load_json(run / "training_state" / "state.json")["step"])
    if tcfg.steps < trained:
        raise DataError(
            run,
            f"this run has trained {trained} steps; --steps {tcfg.steps} ends before that: give --steps >= {trained}",
        )
    saved = load_json(path)
    if not isinstance(saved, dict):
        raise DataError(path, "not a training configuration (a JSON object); delete the run or train into a new --out")
    saved = {**TrainConfig().to_dict(), "split_by": "episode", **saved}  # (a run from before split_by: episodes)
    started_in = _started_in(saved["out"], tcfg.out)
    changes = describe_changes(_resume_view(saved, started_in), _resume_view(tcfg.to_dict(), Path.cwd()))
    if changes:
        raise DataError(
            path,
            f"this run was started with other settings ({changes}); resuming it so would mix them in one model. "
            "Resume with the settings it was started with, or train into a new --out",
        )


def _resume_view(settings: dict[str, Any], folder: Path) -> dict[str, Any]:
    """What :func:`check_resume` compares of a :class:`TrainConfig` dict whose relative paths start at ``folder``."""
    view = {k: v for k, v in settings.items() if k not in RESUME_FREE + ("preset", "model", "data", "init")}
    view["data"] = [str((folder / p).resolve()) for p in settings["data"]]
    view["init"] = None if settings["init"] is None else str((folder / settings["init"]).resolve())
    if settings["init"] is None:  # the model it builds
        view["model"] = preset(settings["preset"], **settings["model"]).to_dict()
    else:  # the checkpoint's, with the loss settings the warm-up gives it
        view["model"] = {k: v for k, v in settings["model"].items() if k in LOSS_FIELDS}
    return json.loads(json.dumps(view))  # tuples as the lists JSON keeps


def training_data(run: Path, saved: dict[str, Any]) -> list[str]:
    """The absolute paths of the datasets run ``run`` trained on, from its saved ``train_config.json`` ``saved``
    (relative ones resolved from the folder it was started in, as a resume resolves them)."""
    started_in = _started_in(saved["out"], str(run))
    return [str((started_in / d).resolve()) for d in saved["data"]]


def _started_in(saved_out: str, out: str) -> Path:
    """The folder a run was started in: the resolved ``out`` less the saved ``out``'s relative path (the working
    directory when the saved one is absolute or is not its tail)."""
    saved, here = Path(os.path.normpath(saved_out)), Path(out).resolve()
    n = len(saved.parts)
    if saved.is_absolute() or n >= len(here.parts) or here.parts[-n:] != saved.parts:
        return Path.cwd()
    return Path(*here.parts[:-n])


def train(tcfg: TrainConfig, stop_at: int | None = None) -> dict:
    """Train (or resume) a run; returns the final metrics. ``stop_at`` ends the run early, as a kill would."""
    tcfg.check()
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = resolve_device(tcfg.device, int(os.environ.get("LOCAL_RANK", 0)))
    if world > 1 and device.type == "cuda" and tcfg.device not in ("auto", "cuda"):
        raise ValueError(
            f"device={tcfg.device} under torchrun would put every rank on one GPU; use device=cuda "
            "(each rank takes the GPU of its LOCAL_RANK)"
        )
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's collectives run on the current device
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.set_num_threads(max(1, tcfg.threads // world))
    torch.manual_seed(tcfg.seed)  # identical initial weights on every rank
    run = Path(tcfg.out)
    recover_dir(run / "training_state")  # a kill between a checkpoint's two renames: the one before it
    if (run / "training_state" / "state.json").exists():  # before any work: a resume must keep the run's settings
        check_resume(run, tcfg)
    model = build_model(tcfg).to(device)
    if not 0 <= tcfg.shift_cells < model.cfg.grid // 2:
        raise ValueError(
            f"shift_cells={tcfg.shift_cells}: use 0 (off) up to {model.cfg.grid // 2 - 1} cells of the "
            f"{model.cfg.grid}x{model.cfg.grid} grid"
        )
    if tcfg.shift_cells and model.cfg.retrieval:
        raise ValueError(
            "shift_cells moves the observation away from its retrieved trace; use shift_cells=0 with retrieval=True"
        )
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    examples, skipped = load_examples(tcfg.data, model.cfg)
    train_set, val_set = split_by_episode(examples, tcfg.val_fraction, tcfg.seed, tcfg.split_by)
    if tcfg.val_fraction > 0 and not val_set and rank == 0:
        episodes = len(set(source_ids(examples, tcfg.split_by)))
        print(
            f"warning: val_fraction={tcfg.val_fraction} of {episodes} episode(s) holds none out: no validation loss; "
            "score the run on a held-out dataset (tracegen eval-traces --data OTHER) or with --split all",
            file=sys.stderr,
        )
    if model.cfg.retrieval:  # the bank is the training triplets (a warm-up's: its own data)
        if len(set(source_ids(train_set, tcfg.split_by))) < 2:
            raise ValueError(
                f"retrieval=True trains on neighbours from other rollouts; the training split of "
                f"{tcfg.data} has {len(set(source_ids(train_set, tcfg.split_by)))} {tcfg.split_by}(s)"
            )
        bank = RetrievalBank.from_examples(train_set, model.text, scenes=model.cfg.retrieval_scene, ids=tcfg.split_by)
        model.bank = ema.bank = bank
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or any(w in name for w in ("pos", "null", "tag")) else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=tcfg.lr
    )
    start, best = 0, float("inf")
    if (run / "training_state" / "state.json").exists():
        meta = load_state(run, model, ema, opt)
        start, best = meta["step"], meta.get("best_val", float("inf"))
    ids = [device.index] if device.type == "cuda" else None
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids) if world > 1 else model
    log = JsonLog(run, enabled=rank == 0)
    if rank == 0:
        save_json(run / "train_config.json", tcfg.to_dict())
        log.write(
            {
                "event": "start",
                "step": start,
                "train_samples": len(train_set),
                "val_samples": len(val_set),
                "skipped_non_finite": skipped,
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
    bar = tqdm(range(start, tcfg.steps), initial=start, total=tcfg.steps, disable=rank != 0, desc="train")
    t0, val = time.perf_counter(), None
    for step in bar:
        if stop_at is not None and step >= stop_at:
            break
        g = torch.Generator().manual_seed(tcfg.seed * 1_000_003 + step * world + rank)
        idx = torch.randint(len(train_set), (tcfg.batch_size,), generator=g).tolist()
        batch = make_batch(model, train_set, idx, g, tcfg.color_jitter, tcfg.shift_cells)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tcfg)
        loss = net(batch, generator=g)
        finite = torch.isfinite(loss.detach()).float()
        if world > 1:  # every rank stops together (one rank alone would leave the others waiting in backward)
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        if not finite:
            raise FloatingPointError(f"non-finite loss at step {step} (samples {idx}); lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
        opt.step()
        ema_update(ema, model, ema_decay_at(step, tcfg))
        done = step + 1
        if rank == 0 and (done % tcfg.log_every == 0 or done == tcfg.steps):
            rate = (done - start) * tcfg.batch_size * world / (time.perf_counter() - t0)
            log.write(
                {"step": done, "loss": float(loss.detach()), "lr": lr_at(step, tcfg), "samples_per_s": round(rate, 1)}
            )
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
        if rank == 0 and (done % tcfg.eval_every == 0 or done == tcfg.steps):
            val = validation_loss(ema, val_set, tcfg.batch_size, tcfg.seed)
            if val is not None:
                best = min(best, val)
                log.write({"step": done, "val_loss": val})
        if rank == 0 and (done % tcfg.ckpt_every == 0 or done == tcfg.steps):
            save_state(run, done, model, ema, opt, tcfg, {"best_val": best})
    if rank == 0 and start >= tcfg.steps:  # a finished run resumed: its weights for inference, in case a kill came
        ema.save_pretrained(run)  # between its last checkpoint's training_state and them (nothing if unchanged)
    log.close()
    if world > 1:
        torch.distributed.barrier()
    return {"steps": tcfg.steps, "val_loss": val, "best_val_loss": best if best < float("inf") else None}


class JsonLog:
    """JSON lines in RUN/log.jsonl and scalars in TensorBoard (RUN/tb) when it is installed."""

    def __init__(self, run: Path, enabled: bool):
        self.enabled = enabled
        self.tb = None
        if enabled:
            run.mkdir(parents=True, exist_ok=True)
            self.file = open(run / "log.jsonl", "a")  # noqa: SIM115 (open for the run's lifetime)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run / "tb"))
            except ImportError:
                pass

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")
        self.file.flush()
        if self.tb is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, int | float) and k != "step":
                    self.tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()


def parse_overrides(tcfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Apply ``key=value`` overrides: TrainConfig fields, or model fields (``dim=192``, ``model.depth=6``)."""
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    model_fields = {f.name for f in dataclasses.fields(TraceGenConfig)}
    for item in overrides:
        key, value = parse_setting(item)
        key = key.removeprefix("model.")
        if key in train_fields and key not in ("model", "data"):
            setattr(tcfg, key, value)
        elif key in model_fields:
            tcfg.model[key] = tuple(value) if isinstance(value, list) else value
        else:
            raise ValueError(
                f"unknown setting {key!r}; train settings: {sorted(train_fields)}; "
                f"model settings: {sorted(model_fields)}"
            )
    tcfg.check()
    return tcfg


def main(argv: list[str] | None = None) -> None:
    """``python -m tracegen.train`` (for torchrun); the same options as ``tracegen train``."""
    import argparse

    from tracegen.provenance import provenance

    provenance()  # the code this process starts with (see tracegen.cli.main)

    p = argparse.ArgumentParser(description="Train TraceGen (see tracegen train --help)")
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--init")
    p.add_argument("--preset", default="default")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("overrides", nargs="*")
    a = p.parse_args(argv)
    tcfg = parse_overrides(
        TrainConfig(data=a.data, out=a.out, init=a.init, preset=a.preset, steps=a.steps), a.overrides
    )
    print(json.dumps(train(tcfg)))


if __name__ == "__main__":
    from tracegen.errors import run_cli

    run_cli(main)  # bad data: one line per rank, exit 2
