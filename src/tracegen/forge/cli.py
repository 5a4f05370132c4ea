"""Command-line verbs of TraceForge: ``tracegen forge`` and ``tracegen forge-eval``.

Both are plain typer-decorated functions (mounted at the top level by :mod:`tracegen.cli`) and are also grouped in
``app`` for use on their own (``python -m tracegen.forge.cli --help``). Every argument is checked -- choices,
paths, learned-model weights, optional packages, the input's layout -- before any episode is processed; a bad one
exits with code 2 and one line saying what is wrong. Heavy modules are imported inside the commands so that
``tracegen --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(
    name="forge",
    help="TraceForge: videos -> 3D trace triplets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class CameraKind(StrEnum):
    auto = "auto"
    given = "given"
    static = "static"
    colmap = "colmap"
    vggt = "vggt"
    da3 = "da3"
    moge = "moge"


class DepthKind(StrEnum):
    auto = "auto"
    sensor = "sensor"
    none = "none"
    vggt = "vggt"
    da3 = "da3"
    moge = "moge"


class TrackerKind(StrEnum):
    forge = "forge"
    lk = "lk"
    cotracker3 = "cotracker3"
    tapir = "tapir"


class Runner(StrEnum):
    local = "local"
    ray = "ray"


class Captioner(StrEnum):
    none = "none"
    vlm = "vlm"


SET_OPTION = typer.Option(
    None,
    "--set",
    help="Any setting, as a dotted key=value: --set tracker.snap_radius=0 "
    "(repeatable; the names are those of forge_config.json).",
)
SMOOTH_OPTION = typer.Option(
    2.0,
    min=0.0,
    help="Gaussian sigma (frames) smoothing tracked windows along time "
    "before speed retargeting, against tracker jitter; 0 = off.",
)


def parse_episodes(text: str | None) -> tuple[int, ...] | None:
    """``"0,2,5-7"`` -> (0, 2, 5, 6, 7)."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            out += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ValueError:
        raise typer.BadParameter(f"--episodes must look like 0,2,5-7, not {text!r}") from None
    return tuple(out)


def build_config(
    camera: CameraKind,
    depth: DepthKind,
    tracker: TrackerKind,
    weights: Path | None,
    stride: int,
    max_frames: int,
    max_size: int,
    camera_key: str | None,
    episodes: str | None,
    depth_path: Path | None,
    depth_png_scale: float,
    intrinsics: Path | None,
    scan_depth: int,
    captioner: Captioner = Captioner.none,
    query_every: int = 5,
    window: int = 128,
    grid: int = 20,
    smooth_frames: float = 2.0,
    settings: list[str] | None = None,
):
    """A :class:`~tracegen.forge.config.ForgeConfig` from command-line values; bad values -> BadParameter."""
    from tracegen.forge.config import (
        CameraConfig,
        DepthConfig,
        ForgeConfig,
        LanguageConfig,
        SourceConfig,
        TrackerConfig,
        with_settings,
    )
    from tracegen.forge.windows import WindowConfig

    w = str(weights) if weights else None
    try:
        cfg = ForgeConfig(
            source=SourceConfig(
                stride=stride,
                max_frames=max_frames,
                max_size=max_size,
                camera_key=camera_key,
                episodes=parse_episodes(episodes),
                depth_path=str(depth_path) if depth_path else None,
                depth_png_scale=depth_png_scale,
                intrinsics=str(intrinsics) if intrinsics else None,
                scan_depth=scan_depth,
            ),
            camera=CameraConfig(kind=camera.value, weights=w),
            depth=DepthConfig(kind=depth.value, weights=w),
            tracker=TrackerConfig(kind=tracker.value, weights=w),
            window=WindowConfig(grid=grid, query_every=query_every, window=window, smooth_frames=smooth_frames),
            language=LanguageConfig(captioner=captioner.value, weights=w),
        )
        return with_settings(cfg, settings or [])
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _discover(src: Path, cfg):
    """The clips under ``src``; a missing ``src`` or nothing usable there is bad data (one line naming it, exit 2),
    reported before any work."""
    from tracegen.errors import DataError
    from tracegen.forge.sources import discover

    if not src.exists():
        raise DataError(src, "does not exist; give episodes, video file(s), frame folder(s) or a LeRobot dataset")
    return discover(src, cfg.source)


def check_ready(cfg, runner: Runner = Runner.local) -> None:
    """Fail before any work when a chosen component cannot run here (missing package or weights)."""
    from tracegen.forge.learned import ModelUnavailable, locate

    try:
        for kind, weights in (
            (cfg.camera.kind, cfg.camera.weights),
            (cfg.depth.kind, cfg.depth.weights),
            (cfg.tracker.kind, cfg.tracker.weights),
        ):
            if kind in ("vggt", "da3", "moge", "cotracker3", "tapir"):
                locate(kind, weights)
        if cfg.language.captioner == "vlm":
            from tracegen.forge.language import VLMCaptioner

            VLMCaptioner(cfg.language.weights).setup()
    except ModelUnavailable as e:
        raise typer.BadParameter(str(e)) from None
    for needed, module, extra in (
        (cfg.camera.kind == "colmap", "pycolmap", "forge"),
        (runner == Runner.ray, "ray", "ray"),
    ):
        if needed:
            try:
                __import__(module)
            except ImportError:
                raise typer.BadParameter(f"{module} is not installed: pip install 'tracegen[{extra}]'") from None


@app.command("forge")
def forge(
    src: Path = typer.Argument(
        ...,
        help="Episodes folder, video file(s), frame folder(s), LeRobot "
        "dataset, or an official TraceForge input folder.",
    ),
    out: Path = typer.Option(..., "--out", help="Output trace dataset folder; a rerun resumes it."),
    camera: CameraKind = typer.Option(
        CameraKind.auto,
        help="Cameras: given (the source's), static, colmap (SfM), "
        "or a learned estimator with local weights; auto = given if known, else static.",
    ),
    depth: DepthKind = typer.Option(
        DepthKind.auto, help="Depth: sensor, none (2D-only traces), or learned; auto = sensor if present."
    ),
    tracker: TrackerKind = typer.Option(
        TrackerKind.forge, help="Point tracker: forge (CPU), lk (baseline), or learned with local weights."
    ),
    workers: int = typer.Option(1, min=1, help="Parallel worker processes (or Ray actors)."),
    runner: Runner = typer.Option(Runner.local, help="local (process pool) or ray (Ray Data)."),
    stride: int = typer.Option(1, min=0, help="Take every N-th frame; 0 = ceil(frames / 50)."),
    max_frames: int = typer.Option(384, min=2, help="At most this many frames per clip."),
    max_size: int = typer.Option(518, min=16, help="Resize so the longest side is at most this (pixels)."),
    query_every: int = typer.Option(5, min=1, help="A query frame every N frames."),
    window: int = typer.Option(128, min=2, help="Frames per window (query frame included)."),
    smooth_frames: float = SMOOTH_OPTION,
    settings: list[str] | None = SET_OPTION,
    camera_key: str | None = typer.Option(None, help="LeRobot: camera feature (default: the first video)."),
    episodes: str | None = typer.Option(None, help="LeRobot: episode indices, e.g. 0,2,5-7 (default: all)."),
    depth_path: Path | None = typer.Option(
        None,
        exists=True,
        help="Videos/frames: aligned depth (16-bit PNG folder "
        "or .npz; one per clip, named like it, when SRC holds many).",
    ),
    depth_png_scale: float = typer.Option(10000.0, min=1e-9, help="PNG depth units per metre."),
    intrinsics: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Videos/frames: intrinsics (.json fx/fy/cx/cy or K, .npy/.npz, .txt)."
    ),
    scan_depth: int = typer.Option(
        1,
        min=0,
        max=2,
        help="Folder layouts: 0 = SRC is one clip, 1 = SRC holds clips, "
        "2 = SRC holds groups of clips (official TraceForge --scan_depth).",
    ),
    weights: Path | None = typer.Option(None, help="Folder with learned-model weights (else $TRACEGEN_WEIGHTS)."),
    captioner: Captioner = typer.Option(Captioner.none, help="vlm: a local VLM writes the three instructions."),
    retry_failed: bool = typer.Option(False, help="Redo episodes that failed in an earlier run."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Turn demonstration videos into a trace dataset (observation-trace-language triplets)."""
    from tracegen.forge.runners import run

    cfg = build_config(
        camera,
        depth,
        tracker,
        weights,
        stride,
        max_frames,
        max_size,
        camera_key,
        episodes,
        depth_path,
        depth_png_scale,
        intrinsics,
        scan_depth,
        captioner,
        query_every,
        window,
        smooth_frames=smooth_frames,
        settings=settings,
    )
    check_ready(cfg, runner)
    items = _discover(src, cfg)
    try:
        summary = run(items, cfg, out, runner.value, workers, progress, retry_failed)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=1))
    for failure in summary["failures"]:
        typer.echo(f"failed: {failure['name']}: {failure['reason']}", err=True)
    if summary["episodes_errored"]:  # a crash is not a result: the run did not finish its work
        typer.echo(
            f"error: {summary['episodes_errored']} episode(s) crashed (tracebacks in {out}/forge/episodes); "
            "run the command again to retry them",
            err=True,
        )
        raise typer.Exit(1)


@app.command("forge-eval")
def forge_eval(
    episodes_dir: Path = typer.Option(
        ...,
        "--episodes",
        exists=True,
        file_okay=False,
        help="Simulated episodes with ground truth (tracegen sim record).",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full report here."),
    camera: CameraKind = typer.Option(CameraKind.given, help="Camera stage to evaluate (given, colmap, ...)."),
    depth: DepthKind = typer.Option(DepthKind.auto),
    tracker: TrackerKind = typer.Option(TrackerKind.forge),
    match: str | None = typer.Option(None, help="Only episodes whose name contains this text."),
    limit: int | None = typer.Option(None, min=1, help="At most this many episodes."),
    baseline: bool = typer.Option(True, help="Also run plain Lucas-Kanade for comparison."),
    throughput: bool = typer.Option(True, help="Also time `forge` itself with --workers processes (clips_per_min)."),
    workers: int = typer.Option(2, min=1, help="Processes of the throughput run."),
    smooth_frames: float = SMOOTH_OPTION,
    settings: list[str] | None = SET_OPTION,
    weights: Path | None = typer.Option(None, help="Folder with learned-model weights (else $TRACEGEN_WEIGHTS)."),
    progress: bool = typer.Option(True),
) -> None:
    """Run the pipeline on simulated episodes and compare every stage with the exact ground truth."""
    from tracegen.forge.evaluate import CLIP_FRAMES, evaluate
    from tracegen.forge.runners import run

    cfg = build_config(
        camera,
        depth,
        tracker,
        weights,
        1,
        100000,
        100000,
        None,
        None,
        None,
        10000.0,
        None,
        1,
        smooth_frames=smooth_frames,
        settings=settings,
    )
    check_ready(cfg)
    items = [i for i in _discover(episodes_dir, cfg) if i.kind == "episode" and (not match or match in i.name)]
    items = items[:limit] if limit else items
    if not items:
        raise typer.BadParameter(f"no episodes in {episodes_dir}" + (f" matching {match!r}" if match else ""))
    report = evaluate(items, cfg, baseline, progress)
    if throughput:
        with tempfile.TemporaryDirectory(prefix="forge-eval-") as tmp:
            summary = run(items, cfg, tmp, "local", workers, progress=False)
        minutes = summary["seconds"] / 60
        report["clips_per_min"] = round(summary["frames_processed"] / CLIP_FRAMES / minutes, 2)
        report["throughput_workers"] = workers
        report["throughput_cpus"] = os.cpu_count()
        report["throughput_stage_seconds"] = summary["stage_seconds"]
    headline = {k: v for k, v in report.items() if not isinstance(v, dict | list)}
    typer.echo(json.dumps(headline, indent=1))
    if json_out:
        from tracegen.io.files import save_json

        save_json(json_out, report)


def main() -> None:
    from tracegen.errors import run_cli

    run_cli(app)


if __name__ == "__main__":
    main()
