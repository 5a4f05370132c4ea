"""The ``tracegen`` command line. Every verb has ``--help``; bad data ends in one line ``error: <file>: <problem>``
and exit code 2, before any partial output is written."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path

import typer

from tracegen.errors import DataError

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


def _mount_optional_apps() -> None:
    """Verb groups whose dependencies are optional extras (the simulator)."""
    try:
        from tracegen.sim.cli import app as sim_app
    except ImportError:
        return
    app.add_typer(sim_app, name="sim", help="Record simulated demonstrations with exact ground-truth tracks.")


_mount_optional_apps()


def main() -> None:
    try:
        app()
    except DataError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
