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
5. **closed loop** — the executor drives the Sawyer from each model's predictions, beside the oracle planner; a few
   rollouts are kept as clips with the plan's trace drawn on them. With ``protocol="avdc"`` (``--full``) this is
   ``tracegen bench metaworld --protocol avdc`` (:func:`tracegen.bench.metaworld.run_bench`, resumable).
6. **report** — ``OUT/report.md`` and ``OUT/report.html`` with pictures and clips.

Everything runs the same code as the full commands; only the sizes are small (``SCALES``: ``tiny`` for the tests,
``default``, ``full`` for the benchmark protocol). After each stage the driver prints an estimate of the time left
(:class:`TimeLeft`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tracegen.io.files import load_json, save_json
from tracegen.sim.protocol import AVDC_METAWORLD

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
    """Sizes of every stage (``SCALES`` holds the named ones); images are ``size x width`` px."""

    out: str = "demo_out"
    size: int = 128  # rendered image height, px
    width: int | None = None  # rendered image width, px; None: square (size x size)
    cameras: tuple[str, ...] = ("corner",)  # every demonstration and closed-loop episode is seen from each
    pretrain_tasks: tuple[str, ...] | None = PRETRAIN_TASKS  # None: every Meta-World task that is not a target
    pretrain_embodiments: tuple[str, ...] = EMBODIMENTS
    pretrain_episodes: int = 2  # per task x embodiment
    target_tasks: tuple[str, ...] = TARGET_TASKS
    target_demos: int = 5  # per task (and camera): the paper's five warm-up videos
    eval_episodes: int = 2  # held-out episodes per target task, for trace accuracy
    rollout_seeds: int | None = 3  # closed-loop episodes per target task, camera and planner; None: the protocol's
    protocol: str | None = None  # closed loop: None, the demo's own episodes; "avdc", `tracegen bench metaworld`
    clips: int = 3  # rollout clips of the first seed of this many target tasks (warm-up model and oracle)
    pretrain_steps: int = 500
    warmup_steps: int = 150
    batch_size: int = 32
    preset: str = "default"
    workers: int = 2  # worker processes for recording and TraceForge, torch threads for training (one per core)
    demo_seed: int = 1000  # demonstrations come from seeds >= this (evaluation uses 0..)
    stages: list[str] = field(default_factory=lambda: ["record", "traces", "train", "eval", "closed_loop"])

    @property
    def hw(self) -> tuple[int, int]:
        """(height, width) of every rendered image, px."""
        return self.size, self.width or self.size


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
        clips=1,
    ),
    # the real benchmark protocol (hours on 2 cores): every AVDC task from its three cameras at its render size,
    # five demonstrations per task and camera, pretraining on every other Meta-World task, the closed loop of
    # `tracegen bench metaworld --protocol avdc` (11 tasks x 3 cameras x 25 seeds per planner)
    "full": dict(
        size=AVDC_METAWORLD.render_hw[0],
        width=AVDC_METAWORLD.render_hw[1],
        cameras=AVDC_METAWORLD.cameras,
        pretrain_tasks=None,
        pretrain_episodes=1,  # x 3 cameras x 3 embodiments x 39 tasks: 351 episodes
        target_tasks=AVDC_METAWORLD.tasks,
        target_demos=AVDC_METAWORLD.demos_per_task_camera,
        demo_seed=AVDC_METAWORLD.demo_seed_start,
        rollout_seeds=None,
        protocol="avdc",
        pretrain_steps=5000,
        warmup_steps=1000,
    ),
}


def pretrain_tasks(cfg: DemoConfig) -> tuple[str, ...]:
    """The pretraining tasks; ``None`` in the config means every Meta-World task that is not a target task."""
    if cfg.pretrain_tasks is not None:
        return cfg.pretrain_tasks
    from tracegen.sim.env import suite_names

    return tuple(t for t in suite_names("metaworld").tasks if t not in cfg.target_tasks)


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
    for task in cfg.target_tasks[: cfg.clips]:
        env = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1])
        text = instructions(proto.suite, task)[0]
        for name in CLIP_PLANNERS:
            episode = (task, cfg.cameras[0], proto.eval_seeds[0])
            clips.append(_clip_rollout(cfg, stage, env, _planner(cfg, name), name, episode, text)[1])
        env.close()
    return out | {"protocol": proto.name, "clips": clips}


def _clipped(cfg: DemoConfig, task: str, planner: str) -> bool:
    return planner in CLIP_PLANNERS and task in cfg.target_tasks[: cfg.clips]


def _clip_rollout(cfg: DemoConfig, stage: Stage, env, planner, name: str, episode: tuple[str, str, int], text: str):
    """The rollout of ``episode`` (task, camera, seed) watched by a :class:`~tracegen.viz.clip.ClipRecorder`;
    returns (its result, the clip's entry for the report: outcome, file relative to ``cfg.out``, size)."""
    from tracegen.act.rollout import rollout
    from tracegen.viz.clip import ClipRecorder, write_gif

    task, camera, seed = episode
    recorder = ClipRecorder(camera)
    r = rollout(env, planner, camera, seed, text, recorder=recorder)
    path = write_gif(recorder.frames(), stage.dir / f"clip_{task}_{PLANNER_RUNS[name] or name}_{camera}_s{seed}.gif")
    outcome = dict(success=bool(r.success), reason=r.reason, steps=r.steps, plans=r.plans)
    where = dict(file=str(path.relative_to(cfg.out)), kb=path.stat().st_size // 1024)
    return r, dict(task=task, planner=name, camera=camera, seed=seed) | outcome | where


RUNNERS = {"record": record, "traces": traces, "train": train, "eval": evaluate, "closed_loop": closed_loop}


def _progress(items, desc: str):
    from tqdm.auto import tqdm

    return tqdm(list(items), desc=desc, leave=False)


# --- the time left ---

# The reference machine's costs (2 shared cores), fitted to two measured runs: the default demo's stage split in
# docs/BENCHMARKS.md (one worker) and the tiny demo's (tests/test_demo.py): seconds of start-up per stage (model
# loading dominates TraceForge's, twice) and seconds per unit of work (work_units) with one worker at 128 x 128 px.
# Recording and TraceForge scale with the pixel count and split over the workers.
STARTUP_SECONDS = {"record": 5.0, "traces": 50.0, "train": 5.0, "eval": 2.0, "closed_loop": 2.0}
UNIT_SECONDS = {"record": 1.7, "traces": 5.3, "eval": 1.0, "closed_loop": 1.3}  # per episode / video
STEP_SECONDS = {"tiny": 0.1, "default": 0.52}  # per training step at batch 32 (other presets: at least default's)


def work_units(cfg: DemoConfig) -> dict[str, int]:
    """How much each stage has to do: episodes recorded (one per camera), videos through TraceForge, training
    steps, held-out episodes scored, closed-loop episodes (every planner; a clip counts once more: its renders
    cost about an episode, and with a protocol it is an episode of its own)."""
    cams = len(cfg.cameras)
    pretrain = len(pretrain_tasks(cfg)) * len(cfg.pretrain_embodiments) * cfg.pretrain_episodes * cams
    target, heldout = (len(cfg.target_tasks) * n * cams for n in (cfg.target_demos, cfg.eval_episodes))
    clips = len(cfg.target_tasks[: cfg.clips]) * len(CLIP_PLANNERS)
    return {
        "record": pretrain + target + heldout,
        "traces": pretrain + target,
        "train": cfg.pretrain_steps + 2 * cfg.warmup_steps,
        "eval": heldout,
        "closed_loop": len(PLANNER_RUNS) * len(closed_loop_episodes(cfg)) + clips,  # a clip's renders: ~1 episode
    }


def closed_loop_episodes(cfg: DemoConfig) -> list[tuple[str, str, int]]:
    """(task, camera, seed) of every closed-loop episode per planner: the protocol's (restricted to the target
    tasks, cameras and ``rollout_seeds``) or the demo's own."""
    if not cfg.protocol:
        return [(t, c, s) for t in cfg.target_tasks for c in cfg.cameras for s in range(cfg.rollout_seeds)]
    from tracegen.bench.metaworld import BenchConfig, resolve

    bench = BenchConfig(cfg.protocol, "oracle", tasks=tuple(cfg.target_tasks), cameras=tuple(cfg.cameras))
    return resolve(dataclasses.replace(bench, seeds=cfg.rollout_seeds))[1]


def expected_seconds(cfg: DemoConfig) -> dict[str, float]:
    """Each stage's expected wall time on the reference machine, seconds."""
    units, px, workers = work_units(cfg), cfg.hw[0] * cfg.hw[1] / 128**2, max(1, cfg.workers)
    per_unit = {k: v * units[k] for k, v in UNIT_SECONDS.items()}
    per_unit["record"] *= px / workers
    per_unit["traces"] *= px / workers
    per_unit["train"] = units["train"] * STEP_SECONDS.get(cfg.preset, STEP_SECONDS["default"]) * cfg.batch_size / 32
    return {k: round(STARTUP_SECONDS[k] + per_unit[k], 1) for k in cfg.stages}


class TimeLeft:
    """The remaining wall time: the expected cost of the stages still to run, times the ratio of measured to
    expected time over the stages finished in this run (how much slower or faster this machine is right now)."""

    def __init__(self, expected: dict[str, float]):
        self.expected, self.measured = expected, {}

    def finished(self, stage: str, seconds: float) -> None:
        self.measured[stage] = seconds

    @property
    def seconds(self) -> float:
        done = sum(self.expected[s] for s in self.measured)
        speed = sum(self.measured.values()) / done if done else 1.0
        return speed * sum(v for s, v in self.expected.items() if s not in self.measured)

    def __str__(self) -> str:
        return f"{minutes(self.seconds)} left"


def minutes(seconds: float) -> str:
    """``<1 min``, ``~N min``, or ``~N min (~H h)`` for long runs."""
    if seconds < 30:
        return "<1 min"
    text = f"~{round(seconds / 60)} min"
    return text + f" (~{seconds / 3600:.1f} h)" if seconds >= 5400 else text


def describe_plan(cfg: DemoConfig, scale: str) -> str:
    """What a run of ``cfg`` will do, stage by stage, with the expected times (``tracegen demo --dry-run``)."""
    units, expected = work_units(cfg), expected_seconds(cfg)
    h, w = cfg.hw
    loop = f"protocol {cfg.protocol} via `tracegen bench metaworld`" if cfg.protocol else "the demo's own episodes"
    what = {
        "record": f"{units['record']} episodes ({h} x {w} px; cameras {', '.join(cfg.cameras)}; "
        f"{len(pretrain_tasks(cfg))} pretraining tasks x {len(cfg.pretrain_embodiments)} embodiments, "
        f"{len(cfg.target_tasks)} target task(s)), {cfg.workers} worker(s)",
        "traces": f"{units['traces']} videos through TraceForge, {cfg.workers} worker(s)",
        "train": f"pretrain {cfg.pretrain_steps} + warm-up {cfg.warmup_steps} + scratch {cfg.warmup_steps} steps, "
        f"batch {cfg.batch_size}, preset {cfg.preset}",
        "eval": f"{units['eval']} held-out episodes, static and nearest-neighbour baselines",
        "closed_loop": f"{units['closed_loop']} episodes: {len(PLANNER_RUNS)} planners x "
        f"{len(closed_loop_episodes(cfg))} ({loop}); clips of {len(cfg.target_tasks[: cfg.clips])} task(s)",
    }
    lines = [f"tracegen demo, scale {scale}, into {cfg.out}:"]
    lines += [f"  {k:12s}{what[k]}; {minutes(expected[k])}" for k in cfg.stages]
    lines.append(f"  expected {minutes(sum(expected.values()))} on 2 cores (a rough estimate, refined while it runs)")
    return "\n".join(lines)


# --- the driver ---


def make_config(scale: str = "default", **overrides) -> DemoConfig:
    """The configuration of a scale in :data:`SCALES`, with ``overrides`` (e.g. ``out``) on top."""
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale {scale!r}; choose {', '.join(SCALES)}")
    return DemoConfig(**(SCALES[scale] | overrides))


def check_config(cfg: DemoConfig) -> None:
    """Refuse, in one line, a configuration that could not finish: unknown stages, a protocol that does not hold
    the target tasks or cameras, or images of another size than the protocol renders."""
    bad = [s for s in cfg.stages if s not in STAGES]
    if bad:
        raise SystemExit(f"error: unknown demo stage(s) {bad}; stages: {', '.join(STAGES)}")
    if not cfg.protocol:
        if cfg.rollout_seeds is None:
            raise SystemExit("error: rollout_seeds=None (every seed) needs a protocol, e.g. protocol='avdc'")
        return
    from tracegen.bench.metaworld import PROTOCOLS

    try:
        closed_loop_episodes(cfg)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    hw = PROTOCOLS[cfg.protocol].render_hw
    if cfg.hw != hw:
        raise SystemExit(
            f"error: protocol {cfg.protocol} renders {hw[0]} x {hw[1]} px images, the demo {cfg.hw[0]} x {cfg.hw[1]}; "
            f"train on what the benchmark shows: size={hw[0]} width={hw[1]}"
        )


def check_cache(cfg: DemoConfig) -> None:
    """Cached stages are only reused by the configuration that made them (``OUT/config.json``; where it goes, how
    many workers and which stages run do not change results)."""
    same = {k: v for k, v in asdict(cfg).items() if k not in ("out", "workers", "stages")}
    path, mine = Path(cfg.out) / "config.json", json.loads(dumps(same))
    if path.exists() and load_json(path) != mine:
        raise SystemExit(
            f"error: {cfg.out} holds a demo of another configuration ({path}); pass --fresh to start over there, "
            "or --out DIR"
        )
    save_json(path, mine)


def preflight(cfg: DemoConfig) -> None:
    """Fail in the first seconds with what to do: a configuration that cannot finish, unwritable output, too
    little disk, no GL backend, cached stages of another configuration."""
    check_config(cfg)
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
    check_cache(cfg)


def run_demo(cfg: DemoConfig, log=print) -> dict:
    preflight(cfg)
    results = {}
    started = time.perf_counter()
    todo = [name for name in cfg.stages if not Stage(cfg, name).done]
    left = TimeLeft({k: v for k, v in expected_seconds(cfg).items() if k in todo})
    if todo:
        log(f"{len(todo)} stage(s) to run: {', '.join(todo)}; {left} (estimated)")
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
        left.finished(name, results[name]["seconds"])
        more = any(s not in left.measured for s in left.expected)
        log(f"[{i}/{len(cfg.stages)}] {name}: {results[name]['seconds']} s" + (f"; {left}" if more else ""))
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
