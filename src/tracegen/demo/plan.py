"""What a demo run will do and how long it will take: the work of each stage, the expected times, and the time
left while it runs (refined by the stages already finished)."""

from __future__ import annotations

import dataclasses

from tracegen.demo.config import DemoConfig, pretrain_tasks
from tracegen.demo.stages import CLIP_PLANNERS, PLANNER_RUNS

# The reference machine's costs (2 cores, quiet), fitted to measured runs: the default demo on a fresh clone
# (docs/BENCHMARKS.md, "Demo": record 57 s, traces 52 s, train 198 s, closed loop 34 s) and the tiny demo
# (tests/test_demo.py): seconds of start-up per stage (worker processes importing torch and loading models dominate
# TraceForge's) and seconds per unit of work (work_units) with one worker at 128 x 128 px. Recording and TraceForge
# scale with the pixel count and split over the workers. On a shared machine the time left is scaled by how much
# slower the finished stages ran (TimeLeft).
STARTUP_SECONDS = {"record": 5.0, "traces": 20.0, "train": 5.0, "eval": 2.0, "closed_loop": 2.0}
UNIT_SECONDS = {"record": 1.6, "traces": 1.0, "eval": 1.0, "closed_loop": 0.95}  # per episode / video
STEP_SECONDS = {"tiny": 0.1, "default": 0.25}  # per training step at batch 32 (other presets: at least default's)


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
        "closed_loop": f"{len(PLANNER_RUNS)} planners x {len(closed_loop_episodes(cfg))} episodes ({loop}), and "
        f"{len(CLIP_PLANNERS)} clip(s) of each of {len(cfg.target_tasks[: cfg.clips])} task(s): "
        f"{units['closed_loop']} episodes' work",
    }
    lines = [f"tracegen demo, scale {scale}, into {cfg.out}:"]
    lines += [f"  {k:12s}{what[k]}; {minutes(expected[k])}" for k in cfg.stages]
    lines.append(f"  expected {minutes(sum(expected.values()))} on 2 cores (a rough estimate, refined while it runs)")
    return "\n".join(lines)
