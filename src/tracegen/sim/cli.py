"""``tracegen sim``: record demonstration episodes and build cross-embodiment corpora.

The main CLI mounts :data:`app` as ``tracegen sim``; run it standalone with ``python -m tracegen.sim.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Simulated demonstrations (Meta-World, robosuite) with exact ground-truth 3D tracks.",
    no_args_is_help=True,
    add_completion=False,
)

Opt = typer.Option


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
def record(
    out: Annotated[Path, Opt(help="Output directory (one sub-directory per episode).")],
    suite: Annotated[str, Opt(help="metaworld or robosuite.")] = "metaworld",
    task: Annotated[str, Opt(help="Task name, e.g. drawer-open (Meta-World) or Lift (robosuite).")] = "drawer-open",
    camera: Annotated[
        list[str],
        Opt(
            help="Camera(s); NAME or NAME@POS_STD,DEG_STD[#VARIANT] for jitter. "
            "Repeat for several views of the same rollouts."
        ),
    ] = ("corner3",),
    embodiment: Annotated[str | None, Opt(help="Meta-World: sawyer, floating_gripper, hand.")] = None,
    robot: Annotated[str | None, Opt(help="robosuite arm: Panda, Sawyer, IIWA, UR5e, Jaco, Kinova3.")] = None,
    episodes: Annotated[int, Opt(min=1, help="Rollouts to keep (successful ones unless --keep-failures).")] = 5,
    seed: Annotated[int, Opt(help="First seed; later rollouts use seed + 1, seed + 2, ...")] = 0,
    height: Annotated[int, Opt(min=16, help="Rendered image height (px).")] = 224,
    width: Annotated[int, Opt(min=16, help="Rendered image width (px).")] = 224,
    default_look: Annotated[bool, Opt(help="MuJoCo's default look (shadows, reflections, MSAA); ~4x slower.")] = False,
    max_steps: Annotated[int | None, Opt(help="Step limit (default: the task's).")] = None,
    stop_on_success: Annotated[bool, Opt(help="End an episode a few steps after the task succeeds.")] = True,
    keep_failures: Annotated[bool, Opt(help="Also write unsuccessful rollouts.")] = False,
    query_every: Annotated[int, Opt(min=1, help="Frames between ground-truth query grids.")] = 5,
    grid: Annotated[int, Opt(min=2, help="Query grid size G (G x G points).")] = 20,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
) -> None:
    """Record expert demonstrations of one task as episodes (RGB-D video, cameras, actions, GT tracks)."""
    from tracegen.sim.recorder import CorpusEntry, RecordConfig, record_group, summary_table

    if embodiment and robot:
        _fail("give --embodiment (Meta-World) or --robot (robosuite), not both")
    who = embodiment or robot or ("sawyer" if suite == "metaworld" else "Panda")
    entry = CorpusEntry(suite, task, who, tuple(camera), episodes, seed)
    cfg = RecordConfig(
        height=height,
        width=width,
        fast_render=not default_look,
        max_steps=max_steps,
        stop_on_success=stop_on_success,
        keep_failures=keep_failures,
        query_every=query_every,
        grid=grid,
    )
    try:
        result = record_group(entry, out, cfg, progress=progress)
    except ValueError as e:  # unknown suite / task / embodiment / robot / camera: the message lists valid names
        _fail(str(e))
    typer.echo(summary_table([result]))
    if len(result.seeds) < episodes:
        typer.echo(
            f"warning: only {len(result.seeds)} of {episodes} episodes succeeded within the seed budget",
            err=True,
        )


@app.command()
def corpus(
    out: Annotated[Path, Opt(help="Output directory.")],
    config: Annotated[
        Path | None, typer.Argument(help="Corpus file (TOML or JSON); default: the built-in corpus.")
    ] = None,
    workers: Annotated[int, Opt(min=1, help="Parallel processes (rendering already uses every core).")] = 1,
    height: Annotated[int | None, Opt(help="Override the image height.")] = None,
    width: Annotated[int | None, Opt(help="Override the image width.")] = None,
    episodes: Annotated[int | None, Opt(help="Override every entry's episode count.")] = None,
    embodiment: Annotated[
        str | None,
        Opt(
            help="Override every entry's embodiment (robot for robosuite), e.g. the benchmark's target set "
            "with the hand-like effector for a cross-embodiment warm-up."
        ),
    ] = None,
    progress: Annotated[bool, Opt(help="Show a progress bar.")] = True,
) -> None:
    """Build a corpus from a list of (suite, task, embodiment/robot, cameras, episodes); resumable."""
    from dataclasses import replace

    from tracegen.io.files import save_json
    from tracegen.provenance import provenance
    from tracegen.sim.recorder import (
        DEFAULT_CORPUS,
        RecordConfig,
        build_corpus,
        check_entries,
        check_same_recording,
        expand_entries,
        load_corpus_config,
        summary_table,
        with_overrides,
    )

    try:
        entries, cfg = (
            (expand_entries(DEFAULT_CORPUS), RecordConfig()) if config is None else load_corpus_config(config)
        )
    except (ValueError, KeyError, TypeError, OSError) as e:
        _fail(f"bad corpus config {config}: {e}")
    cfg = with_overrides(cfg, height=height, width=width)
    if episodes is not None:
        entries = [replace(e, episodes=episodes) for e in entries]
    if embodiment is not None:
        entries = [replace(e, embodiment=embodiment) for e in entries]
        try:
            check_entries(entries)
        except ValueError as e:
            _fail(f"--embodiment {embodiment}: {e}")
    try:
        check_same_recording(out / "corpus.json", cfg)  # before any work: a corpus made otherwise is not added to
    except ValueError as e:
        _fail(str(e))
    results = build_corpus(entries, out, cfg, workers=workers, progress=progress)
    typer.echo(summary_table(results))
    groups = [
        dict(
            task=r.entry.task,
            suite=r.entry.suite,
            embodiment=r.entry.embodiment,
            written=r.written,
            skipped=r.skipped,
            known_failures=r.known_failures,
            attempts=r.attempts,
            successes=r.successes,
            frames=r.frames,
            seconds=round(r.seconds, 2),
            seeds=r.seeds,
            error=r.error,
        )
        for r in results
    ]
    summary = {"groups": groups, "provenance": provenance()}
    save_json(out / "corpus_summary.json", summary)  # atomic: a new file, never a rewrite of a linked one
    if any(r.error for r in results):
        raise typer.Exit(1)


@app.command(name="list")
def list_names(suite: Annotated[str, typer.Argument(help="metaworld or robosuite")] = "metaworld") -> None:
    """List a suite's tasks, embodiments (or robots) and cameras."""
    from tracegen.sim.env import suite_names

    try:
        names = suite_names(suite)
    except ValueError as e:
        _fail(str(e))
    typer.echo(f"tasks ({len(names.tasks)}): {' '.join(names.tasks)}")
    typer.echo(f"{'embodiments' if suite == 'metaworld' else 'robots'}: {' '.join(names.embodiments)}")
    typer.echo(f"cameras: {' '.join(names.cameras)}")


if __name__ == "__main__":
    app()
