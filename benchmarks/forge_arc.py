"""Speed retargeting on TraceForge's tracks vs the exact ones: how much tracker jitter inflates the arc length that
retargeting steps along, and what smoothing the tracked windows along time (``WindowConfig.smooth_frames``) does.

    python benchmarks/forge_arc.py --episodes runs/eps --sigmas 0 2 --json arc.json

Every simulated episode (``tracegen sim record``: ground truth, given cameras, sensor depth) goes through the
pipeline up to compensation once; then, for each sigma, every window the ``windows`` stage considers (not in a
static span, not degenerate) is compared with the exact ground truth of the same query frame and length:

* ``arc_ratio``: the summed robust speed (fastest 2 % of points, normalised units: what retargeting steps along),
  TraceForge / exact, pooled over the windows in which the exact scene moves at least one retargeted step
  (``arc_ratio_median``: the median of the per-window ratios);
* ``steps_forge`` / ``steps_exact``: median number of valid retargeted steps over the windows both keep (official
  filters); ``kept_forge`` / ``kept_exact``: how many windows each keeps;
* ``step_moving_px``: median (and p90) pixel distance between TraceForge's and the exact retargeted trace at the
  same step index (steps 1-32, the model's horizon), over ground-truth moving points (> 2 px within the window) --
  the timing error that ``forge-eval`` cannot see, as it resamples the ground truth at TraceForge's own frames;
* ``arc_ratio_image``: ``arc_ratio`` with the image coordinates only (no depth): how much of the excess is depth;
* ``static_moved_4px``: the fraction of ground-truth static points (under 1 px within the window) that
  TraceForge moves more than 4 px (a point dragged along a surface: on a far floor seen at a grazing angle, a pixel
  is centimetres of depth).

``--match TEXT`` keeps only the episodes whose name contains TEXT.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

HORIZON = 32  # the model's steps after the query point
MOVING_PX = 2.0  # a point moves if its exact reference track leaves this radius within the window


@dataclass
class Window:
    """One query frame's comparison at one sigma."""

    arc_forge: float
    arc_exact: float
    steps_forge: int
    steps_exact: int
    kept_forge: bool
    kept_exact: bool
    step_err_px: np.ndarray  # (M,) pixel errors at equal step indices, moving points; empty unless both kept
    arc_forge_image: float = 0.0  # the arcs without depth
    arc_exact_image: float = 0.0
    static_points: int = 0  # ground-truth static points, and how many of them TraceForge moves > 4 px
    static_moved: int = 0


def tracked_clip(item, cfg):
    """The clip after the ``compensate`` stage, with its ground truth."""
    from tracegen.forge.clip import run_stage
    from tracegen.forge.pipeline import Pipeline
    from tracegen.forge.sources import load_clip

    pipeline = Pipeline(cfg)
    pipeline.setup()
    clip = load_clip(item, cfg.source, keep_gt=True)
    for stage in pipeline.stages:
        if stage.name == "windows":
            return clip
        clip = run_stage(stage, clip)
    raise RuntimeError("the pipeline has no windows stage")


def exact_window(clip, frame: int, length: int) -> np.ndarray | None:
    """Ground truth ``(N, length, 3)`` of query ``frame`` in its camera, or None without a grid there."""
    from tracegen.traces import world_to_reference

    q = {int(f): i for i, f in enumerate(clip.gt.query_frames)}.get(frame)
    if q is None:
        return None
    X = clip.gt.world_tracks(q)[:, frame : frame + length]
    return world_to_reference(X, clip.K[frame], clip.w2c[frame])


def arc_and_steps(clip, frame: int, uvz: np.ndarray, has_depth: bool, window) -> tuple[float, int, float]:
    """Total robust arc length (normalised units) of a window, its number of retargeted steps, and the arc of its
    image coordinates alone."""
    from tracegen.forge.windows import retarget_frames, retarget_input
    from tracegen.traces import robust_speed

    traj = retarget_input(clip, frame, uvz, has_depth, window)
    speed = robust_speed(traj, clip.height, clip.width, window.retarget.top_fraction)
    image = robust_speed(traj[..., :2], clip.height, clip.width, window.retarget.top_fraction)
    return float(speed.sum()), retarget_frames(traj, clip.height, clip.width, window.retarget)[1], float(image.sum())


def displacement(uvz: np.ndarray) -> np.ndarray:
    """``(N,)`` the farthest each track gets from its query pixel (NaN for tracks without any position)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: points without a surface
        return np.nanmax(np.linalg.norm(uvz[..., :2] - uvz[:, :1, :2], axis=-1), axis=1)


def compare(clip, frame: int, uvz: np.ndarray, exact: np.ndarray, has_depth: bool, window) -> Window:
    """TraceForge's (already smoothed) window ``uvz`` against the exact one of the same query frame."""
    from tracegen.forge.windows import window_sample

    arcs = [arc_and_steps(clip, frame, w, has_depth, window) for w in (uvz, exact)]
    forge, truth = (window_sample(clip, frame, w, has_depth, window) for w in (uvz, exact))
    err, reach = np.zeros(0), displacement(exact)
    if not isinstance(forge, str) and not isinstance(truth, str):
        k = min(forge.num_valid, truth.num_valid, HORIZON + 1)
        moving = reach > MOVING_PX
        err = np.linalg.norm(forge.traj[moving, 1:k, :2] - truth.traj[moving, 1:k, :2], axis=-1).ravel()
    static = reach < 1.0
    return Window(
        arcs[0][0],
        arcs[1][0],
        arcs[0][1],
        arcs[1][1],
        not isinstance(forge, str),
        not isinstance(truth, str),
        err,
        arcs[0][2],
        arcs[1][2],
        int(static.sum()),
        int((static & (displacement(uvz) > 4.0)).sum()),
    )


def episode_windows(clip, cfg, sigma: float) -> list[Window]:
    """Every candidate window of a tracked clip, compared with the exact tracks, smoothed by ``sigma`` frames."""
    from tracegen.forge.windows import Windows, clip_has_depth

    window = replace(cfg.window, smooth_frames=sigma)
    stage = Windows(window, cfg.filters.trim_static, cfg.filters.static_speed)
    fresh = replace(clip, samples=[], dropped=Counter())
    has_depth = clip_has_depth(clip)
    out = []
    for _, frame, uvz in stage.candidates(fresh):
        exact = exact_window(clip, frame, uvz.shape[1])
        if exact is not None:
            out.append(compare(clip, frame, uvz, exact, has_depth, window))
    return out


def summary(windows: list[Window], step: float) -> dict:
    """The figures of one sigma over all episodes (see the module docstring)."""
    moving = [w for w in windows if w.arc_exact >= step]
    both = [w for w in windows if w.kept_forge and w.kept_exact]
    err = np.concatenate([w.step_err_px for w in both]) if both else np.zeros(0)
    ratios = [w.arc_forge / w.arc_exact for w in moving]
    return {
        "windows": len(windows),
        "moving_windows": len(moving),
        "arc_ratio": round(sum(w.arc_forge for w in moving) / max(sum(w.arc_exact for w in moving), 1e-12), 3),
        "arc_ratio_median": round(float(np.median(ratios)), 3) if ratios else None,
        "arc_ratio_image": round(
            sum(w.arc_forge_image for w in moving) / max(sum(w.arc_exact_image for w in moving), 1e-12), 3
        ),
        "static_moved_4px": round(
            sum(w.static_moved for w in windows) / max(sum(w.static_points for w in windows), 1), 4
        ),
        "kept_forge": sum(w.kept_forge for w in windows),
        "kept_exact": sum(w.kept_exact for w in windows),
        "kept_both": len(both),
        "steps_forge": float(np.median([w.steps_forge for w in both])) if both else None,
        "steps_exact": float(np.median([w.steps_exact for w in both])) if both else None,
        "step_moving_px": round(float(np.median(err)), 3) if len(err) else None,
        "step_moving_px_p90": round(float(np.percentile(err, 90)), 3) if len(err) else None,
    }


def main() -> None:
    from tracegen.forge.config import CameraConfig, ForgeConfig
    from tracegen.forge.sources import discover

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=Path, required=True, help="simulated episodes (tracegen sim record)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 2.0], help="smooth_frames values")
    parser.add_argument("--match", help="only episodes whose name contains this text")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cfg = ForgeConfig(camera=CameraConfig(kind="given"))
    items = [
        i
        for i in discover(args.episodes, cfg.source)
        if i.kind == "episode" and (not args.match or args.match in i.name)
    ]
    per_sigma: dict[float, list[Window]] = {s: [] for s in args.sigmas}
    for item in items:
        clip = tracked_clip(item, cfg)
        for sigma in args.sigmas:
            per_sigma[sigma] += episode_windows(clip, cfg, sigma)
        print(f"{item.name}: {len(per_sigma[args.sigmas[0]])} windows so far", flush=True)
    results = {"episodes": [i.name for i in items], "sigmas": {}}
    for sigma, windows in per_sigma.items():
        results["sigmas"][str(sigma)] = row = summary(windows, cfg.window.retarget.step)
        print(json.dumps({"smooth_frames": sigma, **row}), flush=True)
    if args.json:
        from tracegen.io.files import save_json

        save_json(args.json, results)


if __name__ == "__main__":
    main()
