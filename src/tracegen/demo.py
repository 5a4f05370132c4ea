"""``tracegen demo``: the whole TraceGen loop on a small, real configuration, with a report at the end.

Stages (each cached under ``OUT/<stage>/``; a second run only redoes what is missing):

1. **record** — simulated demonstrations with exact ground truth: a pretraining corpus of *other* Meta-World tasks
   performed by three embodiments (Sawyer, floating gripper, hand-like effector), five demonstrations of each target
   task (benchmark tasks, Sawyer), and held-out evaluation episodes.
2. **traces** — observation-trace-language triplets: TraceForge (tracker + depth + cameras, no ground truth) turns
   the pretraining and target videos into traces; the held-out episodes keep their exact traces, to score against.
3. **train** — TraceGen pretrained on the corpus, then warmed up on the five target videos; and the same model
   trained from scratch on the five videos only.
4. **eval** — trace accuracy on held-out episodes (pretrained + warm-up vs scratch vs static / nearest-neighbour).
5. **closed loop** — the executor drives the Sawyer from each model's predictions, beside the oracle planner.
6. **report** — ``OUT/report.md`` and ``OUT/report.html`` with pictures.

Everything runs the same code as the full commands; only the sizes are small.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tracegen.io.files import load_json, save_json

PRETRAIN_TASKS = (
    "drawer-open",
    "drawer-close",
    "reach",
    "push",
    "window-open",
    "window-close",
    "plate-slide",
    "coffee-push",
)
TARGET_TASKS = ("button-press", "door-close", "handle-press")
EMBODIMENTS = ("sawyer", "floating_gripper", "hand")


@dataclass
class DemoConfig:
    out: str = "demo_out"
    size: int = 128  # rendered image size (square)
    camera: str = "corner"
    pretrain_tasks: tuple[str, ...] = PRETRAIN_TASKS
    pretrain_embodiments: tuple[str, ...] = EMBODIMENTS
    pretrain_episodes: int = 2  # per task x embodiment
    target_tasks: tuple[str, ...] = TARGET_TASKS
    target_demos: int = 5  # per task (the paper's five warm-up videos)
    eval_episodes: int = 2  # held-out episodes per target task, for trace accuracy
    rollout_seeds: int = 3  # closed-loop episodes per target task and planner
    pretrain_steps: int = 500
    warmup_steps: int = 150
    batch_size: int = 32
    preset: str = "default"
    workers: int = 2  # TraceForge worker processes (one per core here)
    demo_seed: int = 1000  # demonstrations come from seeds >= this (evaluation uses 0..)
    stages: list[str] = field(default_factory=lambda: ["record", "traces", "train", "eval", "closed_loop"])


STAGES = ("record", "traces", "train", "eval", "closed_loop")

SCALES = {
    "default": {},
    # the test suite's end-to-end run: every stage, tiny sizes
    "tiny": dict(
        size=64,
        pretrain_tasks=("drawer-close", "reach"),
        pretrain_embodiments=("sawyer", "hand"),
        pretrain_episodes=1,
        target_tasks=("button-press",),
        target_demos=2,
        eval_episodes=1,
        rollout_seeds=1,
        pretrain_steps=20,
        warmup_steps=10,
        batch_size=8,
        preset="tiny",
        workers=1,
    ),
}


class Stage:
    """A cached stage: its results live in ``OUT/<name>/result.json``, written last."""

    def __init__(self, cfg: DemoConfig, name: str):
        self.dir = Path(cfg.out) / name
        self.marker = self.dir / "result.json"

    @property
    def done(self) -> bool:
        return self.marker.exists()

    def finish(self, result: dict) -> dict:
        save_json(self.marker, result)
        return result

    def load(self) -> dict:
        return load_json(self.marker)


# --- stages ---


def record(cfg: DemoConfig, stage: Stage) -> dict:
    from tracegen.sim.recorder import CorpusEntry, RecordConfig, record_group

    rec = RecordConfig(height=cfg.size, width=cfg.size)
    groups = {
        "pretrain": [
            CorpusEntry("metaworld", t, e, (cfg.camera,), cfg.pretrain_episodes, cfg.demo_seed)
            for t in cfg.pretrain_tasks
            for e in cfg.pretrain_embodiments
        ],
        "target": [
            CorpusEntry("metaworld", t, "sawyer", (cfg.camera,), cfg.target_demos, cfg.demo_seed)
            for t in cfg.target_tasks
        ],
        "heldout": [
            CorpusEntry("metaworld", t, "sawyer", (cfg.camera,), cfg.eval_episodes, cfg.demo_seed + 500)
            for t in cfg.target_tasks
        ],
    }
    summary = {}
    for name, entries in groups.items():
        results = [record_group(e, stage.dir / name, rec) for e in _progress(entries, f"record {name}")]
        attempts = sum(r.attempts for r in results)
        summary[name] = {
            "episodes": sum(r.written + r.skipped for r in results),
            "expert_success": round(sum(r.successes for r in results) / attempts, 3) if attempts else None,
        }
    return summary


def traces(cfg: DemoConfig, stage: Stage) -> dict:
    from tracegen.forge.config import ForgeConfig
    from tracegen.forge.runners import run
    from tracegen.forge.sources import discover
    from tracegen.io.convert import convert

    rec, fcfg = Path(cfg.out) / "record", ForgeConfig()
    out: dict = {}
    for name in ("pretrain", "target"):
        summary = run(discover(rec / name, fcfg.source), fcfg, stage.dir / name, workers=cfg.workers, progress=True)
        if not summary["windows_kept"]:
            raise RuntimeError(f"TraceForge kept no window of {rec / name}: {summary['failures']}")
        keys = ("episodes_in", "episodes_out", "failures", "windows_kept", "windows_dropped", "seconds")
        out[name] = {k: summary[k] for k in keys}
    out["heldout"] = convert(rec / "heldout", stage.dir / "heldout", "tracegen")  # exact traces: the yardstick
    return out


def train(cfg: DemoConfig, stage: Stage) -> dict:
    from tracegen.train import TrainConfig
    from tracegen.train import train as run

    data = Path(cfg.out) / "traces"
    common = dict(preset=cfg.preset, batch_size=cfg.batch_size, eval_every=10**9, ckpt_every=10**9, log_every=25)
    runs = {
        "pretrained": TrainConfig(
            data=[str(data / "pretrain")],
            out=str(stage.dir / "pretrained"),
            steps=cfg.pretrain_steps,
            val_fraction=0.1,
            **common,
        ),
        "warmup": TrainConfig(
            data=[str(data / "target")],
            out=str(stage.dir / "warmup"),
            init=str(stage.dir / "pretrained"),
            steps=cfg.warmup_steps,
            val_fraction=0.0,
            warmup_steps=10,
            lr=1e-4,
            **common,
        ),
        "scratch": TrainConfig(
            data=[str(data / "target")],
            out=str(stage.dir / "scratch"),
            steps=cfg.warmup_steps,
            val_fraction=0.0,
            **common,
        ),
    }
    out = {}
    for name, tcfg in runs.items():
        t0 = time.perf_counter()
        result = run(tcfg)
        out[name] = result | {"seconds": round(time.perf_counter() - t0, 1), "steps": tcfg.steps}
    return out


def evaluate(cfg: DemoConfig, stage: Stage) -> dict:
    from tracegen.model.commands import run_eval

    runs, data = Path(cfg.out) / "train", str(Path(cfg.out) / "traces" / "heldout")
    keys = (
        "ade_px",
        "fde_px",
        "ade_cm",
        "fde_cm",
        "mse_norm",
        "ade_px_moving",
        "static_ade_px",
        "nn_ade_px",
        "static_ade_cm",
        "nn_ade_cm",
        "samples",
    )
    out = {}
    for name in ("warmup", "scratch"):
        r = run_eval(
            runs / name, [data], stage.dir / f"{name}.json", samples=1, steps=None, split="all", limit=None, seed=0
        )
        out[name] = {k: round(r[k], 3) if isinstance(r.get(k), float) else r.get(k) for k in keys}
    _draw_examples(cfg, stage)
    return out


def _draw_examples(cfg: DemoConfig, stage: Stage, count: int = 3) -> None:
    """Predicted (pretrained + warm-up) beside exact traces for a few held-out observations."""
    from tracegen.io.convert import trace_shards
    from tracegen.io.official import write_png
    from tracegen.model import TraceGen
    from tracegen.viz.overlay import draw_traces, point_colors, side_by_side
    from tracegen.viz.render import plot_3d
    from tracegen.viz.source import TraceView

    model = TraceGen.from_pretrained(Path(cfg.out) / "train" / "warmup")
    samples = [s for _, shard in trace_shards(Path(cfg.out) / "traces" / "heldout", "traces") for s in shard]
    picks = samples[:: max(1, len(samples) // count)][:count]
    preds = [model.predict(s.rgb, s.depth, s.instructions[0]).traj[0, 0] for s in picks]  # (N, L + 1, 3) each
    for i, (s, pred) in enumerate(zip(picks, preds, strict=True)):
        gt = draw_traces(s.rgb, s.traj[:, : s.num_valid], min_motion_px=1.0)
        write_png(stage.dir / f"example_{i}.png", side_by_side(draw_traces(s.rgb, pred, min_motion_px=1.0), gt))
    if picks and picks[0].K is not None:  # a 3D view of the first example: predicted and exact, camera frame
        s, pred = picks[0], preds[0]
        for name, traj in (("predicted", pred), ("exact", s.traj[:, : s.num_valid])):
            view = TraceView(
                stage.dir,
                s.rgb,
                traj,
                point_colors(len(traj)),
                f"{name}: {s.instructions[0]}",
                True,
                K=s.K,
                depth=s.depth,
            )
            plot_3d(view, stage.dir / f"example_3d_{name}.png")


def closed_loop(cfg: DemoConfig, stage: Stage) -> dict:
    from tracegen.act.planners import ModelPlanner, OraclePlanner
    from tracegen.act.rollout import rollout
    from tracegen.model import TraceGen
    from tracegen.sim.env import make_env
    from tracegen.sim.instructions import instructions

    runs = Path(cfg.out) / "train"
    planners = {
        "oracle": OraclePlanner(),
        "pretrained+warmup": ModelPlanner(TraceGen.from_pretrained(runs / "warmup")),
        "scratch": ModelPlanner(TraceGen.from_pretrained(runs / "scratch")),
    }
    table: dict[str, dict[str, int]] = {name: {} for name in planners}
    plan_ms: dict[str, list[float]] = {name: [] for name in planners}
    for task in _progress(cfg.target_tasks, "closed loop"):
        env = make_env("metaworld", task, height=cfg.size, width=cfg.size)
        text = instructions("metaworld", task)[0]
        for name, planner in planners.items():
            wins = 0
            for seed in range(cfg.rollout_seeds):
                r = rollout(env, planner, cfg.camera, seed, text)
                wins += r.success
                plan_ms[name] += r.plan_ms
            table[name][task] = wins
        env.close()
    n = cfg.rollout_seeds * len(cfg.target_tasks)
    return {
        "episodes_per_planner": n,
        "successes": table,
        "success_rate": {k: round(sum(v.values()) / n, 3) for k, v in table.items()},
        "mean_plan_ms": {k: round(float(np.mean(v)), 1) for k, v in plan_ms.items() if v},
    }


RUNNERS = {"record": record, "traces": traces, "train": train, "eval": evaluate, "closed_loop": closed_loop}


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(list(items), desc=desc, leave=False)


# --- the driver ---


def preflight(cfg: DemoConfig) -> None:
    """Fail in the first seconds with what to do: unwritable output, no GL backend, too little disk."""
    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise SystemExit(f"error: cannot write to {out} ({e.strerror}); pass --out DIR in a writable place") from None
    free_gb = shutil.disk_usage(out).free / 1e9
    if free_gb < 1.0:
        raise SystemExit(f"error: only {free_gb:.2f} GB free under {out}; the demo needs about 1 GB")
    from tracegen.sim.render import check_gl_backend

    try:
        check_gl_backend()
    except Exception as e:  # noqa: BLE001 -- the sim package turns every backend failure into one message
        raise SystemExit(f"error: {e}") from None


def run_demo(cfg: DemoConfig, log=print) -> dict:
    preflight(cfg)
    results, timings = {}, {}
    started = time.perf_counter()
    for i, name in enumerate(cfg.stages, 1):
        stage = Stage(cfg, name)
        if stage.done:
            results[name] = stage.load()
            log(f"[{i}/{len(cfg.stages)}] {name}: cached")
            continue
        log(f"[{i}/{len(cfg.stages)}] {name} ...")
        t0 = time.perf_counter()
        stage.dir.mkdir(parents=True, exist_ok=True)
        results[name] = stage.finish(RUNNERS[name](cfg, stage) | {"seconds": round(time.perf_counter() - t0, 1)})
        log(f"[{i}/{len(cfg.stages)}] {name}: {results[name]['seconds']} s")
    timings = {k: v.get("seconds") for k, v in results.items()}
    summary = {
        "config": asdict(cfg),
        "results": results,
        "stage_seconds": timings,
        "total_seconds": round(sum(v or 0 for v in timings.values()), 1),  # cached stages at their original cost
        "this_run_seconds": round(time.perf_counter() - started, 1),
    }
    save_json(Path(cfg.out) / "summary.json", summary)
    from tracegen.viz.report import write_report

    write_report(Path(cfg.out), summary)
    return summary


def summary_table(summary: dict) -> str:
    """The closing table printed by ``tracegen demo``."""
    res = summary["results"]
    lines = [f"{'':24s}{'success':>9s}{'ADE px':>9s}{'ADE cm':>9s}"]
    loop = res.get("closed_loop", {}).get("success_rate", {})
    ev = res.get("eval", {})
    for name, key in (("pretrained + warm-up", "warmup"), ("scratch (5 videos)", "scratch")):
        rate = loop.get("pretrained+warmup" if key == "warmup" else key)
        e = ev.get(key, {})
        lines.append(f"{name:24s}{_fmt(rate, pct=True):>9s}{_fmt(e.get('ade_px')):>9s}{_fmt(e.get('ade_cm')):>9s}")
    if "oracle" in loop:
        lines.append(f"{'oracle traces':24s}{_fmt(loop['oracle'], pct=True):>9s}")
    if ev:
        w = ev.get("warmup", {})
        for label, prefix in (("static baseline", "static_"), ("nearest neighbour", "nn_")):
            px, cm = _fmt(w.get(prefix + "ade_px")), _fmt(w.get(prefix + "ade_cm"))
            lines.append(f"{label:24s}{'':>9s}{px:>9s}{cm:>9s}")
    return "\n".join(lines)


def _fmt(value, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if pct else f"{value:.2f}"


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
