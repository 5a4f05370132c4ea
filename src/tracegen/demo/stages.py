"""The demo's stages, each cached in ``OUT/<stage>/`` (``result.json`` written last)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tracegen.demo.config import DemoConfig, pretrain_tasks
from tracegen.io.files import load_json, save_json


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


def record_groups(cfg: DemoConfig) -> dict:
    """The recording plan: set name -> corpus entries (one per task x embodiment, every camera)."""
    from tracegen.sim.recorder import CorpusEntry

    cams = tuple(cfg.cameras)
    return {
        "pretrain": [
            CorpusEntry("metaworld", t, e, cams, cfg.pretrain_episodes, cfg.demo_seed)
            for t in pretrain_tasks(cfg)
            for e in cfg.pretrain_embodiments
        ],
        "target": [
            CorpusEntry("metaworld", t, "sawyer", cams, cfg.target_demos, cfg.demo_seed) for t in cfg.target_tasks
        ],
        "heldout": [
            CorpusEntry("metaworld", t, "sawyer", cams, cfg.eval_episodes, cfg.demo_seed + 500)
            for t in cfg.target_tasks
        ],
    }


def record(cfg: DemoConfig, stage: Stage) -> dict:
    """Each set through :func:`tracegen.sim.recorder.build_corpus` (``cfg.workers`` processes, resumable)."""
    from tracegen.sim.recorder import RecordConfig, build_corpus

    rec = RecordConfig(height=cfg.hw[0], width=cfg.hw[1])
    summary = {}
    for name, entries in record_groups(cfg).items():
        results = build_corpus(entries, stage.dir / name, rec, workers=cfg.workers, progress=True)
        attempts = sum(r.attempts for r in results)
        summary[name] = {
            "episodes": sum(r.written + r.skipped for r in results),
            "expert_success": round(sum(r.successes for r in results) / attempts, 3) if attempts else None,
            "errors": [f"{r.entry.task}/{r.entry.embodiment}: {r.error}" for r in results if r.error],
        }
        if not summary[name]["episodes"]:
            raise RuntimeError(f"recorded no {name} episode: {summary[name]['errors'] or 'every expert failed'}")
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
    common = dict(
        preset=cfg.preset,
        batch_size=cfg.batch_size,
        eval_every=10**9,
        ckpt_every=10**9,
        log_every=25,
        threads=cfg.workers,
    )
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


PLANNER_RUNS = {"oracle": None, "pretrained+warmup": "warmup", "scratch": "scratch"}  # planner -> train/ run
CLIP_PLANNERS = ("pretrained+warmup", "oracle")


def _planner(cfg: DemoConfig, name: str):
    from tracegen.act.planners import ModelPlanner, OraclePlanner
    from tracegen.model import TraceGen

    run = PLANNER_RUNS[name]
    return OraclePlanner() if run is None else ModelPlanner(TraceGen.from_pretrained(Path(cfg.out) / "train" / run))


def closed_loop(cfg: DemoConfig, stage: Stage) -> dict:
    """Success per planner and task (the demo's own episodes, or the benchmark protocol's) and a few clips."""
    return _protocol_loop(cfg, stage) if cfg.protocol else _demo_loop(cfg, stage)


def _demo_loop(cfg: DemoConfig, stage: Stage) -> dict:
    """Every planner on target tasks x cameras x ``rollout_seeds`` at the demo's image size; the first seed of the
    first ``clips`` tasks is recorded as a clip for :data:`CLIP_PLANNERS`."""
    from tracegen.act.rollout import rollout
    from tracegen.sim.env import make_env
    from tracegen.sim.instructions import instructions

    planners = {name: _planner(cfg, name) for name in PLANNER_RUNS}
    table: dict[str, dict[str, int]] = {name: {} for name in planners}
    plan_ms: dict[str, list[float]] = {name: [] for name in planners}
    clips = []
    for task in _progress(cfg.target_tasks, "closed loop"):
        env = make_env("metaworld", task, height=cfg.hw[0], width=cfg.hw[1])
        text = instructions("metaworld", task)[0]
        for name, planner in planners.items():
            table[name][task] = 0
            for camera in cfg.cameras:
                for seed in range(cfg.rollout_seeds):
                    if seed == 0 and camera == cfg.cameras[0] and _clipped(cfg, task, name):
                        r, clip = _clip_rollout(cfg, stage, env, planner, name, (task, camera, seed), text)
                        clips.append(clip)
                    else:
                        r = rollout(env, planner, camera, seed, text)
                    table[name][task] += r.success
                    plan_ms[name] += r.plan_ms
        env.close()
    n = cfg.rollout_seeds * len(cfg.target_tasks) * len(cfg.cameras)
    return {
        "episodes_per_planner": n,
        "successes": table,
        "success_rate": {k: round(sum(v.values()) / n, 3) for k, v in table.items()},
        "mean_plan_ms": {k: round(float(np.mean(v)), 1) for k, v in plan_ms.items() if v},
        "clips": clips,
    }


def _protocol_loop(cfg: DemoConfig, stage: Stage) -> dict:
    """Each planner through :func:`tracegen.bench.metaworld.run_bench` on ``cfg.protocol`` (restricted to the
    target tasks, cameras and ``rollout_seeds``; resumable episode by episode), then clips: separate recorded
    rollouts of the protocol's first seed, since the benchmark's own episodes are not rendered."""
    from tracegen.act.rollout import RolloutConfig
    from tracegen.bench.metaworld import PROTOCOLS, BenchConfig, run_bench
    from tracegen.sim.env import make_env
    from tracegen.sim.instructions import instructions

    runs, out = Path(cfg.out) / "train", {"successes": {}, "success_rate": {}, "mean_plan_ms": {}, "bench": {}}
    for name, run in PLANNER_RUNS.items():
        bench = BenchConfig(
            protocol=cfg.protocol,
            planner="oracle" if run is None else "model",
            ckpt=None if run is None else str(runs / run),
            out=str(stage.dir / f"bench_{run or name}.json"),
            tasks=tuple(cfg.target_tasks),
            cameras=tuple(cfg.cameras),
            seeds=cfg.rollout_seeds,
        )
        r = run_bench(bench)
        out["successes"][name] = {
            t: sum(int(v.split("/")[0]) for v in cams.values()) for t, cams in r["per_task"].items()
        }
        out["success_rate"][name] = round(r["overall_success"], 3)
        out["mean_plan_ms"][name] = r["mean_plan_ms"]
        out["bench"][name] = Path(bench.out).name
        out["episodes_per_planner"] = r["episodes"]
    proto, clips = PROTOCOLS[cfg.protocol], []
    tasks = cfg.target_tasks[: cfg.clips]
    planners = {name: _planner(cfg, name) for name in CLIP_PLANNERS} if tasks else {}
    as_benched = RolloutConfig(max_env_steps=proto.max_steps, max_replans=bench.max_replans)  # run_bench's settings
    for task in tasks:
        env = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1])
        text = instructions(proto.suite, task)[0]
        for name, planner in planners.items():
            episode = (task, cfg.cameras[0], proto.eval_seeds[0])
            clips.append(_clip_rollout(cfg, stage, env, planner, name, episode, text, as_benched)[1])
        env.close()
    return out | {"protocol": proto.name, "clips": clips}


def _clipped(cfg: DemoConfig, task: str, planner: str) -> bool:
    return planner in CLIP_PLANNERS and task in cfg.target_tasks[: cfg.clips]


def _clip_rollout(
    cfg: DemoConfig, stage: Stage, env, planner, name: str, episode: tuple[str, str, int], text: str, rollout_cfg=None
):
    """The rollout of ``episode`` (task, camera, seed) watched by a :class:`~tracegen.viz.clip.ClipRecorder`;
    returns (its result, the clip's entry for the report: outcome, file relative to ``cfg.out``, size)."""
    from tracegen.act.rollout import RolloutConfig, rollout
    from tracegen.viz.clip import ClipRecorder, write_gif

    task, camera, seed = episode
    recorder = ClipRecorder(camera)
    r = rollout(env, planner, camera, seed, text, rollout_cfg or RolloutConfig(), recorder=recorder)
    path = write_gif(recorder.frames(), stage.dir / f"clip_{task}_{PLANNER_RUNS[name] or name}_{camera}_s{seed}.gif")
    outcome = dict(success=bool(r.success), reason=r.reason, steps=r.steps, plans=r.plans)
    where = dict(file=str(path.relative_to(cfg.out)), kb=path.stat().st_size // 1024)
    return r, dict(task=task, planner=name, camera=camera, seed=seed) | outcome | where


RUNNERS = {"record": record, "traces": traces, "train": train, "eval": evaluate, "closed_loop": closed_loop}


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(list(items), desc=desc, leave=False)
