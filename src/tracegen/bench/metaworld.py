"""The closed-loop Meta-World benchmark on the AVDC protocol: traces -> executor -> success, beside AVDC's table.

    tracegen bench metaworld --protocol avdc --ckpt RUN --json results.json [--tasks ...] [--cameras ...]
    tracegen bench metaworld --protocol mini --planner oracle --json oracle.json

Every finished episode is appended to ``<json>.episodes.jsonl`` as it ends, so a killed run resumes where it stopped
and never counts an episode twice. A crashing episode (simulation instability, NaN action) is recorded as a failure
with its reason and the run goes on.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracegen.io.files import load_json, save_json
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
    planner: str = "model"  # model | oracle
    ckpt: str | None = None
    out: str = "bench.json"
    tasks: tuple[str, ...] | None = None  # subsets of the protocol's
    cameras: tuple[str, ...] | None = None
    seeds: int | None = None  # the first N evaluation seeds
    max_replans: int = 40  # the executor's budget (AVDC allowed 5 replans of 8-frame video plans)
    sample_steps: int | None = None


def resolve(cfg: BenchConfig) -> tuple[Protocol, list[tuple[str, str, int]]]:
    """The protocol and its episodes, after refusing anything that does not belong to it (before any episode)."""
    if cfg.protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {cfg.protocol!r}; choose {sorted(PROTOCOLS)}")
    proto = PROTOCOLS[cfg.protocol]
    tasks, cameras = cfg.tasks or proto.tasks, cfg.cameras or proto.cameras
    for kind, chosen, valid in (("task", tasks, proto.tasks), ("camera", cameras, proto.cameras)):
        bad = [x for x in chosen if x not in valid]
        if bad:
            raise ValueError(f"{kind}(s) {bad} not in protocol {proto.name}; valid: {', '.join(valid)}")
    if cfg.planner not in ("model", "oracle"):
        raise ValueError(f"unknown planner {cfg.planner!r}; use model or oracle")
    if cfg.planner == "model":
        check_checkpoint(cfg.ckpt)
    seeds = proto.eval_seeds[: cfg.seeds] if cfg.seeds else proto.eval_seeds
    return proto, [(t, c, s) for t in tasks for c in cameras for s in seeds]


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
    from tqdm.auto import tqdm

    from tracegen.act.planners import OraclePlanner
    from tracegen.act.rollout import RolloutConfig, rollout
    from tracegen.sim.env import make_env
    from tracegen.sim.instructions import instructions

    proto, episodes = resolve(cfg)
    log_path = Path(cfg.out).with_suffix(".episodes.jsonl")
    done = {episode_key(r["task"], r["camera"], r["seed"]): r for r in read_log(log_path)}
    todo = [e for e in episodes if episode_key(*e) not in done]
    planner = OraclePlanner() if cfg.planner == "oracle" else _model_planner(cfg)
    rollout_cfg = RolloutConfig(max_env_steps=proto.max_steps, max_replans=cfg.max_replans)
    start, env, env_task = time.perf_counter(), None, None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        if log_path.stat().st_size and not log_path.read_bytes().endswith(b"\n"):
            log.write("\n")  # end a line cut by a kill, so the next record starts clean
        for task, camera, seed in tqdm(todo, desc=f"bench {proto.name}", disable=not progress):
            if env_task != task:
                if env is not None:
                    env.close()
                env, env_task = make_env(proto.suite, task, height=proto.render_hw[0], width=proto.render_hw[1]), task
            record = {"task": task, "camera": camera, "seed": seed}
            try:
                r = rollout(env, planner, camera, seed, instructions(proto.suite, task)[0], rollout_cfg)
                record |= {
                    "success": r.success,
                    "steps": r.steps,
                    "plans": r.plans,
                    "reason": r.reason,
                    "plan_ms": round(float(np.mean(r.plan_ms)), 2) if r.plan_ms else None,
                }
            except Exception as e:  # noqa: BLE001 -- a crashed episode is a failure with its reason, not a crash
                record |= {
                    "success": False,
                    "steps": None,
                    "plans": None,
                    "plan_ms": None,
                    "reason": f"error: {type(e).__name__}: {e}",
                    "trace": traceback.format_exc(limit=3),
                }
            log.write(json.dumps(record) + "\n")
            log.flush()
            done[episode_key(task, camera, seed)] = record
    if env is not None:
        env.close()
    result = summarise(cfg, proto, [done[episode_key(*e)] for e in episodes], time.perf_counter() - start)
    save_json(cfg.out, result)
    Path(cfg.out).with_suffix(".md").write_text(markdown_table(result))
    return result


def _model_planner(cfg: BenchConfig):
    from tracegen.act.planners import ModelPlanner
    from tracegen.model import TraceGen

    return ModelPlanner(TraceGen.from_pretrained(cfg.ckpt), steps=cfg.sample_steps)


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


def summarise(cfg: BenchConfig, proto: Protocol, rows: list[dict], wall_s: float) -> dict:
    per_task: dict[str, dict[str, str]] = {}
    for r in rows:
        cell = per_task.setdefault(r["task"], {}).setdefault(r["camera"], [0, 0])
        cell[0] += bool(r["success"])
        cell[1] += 1
    plan_ms = [r["plan_ms"] for r in rows if r.get("plan_ms") is not None]
    errors = [r for r in rows if str(r.get("reason", "")).startswith("error")]
    train_cfg = Path(cfg.ckpt or "", "train_config.json")
    return {
        "protocol": proto.name,
        "version": proto.version,
        "planner": cfg.planner,
        "checkpoint": cfg.ckpt,
        "data": load_json(train_cfg)["data"] if cfg.ckpt and train_cfg.exists() else None,
        "episodes": len(rows),
        "overall_success": round(sum(bool(r["success"]) for r in rows) / max(1, len(rows)), 4),
        "per_task": {t: {c: f"{s}/{n}" for c, (s, n) in cams.items()} for t, cams in per_task.items()},
        "mean_plan_ms": round(float(np.mean(plan_ms)), 2) if plan_ms else None,
        "errors": len(errors),
        "max_replans": cfg.max_replans,
        "max_steps": proto.max_steps,
        "render_hw": list(proto.render_hw),
        "wall_s": round(wall_s, 1),
        "avdc_published_overall": AVDC_OVERALL,
    }


def markdown_table(result: dict) -> str:
    lines = [
        f"Closed-loop success, {result['protocol']} ({result['version']}), planner {result['planner']}, "
        f"{result['episodes']} episodes",
        "",
        "| task | ours (per camera) | ours % | AVDC (v2) % |",
        "| --- | --- | --- | --- |",
    ]
    for task, cams in result["per_task"].items():
        s = sum(int(v.split("/")[0]) for v in cams.values())
        n = sum(int(v.split("/")[1]) for v in cams.values())
        cells = ", ".join(f"{c} {v}" for c, v in cams.items())
        lines.append(f"| {task} | {cells} | {100 * s / n:.1f} | {AVDC_PUBLISHED.get(task, '-')} |")
    lines.append(f"| **overall** | | **{100 * result['overall_success']:.1f}** | **{AVDC_OVERALL}** |")
    return "\n".join(lines) + "\n"
