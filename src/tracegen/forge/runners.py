"""Runners: the same pipeline over many episodes, locally (a process pool) or on Ray Data.

Both runners skip episodes whose completion marker exists (a rerun resumes; episodes cut short by a killed run are
redone from scratch), let workers write their own shards (atomic, one per episode, deterministic names), and end
with the same run summary (:func:`summarise`). Stages do not use randomness and the files are written
deterministically, so the trace files are byte-identical whichever runner (and however many workers) made them.

* ``local``: ``workers`` processes (spawned; each runs ``Pipeline.setup()`` once), a progress bar, BLAS and OpenCV
  limited to one thread per worker. ``workers = 1`` runs in this process.
* ``ray``: ``ray.data.from_items(episodes).map_batches(ForgeWorker, concurrency=workers)``: an actor pool whose
  actors load their models once in ``__init__`` (CONVENTIONS.md §8). Uses the Ray this process is connected to,
  else the cluster at ``$RAY_ADDRESS``, else starts a local instance with ``workers`` CPUs. On one 2-core machine
  it buys nothing over the local runner (PLATFORM.md §10); it is there to scale out.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tracegen.forge.config import ForgeConfig
from tracegen.forge.pipeline import STAGES, Pipeline, prepare_output, process_item, read_marker
from tracegen.forge.sources import SourceItem
from tracegen.io.files import save_json
from tracegen.provenance import provenance

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run(
    items: list[SourceItem],
    cfg: ForgeConfig,
    out: str | Path,
    runner: str = "local",
    workers: int = 1,
    progress: bool = True,
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Process ``items`` into ``out`` and return (and save) the run summary."""
    out = prepare_output(out, cfg)
    start = time.perf_counter()
    done, todo = {}, []
    for item in items:
        record = read_marker(out, item.name)
        if record is not None and (record["status"] == "ok" or (record["status"] == "failed" and not retry_failed)):
            done[item.name] = record
        else:
            todo.append(item)
    if runner == "local":
        new = list(_run_local(todo, cfg, out, workers, progress))
    elif runner == "ray":
        new = _run_ray(todo, cfg, out, workers)
    else:
        raise ValueError(f"unknown runner {runner!r}; use local or ray")
    summary = summarise(items, done, new, time.perf_counter() - start, runner, workers)
    save_json(out / "forge_summary.json", summary | {"provenance": provenance()})
    return summary


# ---------------------------------------------------------------------------------------------- local


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: dict, out: str) -> None:
    import cv2

    cv2.setNumThreads(1)
    _WORKER["pipeline"] = Pipeline(ForgeConfig.from_dict(cfg))
    _WORKER["pipeline"].setup()
    _WORKER["out"] = out


def _work(item: SourceItem) -> dict[str, Any]:
    return process_item(_WORKER["pipeline"], item, _WORKER["out"])


def _run_local(
    todo: list[SourceItem], cfg: ForgeConfig, out: Path, workers: int, progress: bool
) -> Iterator[dict[str, Any]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="forge", unit="ep", disable=not progress)
    failed = 0
    try:
        if workers <= 1 or len(todo) <= 1:
            pipeline = Pipeline(cfg)
            pipeline.setup()
            results = (process_item(pipeline, item, out) for item in todo)
            yield from _tick(results, bar, failed)
            return
        import multiprocessing as mp

        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})  # inherited by the spawned workers
        try:
            with ProcessPoolExecutor(
                workers,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(cfg.to_dict(), str(out)),
            ) as pool:
                yield from _tick(pool.map(_work, todo), bar, failed)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        bar.close()


def _tick(results, bar, failed: int) -> Iterator[dict[str, Any]]:
    for record in results:
        failed += record["status"] != "ok"
        bar.update(1)
        bar.set_postfix(failed=failed)
        yield record


# ---------------------------------------------------------------------------------------------- ray


class ForgeWorker:
    """A Ray Data actor: builds and sets up the pipeline once (model loading), then processes batches of episodes."""

    def __init__(self, cfg: dict, out: str):
        import cv2

        cv2.setNumThreads(1)
        self.pipeline = Pipeline(ForgeConfig.from_dict(cfg))
        self.pipeline.setup()
        self.out = out

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        records = []
        for i in range(len(batch["name"])):
            row = {k: _plain(batch[k][i]) for k in batch}
            row["index"] = None if row["index"] is None or row["index"] < 0 else int(row["index"])
            row["depth"] = row["depth"] or None
            item = SourceItem(**row)
            records.append(json.dumps(process_item(self.pipeline, item, self.out)))
        return {"record": records}


def _plain(value: Any) -> Any:
    """A Ray / Arrow cell back to a plain Python value (None for missing)."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:  # NaN: a missing optional integer
        return None
    return value


def _run_ray(todo: list[SourceItem], cfg: ForgeConfig, out: Path, workers: int) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the ray runner needs Ray: pip install 'tracegen[ray]'") from None
    if not todo:
        return []
    started = not ray.is_initialized()
    if started and os.environ.get("RAY_ADDRESS"):  # a running cluster (`ray start`): its resources are its own
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, configure_logging=False)
    elif started:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        rows = [{**asdict(i), "index": -1 if i.index is None else i.index, "depth": i.depth or ""} for i in todo]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map_batches(
            ForgeWorker,
            fn_constructor_kwargs={"cfg": cfg.to_dict(), "out": str(out)},
            batch_size=1,
            concurrency=min(workers, len(rows)),  # no actor (each sets up the forge) without a video to run
            num_cpus=1,
        )
        records = [json.loads(row["record"]) for row in ds.take_all()]
    finally:
        if started:
            ray.shutdown()
    order = {item.name: k for k, item in enumerate(todo)}
    return sorted(records, key=lambda r: order[r["name"]])


# ---------------------------------------------------------------------------------------------- summary


def summarise(
    items: list[SourceItem], done: dict[str, dict], new: list[dict], seconds: float, runner: str, workers: int
) -> dict[str, Any]:
    """The run summary: episodes in / out / failed (with reasons) / skipped, windows kept and dropped by reason,
    time per stage (this run's episodes), throughput."""
    records = {**done, **{r["name"]: r for r in new}}
    ok = [r for r in records.values() if r["status"] == "ok"]
    failed = [r for r in records.values() if r["status"] != "ok"]
    dropped: Counter = Counter()
    for r in records.values():
        dropped.update(r.get("dropped", {}))
    stage_seconds: Counter = Counter()
    for r in new:
        stage_seconds.update(r.get("timings", {}))
    frames = sum(r.get("frames", 0) for r in new)
    return {
        "runner": runner,
        "workers": workers,
        "episodes_in": len(items),
        "episodes_out": len(ok),
        "episodes_failed": len(failed),
        "episodes_errored": sum(r["status"] == "error" for r in failed),  # crashes, not bad data: retried on a rerun
        "episodes_skipped": len(done),
        "episodes_processed": len(new),
        "windows_kept": sum(r.get("samples", 0) for r in ok),
        "windows_dropped": dict(sorted(dropped.items())),
        "failures": [
            {"name": r["name"], "reason": r.get("reason", "?")} for r in sorted(failed, key=lambda r: r["name"])
        ],
        "seconds": round(seconds, 3),
        "stage_seconds": {k: round(stage_seconds[k], 3) for k in STAGES if k in stage_seconds},
        "frames_processed": frames,
        "episodes_per_minute": round(60 * len(new) / seconds, 2) if new and seconds > 0 else None,
    }
