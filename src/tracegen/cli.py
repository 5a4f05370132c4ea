"""The ``tracegen`` command line. Every verb has ``--help``; bad data ends in one line ``error: <file>: <problem>``
and exit code 2, before any partial output is written."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from tracegen.errors import DataError, run_cli

app = typer.Typer(
    name="tracegen",
    help="TraceGen world modelling in 3D trace space, and the TraceForge data engine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Target(StrEnum):
    tracegen = "tracegen"
    official = "official"
    tapvid3d = "tapvid3d"


@app.command()
def convert(
    src: Path = typer.Argument(
        ...,
        help="Input: tracegen episodes or trace dataset, official TraceForge layout, "
        "TAPVid-3D .npz file(s), or a LeRobot v3 dataset (detected automatically).",
    ),
    dst: Path = typer.Argument(..., help="Output directory."),
    to: Target = typer.Option(
        ...,
        "--to",
        help="Output layout: tracegen (trace dataset; episodes for LeRobot "
        "input), official (TraceGen/TraceForge episodes) or tapvid3d (.npz per sample).",
    ),
) -> None:
    """Convert between trace and episode layouts. Episodes with simulator ground truth convert to exact traces."""
    from tracegen.io.convert import convert as run

    summary = run(src, dst, to.value)
    typer.echo(", ".join(f"{k}: {v}" for k, v in summary.items()))


@app.command()
def inspect(
    path: Path = typer.Argument(
        ...,
        help="An episode, a folder of episodes, a trace dataset, an official-layout "
        "folder, TAPVid-3D .npz file(s) or a LeRobot v3 dataset.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise and validate data (counts, shapes, units, cameras, value ranges). Exit code 2 on invalid data."""
    from tracegen.io.inspect import format_summary
    from tracegen.io.inspect import inspect as run

    summary = run(path)
    typer.echo(json.dumps(summary, indent=2, default=str) if as_json else format_summary(summary))


@app.command(context_settings={"allow_extra_args": True})
def train(
    data: list[Path] = typer.Option(..., "--data", help="Trace dataset(s): tracegen or official layout."),
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoint, config, logs). An existing run resumes."),
    init: Path | None = typer.Option(None, "--init", help="Pretrained checkpoint to start from (warm-up)."),
    preset_name: str = typer.Option("default", "--preset", help="Model preset: tiny, default, large, paper."),
    steps: int = typer.Option(2000, "--steps", help="Total optimisation steps."),
    overrides: list[str] = typer.Argument(None, help="key=value settings, e.g. lr=1e-4 batch_size=64 dim=192."),
) -> None:
    """Pretrain, or warm up with --init: flow matching on observation-trace-language triplets."""
    from tracegen.train import TrainConfig, parse_overrides
    from tracegen.train import train as run

    for d in data:
        if not d.exists():
            raise DataError(d, "does not exist")
    tcfg = TrainConfig(
        data=[str(d) for d in data], out=str(out), init=str(init) if init else None, preset=preset_name, steps=steps
    )
    try:
        tcfg = parse_overrides(tcfg, overrides or [])
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(json.dumps(run(tcfg)))


@app.command()
def predict(
    ckpt: Path = typer.Option(..., "--ckpt", help="Checkpoint folder (model.safetensors + config.json)."),
    image: Path | None = typer.Option(None, "--image", help="RGB image (PNG/JPEG), any size; or --episode."),
    depth: Path | None = typer.Option(None, "--depth", help="Depth: .npy/.npz (metres) or 16-bit PNG."),
    episode: Path | None = typer.Option(
        None, "--episode", help="An episode folder instead of --image: its frame --frame, depth, intrinsics."
    ),
    frame: int = typer.Option(0, "--frame", min=0, help="The episode's frame to predict from."),
    text: str | None = typer.Option(None, "--text", help="The instruction (default: the episode's first)."),
    out: Path = typer.Option(..., "--out", help="Output .npz (traj: samples x N x L+1 x 3); an overlay .png beside."),
    samples: int = typer.Option(1, "--samples", min=1),
    steps: int | None = typer.Option(None, "--steps", min=1, help="ODE steps (default: the model's)."),
    seed: int = typer.Option(0, "--seed"),
    depth_png_scale: float = typer.Option(
        10000.0, "--depth-png-scale", min=1e-9, help="PNG depth units per metre (TraceForge's 10000: 0.1 mm)."
    ),
) -> None:
    """Generate the future 3D trace of a 20x20 grid for one observation and instruction."""
    from tracegen.model.commands import dumps, run_predict

    if (image is None) == (episode is None):
        raise typer.BadParameter("give the observation as --image (and --depth) or as --episode (and --frame)")
    if image is not None and text is None:
        raise typer.BadParameter("--text is needed with --image (an episode brings its own instruction)")
    typer.echo(dumps(run_predict(ckpt, image, depth, text, out, samples, steps, seed, depth_png_scale, episode, frame)))


@app.command("eval-traces")
def eval_traces(
    ckpt: Path = typer.Option(..., "--ckpt", help="Checkpoint folder (a training run)."),
    data: list[Path] = typer.Option(..., "--data", help="Trace dataset(s) to score on."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the metrics here."),
    samples: int = typer.Option(1, "--samples", min=1, help="k samples per observation (best-of-k)."),
    steps: int | None = typer.Option(None, "--steps", min=1),
    split: str = typer.Option(
        "auto",
        "--split",
        help="val: the run's held-out episodes; all: every sample; "
        "auto: val if --data is the run's training data, else all.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score at most this many samples."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Trace accuracy (MSE, ADE/FDE in normalised units, pixels, cm) beside static and nearest-neighbour baselines."""
    from tracegen.model.commands import dumps, run_eval

    if split not in ("auto", "val", "all"):
        raise typer.BadParameter(f"--split must be auto, val or all, not {split!r}")
    typer.echo(dumps(run_eval(ckpt, [str(d) for d in data], json_out, samples, steps, split, limit, seed)))


@app.command("bench-latency")
def bench_latency(
    ckpt: Path = typer.Option(..., "--ckpt", help="Checkpoint folder (a training run)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write median_ms, p90_ms and the settings here."),
    runs: int = typer.Option(30, "--runs", min=3, help="Timed predictions (after 3 untimed warm-up calls)."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="ODE steps per plan (default: the model's)."),
    threads: int = typer.Option(2, "--threads", min=1, help="Torch CPU threads."),
) -> None:
    """Plan latency of one prediction (batch 1, encoders included, text embedding cached): median and p90 ms."""
    from tracegen.model.commands import dumps, run_bench_latency

    typer.echo(dumps(run_bench_latency(ckpt, json_out, runs, steps, threads)))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Where stages, checkpoints and the report go."),
    scale: str = typer.Option(
        "default", "--scale", help="default (minutes on 2 cores), tiny (tests) or full (as --full)."
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="The real benchmark protocol (--scale full): AVDC tasks, cameras and image size, pretraining on every "
        "other Meta-World task, and the closed loop of `tracegen bench metaworld --protocol avdc`. Hours on 2 cores.",
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Delete cached stages first."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the configuration, print what each stage would do and its expected time."
    ),
) -> None:
    """The whole loop on a small configuration (or the benchmark's, --full): record -> traces -> pretrain + warm-up
    -> eval -> closed loop -> report.html, with the time left after each stage."""

    from tracegen.demo import check_config, clear_stages, describe_plan, make_config, run_demo, summary_table

    if full and scale not in ("default", "full"):
        raise typer.BadParameter(f"--full is --scale full; it contradicts --scale {scale}")
    name = "full" if full else scale
    try:
        cfg = make_config(name, out=str(out))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        if dry_run:
            check_config(cfg)
            typer.echo(describe_plan(cfg, name))
            return
        if fresh:
            clear_stages(out)
        summary = run_demo(cfg, log=typer.echo)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        typer.echo(e.code, err=True)  # a refusal ("error: ..."): one line, exit 2 as every command's
        raise typer.Exit(2) from None
    typer.echo("\n" + summary_table(summary))
    typer.echo(
        f"\nreport: {out / 'report.html'} (markdown: {out / 'report.md'}); "
        f"stages {summary['total_seconds']} s, this run {summary['this_run_seconds']} s"
    )


bench_app = typer.Typer(help="Closed-loop benchmarks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("metaworld")
def bench_metaworld(
    protocol: str = typer.Option(
        "avdc", "--protocol", help="avdc (11 tasks x 3 cameras x 25 seeds) or mini (11 tasks x corner x 5 seeds)."
    ),
    planner: str = typer.Option(
        "model",
        "--planner",
        help="model (needs --ckpt), oracle (the expert's exact future traces: the executor's ceiling) or neighbour "
        "(the nearest training trace of --data: the baseline).",
    ),
    ckpt: Path | None = typer.Option(None, "--ckpt"),
    data: list[Path] | None = typer.Option(None, "--data", help="Trace datasets the neighbour planner retrieves from."),
    json_out: Path = typer.Option(..., "--json", help="Results; per-episode log beside it (.episodes.jsonl)."),
    tasks: list[str] | None = typer.Option(None, "--tasks"),
    cameras: list[str] | None = typer.Option(None, "--cameras"),
    seeds: int | None = typer.Option(None, "--seeds", min=1, help="Only the first N evaluation seeds."),
    max_replans: int = typer.Option(40, "--max-replans", min=1),
    steps: int | None = typer.Option(None, "--steps", min=1, help="ODE steps per plan (model planner)."),
    guidance: float | None = typer.Option(None, "--guidance", help="Guidance scale (model planner; default: its own)."),
    restore_speed: bool = typer.Option(
        False, "--restore-speed", help="Model planner: moving steps get the retargeted step length back."
    ),
    workers: int = typer.Option(
        1, "--workers", help="Episodes in this many processes (each loads the planner once; same results)."
    ),
    videos: int = typer.Option(
        0, "--videos", help="GIFs of the first N seeds of each task x camera, in <json stem>.videos/."
    ),
    observe_as: str | None = typer.Option(
        None,
        "--observe-as",
        help="Cross-painting: the planner sees the robot drawn as this Meta-World embodiment (e.g. hand, for a "
        "model warmed up on the hand-like effector's videos); the Sawyer acts. The robot's pixels are filled in "
        "from around them, as on a real robot.",
    ),
    observe_reveal: bool = typer.Option(
        False,
        "--observe-reveal",
        help="With --observe-as: show the scene the robot hides instead of filling it in (an upper bound).",
    ),
    settings: list[str] | None = typer.Option(
        None,
        "--set",
        help="KEY=VALUE: change one of the executor's rules (a RolloutConfig field, or executor.FIELD for an "
        "ExecutorConfig one), e.g. --set stuck_push_m=0 --set executor.path_mode=rigid. Repeatable.",
    ),
) -> None:
    """Closed-loop Meta-World success on the AVDC protocol, beside AVDC's published table. Resumable."""
    from tracegen.bench.metaworld import BenchConfig, run_bench

    cfg = BenchConfig(
        protocol=protocol,
        planner=planner,
        ckpt=str(ckpt) if ckpt else None,
        data=tuple(str(d) for d in data) if data else None,
        out=str(json_out),
        tasks=tuple(tasks) if tasks else None,
        cameras=tuple(cameras) if cameras else None,
        seeds=seeds,
        max_replans=max_replans,
        sample_steps=steps,
        guidance=guidance,
        restore_speed=restore_speed,
        workers=workers,
        videos=videos,
        observe_as=observe_as,
        observe_reveal=observe_reveal,
        settings=tuple(settings or ()),
    )
    try:
        result = run_bench(cfg)
    except ValueError as e:  # a refusal, before any episode: one line
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    summary = ("overall_success", "episodes", "mean_plan_ms", "mean_executor_ms", "wall_s")
    typer.echo(json.dumps({k: result[k] for k in summary}))
    typer.echo(json_out.with_suffix(".md").read_text())


@bench_app.command("compare")
def bench_compare(
    baseline: Path = typer.Argument(..., help="A `bench metaworld --json` result (or its .episodes.jsonl)."),
    candidate: Path = typer.Argument(..., help="Another, compared with the baseline episode by episode."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the comparison here."),
) -> None:
    """Two closed-loop runs paired by (task, camera, seed): won, lost, z and the exact sign test's p, per task,
    per camera and overall."""
    from tracegen.bench.compare import compare_runs, markdown
    from tracegen.io.files import save_json

    result = compare_runs(baseline, candidate)
    if json_out:
        save_json(json_out, result)
    typer.echo(markdown(result))


def _mount_optional_apps() -> None:
    """Verb groups whose dependencies are optional or may fail to load (the simulator needs an OpenGL backend):
    when they cannot load, the verb is still listed and says why, and every other verb keeps working."""
    help_text = "Record simulated demonstrations with exact ground-truth tracks."
    try:
        from tracegen.sim.cli import app as sim_app
    except Exception as e:  # noqa: BLE001 -- ImportError (extra not installed) or the GL backend's error
        reason = str(e)

        @app.command(
            "sim",
            help=f"{help_text} (unavailable here)",
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )
        def sim_unavailable(args: list[str] | None = typer.Argument(None)) -> None:
            typer.echo(f"error: tracegen sim is unavailable: {reason}", err=True)
            raise typer.Exit(2)

        return
    app.add_typer(sim_app, name="sim", help=help_text)


_mount_optional_apps()


def _mount_forge() -> None:
    """``tracegen forge`` and ``tracegen forge-eval`` (their heavy imports happen inside the commands)."""
    from tracegen.forge.cli import forge, forge_eval

    app.command("forge")(forge)
    app.command("forge-eval")(forge_eval)


_mount_forge()


def _mount_viz() -> None:
    """``tracegen viz`` (matplotlib, PyAV and rerun are imported inside its commands)."""
    from tracegen.viz.cli import app as viz_app

    app.add_typer(viz_app, name="viz")


_mount_viz()


def main() -> None:
    from tracegen.provenance import provenance

    provenance()  # the code this process starts with, read now: an edit or commit during a long run is not its
    run_cli(app)


if __name__ == "__main__":
    main()
