"""The demo's driver: checks that fail in the first seconds, the stages in order with the time left, the summary
and the report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from tracegen.demo.config import STAGES, DemoConfig, dumps
from tracegen.demo.plan import TimeLeft, closed_loop_episodes, expected_seconds
from tracegen.demo.stages import RUNNERS, Stage
from tracegen.io.files import load_json, save_json
from tracegen.provenance import provenance


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


DEMO_FILES = ("config.json", "summary.json", "report.md", "report.html")


def clear_stages(out: str | Path) -> None:
    """``--fresh``: delete what a demo wrote into ``out`` (its stage folders and files), nothing else -- ``--out``
    may name a folder that also holds the user's own files: a stage folder goes only when it is a demo stage's (it
    holds the stage's ``result.json``, or the folder holds the demo's ``config.json``)."""
    out = Path(out)
    demo_made = (out / "config.json").is_file()
    for name in STAGES:
        if (out / name).is_dir() and (demo_made or (out / name / "result.json").is_file()):
            shutil.rmtree(out / name)
    for name in DEMO_FILES:
        (out / name).unlink(missing_ok=True)


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
        "provenance": provenance(),
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
