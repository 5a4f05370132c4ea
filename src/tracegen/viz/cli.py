"""``tracegen viz``: look at traces instead of reading them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracegen.errors import DataError

app = typer.Typer(help="Pictures and videos of traces (overlays, 3D plots, Rerun recordings).", no_args_is_help=True)


@app.command("traces")
def traces(
    path: Path = typer.Argument(
        ...,
        help="A trace dataset (or official / TAPVid-3D layout), one episode with ground-truth tracks, "
        "or a `tracegen predict` .npz.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Overlay with coloured tails: .mp4 (tails grow step by step) or .png (the final step)."
    ),
    plot3d: Path | None = typer.Option(None, "--3d", help="Matplotlib 3D plot (.png) in the camera frame, metres."),
    rrd: Path | None = typer.Option(None, "--rrd", help="Rerun recording (.rrd); needs rerun-sdk (the viz extra)."),
    index: int = typer.Option(
        0, "--index", min=0, help="Which sample (datasets, predictions) or query grid (episode)."
    ),
    image: Path | None = typer.Option(None, "--image", help="The observation a `tracegen predict` .npz was made on."),
    fovy: float | None = typer.Option(
        None, "--fovy", min=1.0, max=179.0, help="Vertical field of view (degrees) when the input has no K (3D only)."
    ),
    fps: float = typer.Option(10.0, "--fps", min=1.0, help="MP4 frame rate: steps per second."),
    hold: float = typer.Option(1.0, "--hold", min=0.0, help="Seconds the MP4 holds its last frame."),
    size: int = typer.Option(448, "--size", min=64, help="The overlay's longer side is upscaled to at least this."),
) -> None:
    """Draw a trace: observation with CoTracker-style tails (PNG / MP4), 3D plot, Rerun recording."""
    from tracegen.viz import render
    from tracegen.viz.source import load_view

    if out is None and plot3d is None and rrd is None:
        raise typer.BadParameter("nothing to write: give --out FILE.mp4|.png, --3d FILE.png and/or --rrd FILE.rrd")
    for flag, target, suffixes in (
        ("--out", out, (".mp4", ".png")),
        ("--3d", plot3d, (".png",)),
        ("--rrd", rrd, (".rrd",)),
    ):
        if target is not None and target.suffix.lower() not in suffixes:
            raise typer.BadParameter(f"{flag} {target}: the file name must end in {' or '.join(suffixes)}")

    view = load_view(path, index, image)
    if view.K is None and fovy is not None:
        from tracegen.geometry import intrinsics_from_fovy

        view.K = intrinsics_from_fovy(fovy, *view.rgb.shape[:2])
    if plot3d is not None or rrd is not None:
        view.camera_points()  # fails here, before anything is written, when the trace cannot be lifted
        render.check_writable_3d(view, plot3d, rrd)

    written: dict[str, object] = {"source": str(view.source), "steps": view.num_steps, "points": len(view.traj)}
    try:
        if out is not None and out.suffix.lower() == ".mp4":
            written["frames"] = render.write_overlay_mp4(view, out, fps, hold, size)
            written["video"] = str(out)
        elif out is not None:
            written["image"] = str(render.write_overlay_png(view, out, size))
        if plot3d is not None:
            written["plot3d"] = str(render.plot_3d(view, plot3d))
        if rrd is not None:
            written["rrd"] = str(render.write_rrd(view, rrd))
    except OSError as e:
        target = Path(e.filename) if getattr(e, "filename", None) else (out or plot3d or rrd)
        raise DataError(target, f"cannot write: {e.strerror or e}; choose a writable location") from None
    typer.echo(json.dumps(written))
