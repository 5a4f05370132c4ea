"""The TraceForge pipeline: the stages in order, and what processing one episode leaves on disk.

Stage order (each a swappable component with ``setup()`` and ``process(clip) -> clip``)::

    load -> validate -> camera -> depth -> tracker -> compensate -> windows -> language -> write

Output directory (``OUT``)::

    OUT/dataset.json, OUT/shards/<name>.npz|json   the trace dataset (tracegen format; `tracegen convert` exports it)
    OUT/forge/episodes/<name>.json                  per-episode completion marker: status, samples, drops, timings
    OUT/forge_config.json                           the settings of the run
    OUT/forge_summary.json                          the run summary (written by the runner)

An episode's shard is written atomically and its marker last, so a killed run never leaves a marker without its
data; a failed episode writes a marker with its reason and no data.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from tracegen.forge.camera import make_camera
from tracegen.forge.clip import Clip, ClipError, StatelessStage, run_stage
from tracegen.forge.compensate import Compensate
from tracegen.forge.config import FilterConfig, ForgeConfig
from tracegen.forge.depth import make_depth
from tracegen.forge.language import Language
from tracegen.forge.sources import SourceItem, load_clip
from tracegen.forge.tracker import make_tracker
from tracegen.forge.windows import Windows
from tracegen.io.files import describe_changes, load_json, save_json
from tracegen.io.trace_dataset import create_dataset, write_shard

MARKERS = Path("forge") / "episodes"
STAGES = ("load", "validate", "camera", "depth", "tracker", "compensate", "windows", "language", "write")


class Validate(StatelessStage):
    """Stage ``validate``: refuse clips that cannot give a window, or in which nothing changes."""

    name = "validate"

    def __init__(self, cfg: FilterConfig = FilterConfig()):
        self.cfg = cfg

    def process(self, clip: Clip) -> Clip:
        if clip.num_frames < self.cfg.min_clip_frames:
            raise ClipError(
                f"clip has {clip.num_frames} frames after sampling, shorter than one window "
                f"({self.cfg.min_clip_frames} frames)"
            )
        if zero_motion(clip.rgb, clip.depth):
            raise ClipError("zero-motion clip: no frame differs from the previous one")
        return clip


def zero_motion(rgb: np.ndarray, depth: np.ndarray | None, grey_levels: float = 3.0) -> bool:
    """Whether consecutive frames never differ by more than ``grey_levels`` (99.9th percentile of a 3 x 3 blurred
    absolute difference; video-coding noise stays below) and the depth never changes by more than 5 mm."""
    import cv2

    prev = None
    for t in range(len(rgb)):
        g = cv2.blur(cv2.cvtColor(rgb[t], cv2.COLOR_RGB2GRAY).astype(np.float32), (3, 3))
        if prev is not None and np.percentile(np.abs(g - prev), 99.9) > grey_levels:
            return False
        prev = g
    return depth is None or float(np.abs(np.diff(depth, axis=0)).max(initial=0.0)) <= 0.005


class Pipeline:
    """The stages of one configuration. ``setup()`` once per worker, then ``run(item)`` per episode."""

    def __init__(self, cfg: ForgeConfig = ForgeConfig()):
        self.cfg = cfg
        self.stages = [
            Validate(cfg.filters),
            make_camera(cfg.camera),
            make_depth(cfg.depth),
            make_tracker(cfg.tracker, cfg.window),
            Compensate(),
            Windows(cfg.window, cfg.filters.trim_static, cfg.filters.static_speed),
            Language(cfg.language),
        ]
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            for stage in self.stages:
                stage.setup()
            self._ready = True

    def run(self, item: SourceItem, keep_gt: bool = False) -> Clip:
        """Load ``item`` and run every stage; raises :class:`ClipError` when the clip fails."""
        self.setup()
        start = time.perf_counter()
        clip = load_clip(item, self.cfg.source, keep_gt)
        clip.timings["load"] = time.perf_counter() - start
        for stage in self.stages:
            clip = run_stage(stage, clip)
        return clip


def prepare_output(out: str | Path, cfg: ForgeConfig) -> Path:
    """Create (or reopen) ``out``: the trace dataset, the marker folder and ``forge_config.json``.

    Reopening with different settings is refused: finished episodes would not be redone.
    """
    out = Path(out)
    config_path = out / "forge_config.json"
    detail = describe_changes(load_json(config_path), cfg.to_dict()) if config_path.exists() else ""
    if detail:
        raise ValueError(
            f"{out} holds a run with other settings ({config_path}: {detail}); use a new --out "
            "directory, or the same settings to resume"
        )
    create_dataset(out, cfg.window.grid, asdict(cfg.window.retarget), created_by="tracegen forge")
    (out / MARKERS).mkdir(parents=True, exist_ok=True)
    for stale in (out / "shards").glob(".tmp-*"):  # left by a killed writer; never read
        stale.unlink(missing_ok=True)
    if not config_path.exists():
        cfg.save(config_path)
    return out


def marker_path(out: str | Path, name: str) -> Path:
    return Path(out) / MARKERS / f"{name}.json"


def read_marker(out: str | Path, name: str) -> dict[str, Any] | None:
    """The episode's completion record, or None when it is not (completely) done."""
    path = marker_path(out, name)
    if not path.is_file():
        return None
    record = load_json(path)
    if record.get("status") == "ok" and not (Path(out) / "shards" / f"{name}.json").is_file():
        return None  # the data went missing: redo
    return record


def process_item(pipeline: Pipeline, item: SourceItem, out: str | Path) -> dict[str, Any]:
    """Run one episode and commit its result (shard, then marker). Never raises for a bad episode: its marker says
    ``failed`` (the data gives no trace: skipped by a rerun unless ``--retry-failed``) or ``error`` (an unexpected
    exception, traceback kept: a rerun tries it again)."""
    start = time.perf_counter()
    record: dict[str, Any] = {"name": item.name, "source": item.path, "kind": item.kind}
    clip = None
    try:
        clip = pipeline.run(item)
        if not clip.samples:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(clip.dropped.items())) or "no query frame"
            raise ClipError(f"no window survived the filters ({reasons})")
        t = time.perf_counter()
        write_shard(out, item.name, clip.samples)
        clip.timings["write"] = time.perf_counter() - t
        record.update(status="ok", samples=len(clip.samples))
    except ClipError as e:
        record.update(status="failed", reason=str(e), samples=0)
    except Exception as e:  # noqa: BLE001 -- a bug must not stop the other episodes; the traceback is kept
        record.update(  # not bad data but a crash (a bug, a full disk): a rerun tries it again
            status="error",
            reason=f"unexpected {type(e).__name__}: {e}",
            samples=0,
            traceback=traceback.format_exc(limit=6),
        )
    if clip is not None:
        record.update(
            frames=clip.num_frames,
            dropped=dict(clip.dropped),
            info=_jsonable(clip.info),
            timings={k: round(v, 4) for k, v in clip.timings.items()},
        )
    record["seconds"] = round(time.perf_counter() - start, 4)
    save_json(marker_path(out, item.name), record)
    return record


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, str | int | float | bool) or v is None:
            out[k] = v
    return out
