"""The closed-loop Meta-World benchmark on the AVDC protocol: traces -> executor -> success, beside AVDC's table.

    tracegen bench metaworld --protocol avdc --ckpt RUN --json results.json [--tasks ...] [--cameras ...]
    tracegen bench metaworld --protocol mini --planner oracle --json oracle.json

Every finished episode is appended to ``<json>.episodes.jsonl`` as it ends, so a killed run resumes where it stopped
and never counts an episode twice. With ``videos = N`` the first N seeds of each task x camera are also written as
GIFs (:class:`tracegen.viz.clip.ClipRecorder`: the planning camera with each plan's moving tracks) to
``<json stem>.videos/<task>_<camera>_<seed>.gif``, named in the episode's record (``"video"``, relative to the
JSON's folder). A crashing episode (simulation instability, NaN action) is recorded as a failure
with its reason and the run goes on.

With ``workers > 1`` the episodes run in that many spawned processes (:func:`_pooled`), each loading the planner once
and keeping its current task's simulator; the log, the summary and the table are the same as with one process. A
process that dies (a segfault) takes the episodes in flight with it: they run again one at a time, and one that
kills its process alone is recorded as a failure (``error: worker process died (...)``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracegen.io.files import atomic_path, describe_changes, load_json, parse_setting, save_json
from tracegen.provenance import code_label, provenance
from tracegen.settings import all_settings, apply_settings, changed_settings
from tracegen.sim.protocol import AVDC_METAWORLD, Protocol

# AVDC (full) per-task success, % (AVDC Table 1; Meta-World v2, 3 cameras x 25 seeds; ANCHORS.md §2.1)
AVDC_PUBLISHED = {
    "door-open": 72.0,
    "door-close": 89.3,
    "basketball": 37.3,
    "shelf-place": 18.7,
    "button-press": 60.0,
    "button-press-topdown": 24.0,
    "faucet-close": 53.3,
    "faucet-open": 24.0,
    "handle-press": 81.3,
    "hammer": 8.0,
    "assembly": 6.7,
}
AVDC_OVERALL = 43.1
PROTOCOLS = {
    "avdc": AVDC_METAWORLD,
    "mini": dataclasses.replace(AVDC_METAWORLD, name="avdc-mini", cameras=("corner",), eval_seeds=tuple(range(5))),
}


@dataclass
class BenchConfig:
    protocol: str = "avdc"
    planner: str = "model"  # model | oracle | neighbour
    ckpt: str | None = None
    data: tuple[str, ...] | None = None  # the neighbour planner's training traces (trace dataset folders)
    out: str = "bench.json"
    tasks: tuple[str, ...] | None = None  # subsets of the protocol's
    cameras: tuple[str, ...] | None = None
    seeds: int | None = None  # the first N evaluation seeds
    max_replans: int = 40  # plans per episode at most (AVDC allowed 1 + 5 predictions of 8-frame videos)
    sample_steps: int | None = None
    guidance: float | None = None  # classifier-free guidance of the model planner (None: the checkpoint's)
    restore_speed: bool = False  # the model planner's moving steps get the retargeted step length back
    workers: int = 1  # processes running episodes (spawned; each loads the planner once)
    videos: int = 0  # GIFs of the first N seeds of each task x camera
    observe_as: str | None = None  # a Meta-World embodiment: the planner sees the robot drawn as it (cross-painting,
    # sim.painting), e.g. "hand" for a model warmed up on the hand-like effector's videos; the Sawyer still acts
    observe_reveal: bool = False  # ... drawn with the scene the robot hides (an upper bound no real camera sees)
    settings: tuple[str, ...] = ()  # key=value changes to the executor's rules: RolloutConfig fields, executor.FIELD
    planner_factory: str | None = None  # internal (tests): "module:function", function(cfg) -> Planner, in place of
    # `planner`; importable in a spawned process


@dataclass(frozen=True)
class Job:
    """One episode to run; ``video``: where its GIF goes (relative to the JSON's folder), if it gets one."""

    task: str
    camera: str
    seed: int
    video: str | None = None


def resolve(cfg: BenchConfig) -> tuple[Protocol, list[tuple[str, str, int]]]:
    """The protocol and its episodes, after refusing anything that does not belong to it (before any episode)."""
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {cfg.protocol!r}; choose {sorted(PROTOCOLS)}")
    proto = PROTOCOLS[cfg.protocol]
    tasks = tuple(dict.fromkeys(cfg.tasks or proto.tasks))  # a task or camera named twice runs (and counts) once
    cameras = tuple(dict.fromkeys(cfg.cameras or proto.cameras))
    for kind, chosen, valid in (("task", tasks, proto.tasks), ("camera", cameras, proto.cameras)):
        bad = [x for x in chosen if x not in valid]
        if bad:
            raise ValueError(f"{kind}(s) {bad} not in protocol {proto.name}; valid: {', '.join(valid)}")
    if cfg.workers < 1:
        raise ValueError(f"--workers must be at least 1, not {cfg.workers}")
    if cfg.videos < 0:
        raise ValueError(f"--videos must be at least 0, not {cfg.videos}")
    if cfg.planner not in ("model", "oracle", "neighbour"):
        raise ValueError(f"unknown planner {cfg.planner!r}; use model, oracle or neighbour")
    if cfg.planner == "model" and not cfg.planner_factory:
        check_checkpoint(cfg.ckpt)
    if cfg.planner == "neighbour":
        check_trace_data(cfg.data)
    if cfg.observe_as is not None:
        check_observe_as(cfg, proto)
    elif cfg.observe_reveal:
        raise ValueError("--observe-reveal changes a painted view: give --observe-as too")
    rollout_config(cfg, proto)  # refuse an unknown rule or a bad value now
    seeds = proto.eval_seeds[: cfg.seeds] if cfg.seeds else proto.eval_seeds
    return proto, [(t, c, s) for t in tasks for c in cameras for s in seeds]


def run_settings(cfg: BenchConfig) -> dict:
    """What decides an episode's outcome besides its task, camera and seed: the planner and its settings."""
    model = cfg.planner == "model" and not cfg.planner_factory
    return {
        "protocol": cfg.protocol,
        "planner": cfg.planner_factory or cfg.planner,
        "checkpoint": cfg.ckpt if model else None,
        "data": list(cfg.data) if cfg.planner == "neighbour" and cfg.data else None,
        "sample_steps": cfg.sample_steps if model else None,
        "guidance": cfg.guidance if model else None,
        "restore_speed": cfg.restore_speed if model else None,
        "max_replans": cfg.max_replans,
        "rollout": changed_rules(cfg) or None,  # the executor's rules that differ from the defaults
        # every rule's value: a log written before a default changed is not resumed under the new one
        "rules": all_settings(rollout_config(cfg, PROTOCOLS[cfg.protocol])),
    } | (  # (absent from the logs of before they existed)
        {"observe_as": cfg.observe_as, "observe_reveal": cfg.observe_reveal} if cfg.observe_as else {}
    )


def rollout_config(cfg: BenchConfig, proto: Protocol):
    """The executor's :class:`~tracegen.act.rollout.RolloutConfig` for ``cfg``: the protocol's budgets and the
    defaults, with ``cfg.settings`` applied (ValueError naming a bad one)."""
    from tracegen.act.rollout import RolloutConfig

    budgets = [item for item in cfg.settings if parse_setting(item)[0] in ("max_env_steps", "max_replans")]
    if budgets:
        raise ValueError(
            f"{budgets}: the step budget is the protocol's and the replan budget is --max-replans, not settings"
        )
    base = RolloutConfig(max_env_steps=proto.max_steps, max_replans=cfg.max_replans)
    return apply_settings(base, cfg.settings, example="executor.path_mode")


def changed_rules(cfg: BenchConfig) -> dict:
    """``{dotted key: value}`` of the rules that ``cfg.settings`` change from the defaults (a setting to the
    default value changes nothing)."""
    proto = PROTOCOLS[cfg.protocol]
    return changed_settings(rollout_config(cfg, proto), rollout_config(dataclasses.replace(cfg, settings=()), proto))


def check_same_run(cfg: BenchConfig, log_path: Path) -> None:
    """A run resumes only its own episode log: one written with other settings (``<json stem>.settings.json``
    beside it) is refused, rather than mixed into one table. A new log gets the settings file."""
    settings_path, settings = log_path.with_name(Path(cfg.out).stem + ".settings.json"), run_settings(cfg)
    if log_path.exists() and log_path.stat().st_size and not settings_path.exists():
        raise ValueError(
            f"{log_path} holds episodes but no {settings_path.name} says how they ran, so they cannot be resumed "
            "under these settings; choose another --json, or move that log away to start over"
        )
    if settings_path.exists() and log_path.exists() and log_path.stat().st_size:
        detail = describe_changes(load_json(settings_path), settings)
        if detail:
            raise ValueError(
                f"{log_path} holds episodes run with other settings ({detail}); choose another --json "
                "or delete that log to start over"
            )
    save_json(settings_path, settings)


def check_trace_data(data: tuple[str, ...] | None) -> None:
    """Refuse a neighbour planner without trace datasets, or with a folder that is not one."""
    from tracegen.io.convert import detect

    if not data:
        raise ValueError("--planner neighbour needs --data (the trace datasets to retrieve from)")
    for folder in data:
        detect(folder)  # DataError (a ValueError) naming the folder


def check_observe_as(cfg: BenchConfig, proto: Protocol) -> None:
    """Refuse a painted view the protocol's simulator has no variant for, or for the oracle (its exact tracks follow
    the simulator's own geoms)."""
    from tracegen.sim.env import suite_names

    variants = suite_names(proto.suite).embodiments
    if proto.suite != "metaworld" or cfg.observe_as not in variants:
        raise ValueError(f"--observe-as {cfg.observe_as!r}: not a Meta-World embodiment; use one of {variants}")
    if cfg.planner == "oracle":
        raise ValueError(
            "--observe-as is for the model and neighbour planners: the oracle tracks the simulator's own geoms"
        )


def check_checkpoint(ckpt: str | None) -> None:
    """Refuse a checkpoint whose trace space is not the protocol's (20x20 grid, 32 steps)."""
    if not ckpt:
        raise ValueError("--planner model needs --ckpt")
    meta = load_json(Path(ckpt) / "config.json")["model"]
    if (meta.get("grid"), meta.get("horizon")) != (20, 32):
        raise ValueError(
            f"{ckpt} predicts a {meta.get('grid')}x{meta.get('grid')} grid over {meta.get('horizon')} "
            "steps; the benchmark's executor expects the paper's 20x20 grid over 32 steps"
        )


def episode_key(task: str, camera: str, seed: int) -> str:
    return f"{task}/{camera}/{seed}"


def run_bench(cfg: BenchConfig, progress: bool = True) -> dict:
    """Run the episodes of ``cfg`` not yet in its log (appending each to it as it ends), then write the summary
    (``cfg.out``) and its markdown table (``.md``) over every episode, in protocol order; returns the summary."""
    from tqdm.auto import tqdm

    proto, episodes = resolve(cfg)
    log_path = Path(cfg.out).with_suffix(".episodes.jsonl")
    check_same_run(cfg, log_path)
    done = {episode_key(r["task"], r["camera"], r["seed"]): r for r in read_log(log_path)}
    videos = set(proto.eval_seeds[: cfg.videos])
    todo = [  # task-major: a worker mostly sees one task
        Job(t, c, s, f"{Path(cfg.out).stem}.videos/{t}_{c}_{s}.gif" if s in videos else None)
        for t, c, s in episodes
        if episode_key(t, c, s) not in done
    ]
    start = time.perf_counter()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log, tqdm(total=len(todo), desc=f"bench {proto.name}", disable=not progress) as bar:
        if log_path.stat().st_size and not log_path.read_bytes().endswith(b"\n"):
            log.write("\n")  # end a line cut by a kill, so the next record starts clean
        code = code_label()
        for record in (_pooled if cfg.workers > 1 else _inline)(cfg, todo):
            record["code"] = code  # the code that ran it: a log resumed across commits shows in the summary
            log.write(json.dumps(record) + "\n")
            log.flush()
            done[episode_key(record["task"], record["camera"], record["seed"])] = record
            bar.update(1)
    rows = [done[episode_key(*e)] for e in episodes]
    result = summarise(cfg, proto, rows, time.perf_counter() - start, episodes_run=len(todo))
    save_json(cfg.out, result)
    with atomic_path(Path(cfg.out).with_suffix(".md")) as tmp:
        tmp.write_text(markdown_table(result))
    return result


class EpisodeRunner:
    """Runs episodes with one planner (made once), keeping the current task's simulator between episodes."""

    def __init__(self, cfg: BenchConfig):
        self.cfg, self.proto = cfg, PROTOCOLS[cfg.protocol]
        self.planner = make_planner(cfg)
        self.rollout_cfg = rollout_config(cfg, self.proto)
        self.env, self.view, self.task = None, None, None

    def run(self, job: Job) -> dict:
        """The episode's record: outcome, steps, plans, reason, mean plan ms, its GIF if ``job.video`` (or the error
        that ended it)."""
        from tracegen.act.rollout import rollout
        from tracegen.sim.instructions import instructions
        from tracegen.viz.clip import ClipRecorder, write_gif

        env, text = self._env(job.task), instructions(self.proto.suite, job.task)[0]
        recorder = ClipRecorder(job.camera) if job.video else None
        try:
            r = rollout(
                env, self.planner, job.camera, job.seed, text, self.rollout_cfg, recorder=recorder, view=self.view
            )
        except Exception as e:  # noqa: BLE001 -- a crashed episode is a failure with its reason, not a crash
            return failure_record(job, f"error: {type(e).__name__}: {e}", traceback.format_exc(limit=3))
        outcome = {"success": r.success, "steps": r.steps, "plans": r.plans, "reason": r.reason}
        outcome |= {"plan_ms": _mean_ms(r.plan_ms), "executor_ms": _mean_ms(r.executor_ms)}
        if recorder is not None and recorder.plans:
            write_gif(recorder.frames(), Path(self.cfg.out).parent / job.video)
            outcome["video"] = job.video
        return _identity(job) | outcome

    def _env(self, task: str):
        if self.task != task:
            from tracegen.sim.env import make_env

            self.close()
            height, width = self.proto.render_hw
            self.env, self.task = make_env(self.proto.suite, task, height=height, width=width), task
            if self.cfg.observe_as:
                from tracegen.sim.painting import PaintedView

                self.view = PaintedView(self.env, self.cfg.observe_as, reveal=self.cfg.observe_reveal)
        return self.env

    def close(self) -> None:
        for sim in (self.env, self.view):
            if sim is not None:
                sim.close()
        self.env, self.view, self.task = None, None, None


def _mean_ms(times: list[float]) -> float | None:
    return round(float(np.mean(times)), 2) if times else None


def _identity(job: Job) -> dict:
    return {"task": job.task, "camera": job.camera, "seed": job.seed}


def failure_record(job: Job, reason: str, trace: str | None = None) -> dict:
    """The record of an episode that ended in an error (``reason`` starts with ``error``)."""
    record = _identity(job) | {"success": False, "steps": None, "plans": None, "reason": reason}
    record |= {"plan_ms": None, "executor_ms": None}
    return record | ({"trace": trace} if trace else {})


def make_planner(cfg: BenchConfig):
    """The planner of ``cfg``: ``planner_factory(cfg)`` if set, else the oracle or the model of ``cfg.ckpt``."""
    if cfg.planner_factory:
        module, _, name = cfg.planner_factory.partition(":")
        return getattr(importlib.import_module(module), name)(cfg)
    if cfg.planner == "oracle":
        from tracegen.act.planners import OraclePlanner

        return OraclePlanner()
    if cfg.planner == "neighbour":
        from tracegen.act.planners import NeighbourPlanner
        from tracegen.model import preset
        from tracegen.model.encoders import TextEncoder
        from tracegen.train import load_examples

        return NeighbourPlanner(load_examples(list(cfg.data), preset("default"))[0], TextEncoder())
    from tracegen.act.planners import ModelPlanner
    from tracegen.model import TraceGen
    from tracegen.sim.instructions import instructions

    model, proto = TraceGen.from_pretrained(cfg.ckpt), PROTOCOLS[cfg.protocol]
    model.embed_texts([instructions(proto.suite, t)[0] for t in proto.tasks])  # load the encoder now, not in plan 1
    return ModelPlanner(model, cfg.sample_steps, cfg.guidance, restore_speed=cfg.restore_speed)


def _inline(cfg: BenchConfig, jobs: list[Job]) -> Iterator[dict]:
    """Records of ``jobs`` run in this process, in order."""
    runner = EpisodeRunner(cfg) if jobs else None
    try:
        for job in jobs:
            yield runner.run(job)
    finally:
        if runner is not None:
            runner.close()


# ------------------------------------------------------------------------------------------- worker processes

_WORKER: dict = {}  # in a worker process: its EpisodeRunner, or the error that kept it from being made


def _init_worker(cfg: BenchConfig) -> None:
    """A worker's set-up: the planner (a model loaded once), one BLAS thread and one torch thread (if the planner
    uses torch: the oracle does not import it). With a BLAS pool of two threads per worker, two workers on two cores
    wait on each other in every small solve: the executor's kinematic fit (thousands of 7x7 solves per plan) then
    runs several times slower. An error here must not kill the process (the pool would count it as a dead worker):
    it is kept and raised by :func:`_run_job`."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # numpy's BLAS, for the life of the process
    try:
        _WORKER["runner"] = EpisodeRunner(cfg)
    except Exception as e:  # noqa: BLE001 -- raised again with every job, in the parent
        _WORKER["error"] = f"{type(e).__name__}: {e}"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _run_job(job: Job) -> dict:
    if "runner" not in _WORKER:
        raise RuntimeError(f"a bench worker could not set up its planner: {_WORKER.get('error')}")
    return _WORKER["runner"].run(job)


def _pooled(cfg: BenchConfig, jobs: list[Job]) -> Iterator[dict]:
    """Records of ``jobs`` as they finish, from ``cfg.workers`` spawned processes (a new pool after one dies)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    queue, suspects = deque(jobs), deque()
    while queue or suspects:
        pool = ProcessPoolExecutor(
            min(cfg.workers, len(queue) + len(suspects)),
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(cfg,),
        )
        try:
            yield from _drain(pool, queue, suspects, cfg.workers + 1)
        finally:
            pool.shutdown(cancel_futures=True)


def _drain(pool, queue: deque[Job], suspects: deque[Job], window: int) -> Iterator[dict]:
    """Run ``queue`` through ``pool`` (at most ``window`` jobs submitted at once, in order) until both deques are
    empty or the pool breaks. ``suspects`` (in flight when a pool broke) run first, one at a time and alone: one
    whose process dies then is a failure; the jobs in flight when the pool breaks otherwise become suspects."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    in_flight: dict = {}  # future -> job
    while queue or suspects or in_flight:
        alone = bool(suspects)  # (in_flight is empty whenever suspects wait: they come in only with a new pool)
        for job in [suspects.popleft()] if alone else _take(queue, window - len(in_flight)):
            in_flight[pool.submit(_run_job, job)] = job
        finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        broken = False
        for future in finished:
            job = in_flight.pop(future)
            try:
                yield future.result()
            except BrokenProcessPool as e:
                broken = True
                if alone:
                    yield failure_record(job, f"error: worker process died ({type(e).__name__}: {e})")
                else:
                    suspects.append(job)
        if broken:
            suspects.extend(in_flight.values())
            return


def _take(queue: deque[Job], n: int) -> list[Job]:
    return [queue.popleft() for _ in range(min(len(queue), n))]


def read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: that episode runs again
            continue
    return rows


def summarise(cfg: BenchConfig, proto: Protocol, rows: list[dict], wall_s: float, episodes_run: int) -> dict:
    """The run's JSON over every episode of ``rows``; ``wall_s`` times only the ``episodes_run`` of them this
    invocation ran (the rest came from the log of an earlier, resumed run)."""
    per_task: dict[str, dict[str, str]] = {}
    for r in rows:
        cell = per_task.setdefault(r["task"], {}).setdefault(r["camera"], [0, 0])
        cell[0] += bool(r["success"])
        cell[1] += 1
    errors = [r for r in rows if str(r.get("reason", "")).startswith("error")]
    train_cfg = Path(cfg.ckpt or "", "train_config.json")
    return {
        "protocol": proto.name,
        "version": proto.version,
        "planner": cfg.planner,
        "checkpoint": cfg.ckpt,
        "data": list(cfg.data)
        if cfg.planner == "neighbour"
        else (load_json(train_cfg)["data"] if cfg.ckpt and train_cfg.exists() else None),
        "episodes": len(rows),
        "overall_success": round(sum(bool(r["success"]) for r in rows) / max(1, len(rows)), 4),
        "per_task": {t: {c: f"{s}/{n}" for c, (s, n) in cams.items()} for t, cams in per_task.items()},
        "mean_plan_ms": _mean_ms([r["plan_ms"] for r in rows if r.get("plan_ms") is not None]),
        "mean_executor_ms": _mean_ms([r["executor_ms"] for r in rows if r.get("executor_ms") is not None]),
        "errors": len(errors),
        "max_replans": cfg.max_replans,
        "settings": run_settings(cfg),
        "max_steps": proto.max_steps,
        "render_hw": list(proto.render_hw),
        "wall_s": round(wall_s, 1),
        "episodes_run": episodes_run,
        "avdc_published_overall": AVDC_OVERALL,
        "avdc_published_these_tasks": avdc_mean(list(per_task)),  # its mean over the tasks run here
        "code": episode_codes(rows),  # every code that ran an episode
        "provenance": provenance(),  # this invocation's
    }


def episode_codes(rows: list[dict]) -> list[str]:
    """The codes (:func:`tracegen.provenance.code_label`) that ran the episodes of ``rows``, "unrecorded" for those
    logged before episodes named theirs."""
    return sorted({str(r.get("code", "unrecorded")) for r in rows if isinstance(r, dict)})


def avdc_mean(tasks: list[str]) -> float:
    """AVDC's published success (%) averaged over ``tasks`` (those of its table), as over the 11 in its overall."""
    known = [AVDC_PUBLISHED[t] for t in tasks if t in AVDC_PUBLISHED]
    return round(sum(known) / len(known), 1) if known else float("nan")


def markdown_table(result: dict) -> str:
    lines = [
        f"Closed-loop success, {result['protocol']} ({result['version']}), planner {result['planner']}, "
        f"{result['episodes']} episodes, code {', '.join(result.get('code', ['unrecorded']))}",
        "",
        "| task | ours (per camera) | ours % | AVDC (v2) % |",
        "| --- | --- | --- | --- |",
    ]
    for task, cams in result["per_task"].items():
        s = sum(int(v.split("/")[0]) for v in cams.values())
        n = sum(int(v.split("/")[1]) for v in cams.values())
        cells = ", ".join(f"{c} {v}" for c, v in cams.items())
        lines.append(f"| {task} | {cells} | {100 * s / n:.1f} | {AVDC_PUBLISHED.get(task, '-')} |")
    tasks = list(result["per_task"])
    every_task = set(tasks) == set(AVDC_PUBLISHED)
    shown = f"**{AVDC_OVERALL}**" if every_task else f"{avdc_mean(tasks):.1f} (these tasks; all 11: {AVDC_OVERALL})"
    lines.append(f"| **overall** | | **{100 * result['overall_success']:.1f}** | {shown} |")
    return "\n".join(lines) + "\n"
