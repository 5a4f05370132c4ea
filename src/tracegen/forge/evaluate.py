"""``tracegen forge-eval``: run the pipeline on simulated episodes and compare every stage with exact ground truth.

Ground truth (:class:`tracegen.io.episode.GroundTruthTracks`) gives each query point's world position at every
frame and whether it is visible in that frame's camera. What is measured, over (point, frame) pairs visible at both
ends of the comparison (the query frame and the compared frame):

* **tracker (2D)**: pixel error of the tracks in each frame's own image against the ground truth projected with the
  true camera; ``moving`` points are those whose camera-compensated ground truth moves more than
  ``MOVING_PX`` pixels within the window. Plain Lucas-Kanade (:class:`~tracegen.forge.tracker.LKTracker`) is run on
  the same windows for comparison. Visibility: how often the tracker's visible flag agrees with the ground truth.
* **traces (3D)**: the final samples -- compensated, retargeted, filtered -- against the ground truth retargeted at
  the *same* fractional frames (:func:`~tracegen.forge.windows.retarget_frames` of the estimated trace), both
  lifted to the reference camera's 3D frame with their own intrinsics: Euclidean error in cm. Also the reference
  pixel error (for 2D-only traces the only one).
* **camera** (when estimated, e.g. ``colmap``): rotation error of every frame relative to the first, and camera
  centre error after a similarity alignment to the true centres.
* **depth** (when a depth stage changes the simulator's depth: edge cleaning, a learned model): absolute relative
  error against it.
* **throughput**: the pipeline's own time (no evaluation) per 150 frames, per core, and by stage.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tracegen.forge.clip import Clip, run_stage
from tracegen.forge.config import ForgeConfig
from tracegen.forge.pipeline import Pipeline
from tracegen.forge.sources import SourceItem, load_clip
from tracegen.forge.tracker import LKTracker
from tracegen.forge.windows import resample_frames, retarget_frames, retarget_input, tracked_window
from tracegen.geometry import invert_rigid, umeyama, unproject, world_to_pixels
from tracegen.traces import world_to_reference

MOVING_PX = 2.0  # a point "moves" if its compensated ground truth leaves a 2-pixel radius within the window
CLIP_FRAMES = 150  # throughput is reported per clip of this many frames


@dataclass
class Errors:
    """Pooled errors of one kind over all episodes."""

    values: list[np.ndarray] = field(default_factory=list)

    def add(self, e: np.ndarray) -> None:
        self.values.append(np.asarray(e, np.float64).ravel())

    def all(self) -> np.ndarray:
        return np.concatenate(self.values) if self.values else np.zeros(0)

    def stats(self, prefix: str, within: tuple[float, ...] = (), scale: float = 1.0) -> dict[str, Any]:
        e = self.all() * scale
        out: dict[str, Any] = {f"{prefix}_count": int(len(e))}
        if not len(e):
            return out
        out[f"{prefix}_median"] = round(float(np.median(e)), 4)
        out[f"{prefix}_p90"] = round(float(np.percentile(e, 90)), 4)
        out[f"{prefix}_mean"] = round(float(e.mean()), 4)
        for w in within:
            out[f"{prefix}_within_{w:g}"] = round(float((e < w).mean()), 4)
        return out


@dataclass
class Accumulator:
    track_all: Errors = field(default_factory=Errors)
    track_moving: Errors = field(default_factory=Errors)
    lk_all: Errors = field(default_factory=Errors)
    lk_moving: Errors = field(default_factory=Errors)
    err3d: Errors = field(default_factory=Errors)
    err3d_moving: Errors = field(default_factory=Errors)
    ref2d: Errors = field(default_factory=Errors)
    ref2d_moving: Errors = field(default_factory=Errors)
    rot_deg: Errors = field(default_factory=Errors)
    centre_cm: Errors = field(default_factory=Errors)
    vis_agree: Errors = field(default_factory=Errors)
    depth_absrel: Errors = field(default_factory=Errors)
    seconds: float = 0.0
    frames: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    episodes: list[dict] = field(default_factory=list)


def evaluate(
    items: list[SourceItem], cfg: ForgeConfig, baseline: bool = True, progress: bool = False
) -> dict[str, Any]:
    """Run the pipeline on every simulated episode in ``items`` and pool the errors (see the module docstring)."""
    pipeline = Pipeline(cfg)
    pipeline.setup()
    acc = Accumulator()
    from tqdm.auto import tqdm

    for item in tqdm(items, desc="forge-eval", unit="ep", disable=not progress):
        record = {"name": item.name}
        try:
            _evaluate_episode(pipeline, item, cfg, acc, baseline, record)
        except Exception as e:  # noqa: BLE001 -- reported per episode, the evaluation goes on
            record["error"] = f"{type(e).__name__}: {e}"
        acc.episodes.append(record)
    return report(acc, cfg)


def _evaluate_episode(
    pipeline: Pipeline, item: SourceItem, cfg: ForgeConfig, acc: Accumulator, baseline: bool, record: dict
) -> None:
    start = time.perf_counter()
    clip = load_clip(item, cfg.source, keep_gt=True)
    load_seconds = time.perf_counter() - start
    if clip.gt is None or clip.K is None or clip.w2c is None:
        raise ValueError("not a simulated episode with ground truth and cameras")
    gt_K, gt_w2c = clip.K.copy(), clip.w2c.copy()
    sensor = clip.depth.copy() if clip.depth is not None else None
    clip.timings["load"] = load_seconds
    for stage in pipeline.stages:
        clip = run_stage(stage, clip)
    seconds = sum(clip.timings.values())
    acc.seconds += seconds
    acc.frames += clip.num_frames
    for k, v in clip.timings.items():
        acc.stage_seconds[k] = acc.stage_seconds.get(k, 0.0) + v
    record.update(
        frames=clip.num_frames,
        samples=len(clip.samples),
        seconds=round(seconds, 3),
        dropped=dict(clip.dropped),
        camera=clip.info.get("camera"),
    )
    truth = _Truth(clip, gt_K, gt_w2c)
    track_err = _track_errors(clip.tracks, truth, acc.track_all, acc.track_moving, acc.vis_agree)
    record.update(track_err)
    if baseline:
        lk_clip = replace(clip, K=gt_K, w2c=gt_w2c, tracks=None)
        lk_tracks = LKTracker(cfg.tracker, cfg.window).process(lk_clip).tracks
        record.update({f"lk_{k}": v for k, v in _track_errors(lk_tracks, truth, acc.lk_all, acc.lk_moving).items()})
    _trace_errors(clip, truth, cfg, acc)
    if not np.allclose(clip.w2c, gt_w2c):
        record.update(_camera_errors(clip, gt_w2c, acc))
    if sensor is not None and clip.depth is not None and not np.array_equal(clip.depth, sensor):
        ok = (sensor > 0) & (clip.depth > 0)  # a depth stage changed the depth (cleaning, a learned model)
        acc.depth_absrel.add(np.abs(clip.depth[ok] - sensor[ok]) / sensor[ok])


class _Truth:
    """Ground truth of one clip, per query frame: image tracks in each frame's camera, reference-camera tracks."""

    def __init__(self, clip: Clip, K: np.ndarray, w2c: np.ndarray):
        self.clip, self.K, self.w2c = clip, K, w2c
        gt = clip.gt
        self.by_frame = {int(f): q for q, f in enumerate(gt.query_frames)}

    def window(self, frame: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """``image (N, L, 2)`` px in each frame's camera, ``ref (N, L, 3)`` in the query camera, ``visible (N, L)``
        (at both ends), ``moving (N,)`` -- or None when the ground truth has no grid at this frame."""
        q = self.by_frame.get(frame)
        if q is None:
            return None
        gt = self.clip.gt
        X = gt.world_tracks(q)[:, frame : frame + length]  # (N, L, 3), NaN where no surface
        steps = X.shape[1]
        image = np.stack(
            [world_to_pixels(X[:, s], self.K[frame + s], self.w2c[frame + s])[:, :2] for s in range(steps)], 1
        )
        ref = world_to_reference(X, self.K[frame], self.w2c[frame])
        vis = gt.visibility[q, frame : frame + steps].T  # (N, L)
        vis = vis & vis[:, :1] & (gt.point_body[q] >= 0)[:, None]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: points without a surface
            moving = np.nanmax(np.linalg.norm(ref[..., :2] - ref[:, :1, :2], axis=-1), axis=1) > MOVING_PX
        return image, ref, vis, moving


def _track_errors(tracks, truth: _Truth, all_err: Errors, moving_err: Errors, agree: Errors | None = None) -> dict:
    e_all, e_mov = [], []
    for q, f in enumerate(tracks.query_frames):
        L = int(tracks.lengths[q])
        w = truth.window(int(f), L)
        if w is None:
            continue
        image, _, vis, moving = w
        e = np.linalg.norm(tracks.uv[q, :, :L] - image, axis=-1)
        e_all.append(e[vis])
        e_mov.append(e[vis & moving[:, None]])
        if agree is not None:
            has = truth.clip.gt.point_body[truth.by_frame[int(f)]] >= 0
            agree.add((tracks.visible[q, :, :L] == truth.clip.gt.visibility[truth.by_frame[int(f)], f : f + L].T)[has])
    a, m = np.concatenate(e_all), np.concatenate(e_mov)
    all_err.add(a)
    moving_err.add(m)
    out = {"within_4px": round(float((a < 4).mean()), 4) if len(a) else None}
    if len(m):
        out.update(moving_within_4px=round(float((m < 4).mean()), 4), moving_median_px=round(float(np.median(m)), 3))
    return out


def _trace_errors(clip: Clip, truth: _Truth, cfg: ForgeConfig, acc: Accumulator) -> None:
    H, W = clip.height, clip.width
    position = {int(f): q for q, f in enumerate(clip.tracks.query_frames)}
    for sample in clip.samples:
        f = int(sample.meta["query_frame"])
        q = position[f]
        L = int(clip.tracks.lengths[q])
        w = truth.window(f, L)
        if w is None:
            continue
        _, ref_gt, vis, moving = w
        est_time, _ = tracked_window(clip.reference[q], sample.has_depth, cfg.window)
        traj = retarget_input(clip, f, est_time, sample.has_depth, cfg.window)
        frames, count = retarget_frames(traj, H, W, cfg.window.retarget)
        gt_steps = resample_frames(ref_gt, frames)  # (N, S, 3)
        est_steps = sample.traj[:, :count].astype(np.float64)
        lo, hi = np.floor(frames).astype(int), np.minimum(np.ceil(frames).astype(int), L - 1)
        ok = vis[:, lo] & vis[:, hi] & np.isfinite(gt_steps).all(-1)  # (N, S)
        acc.ref2d.add(np.linalg.norm(est_steps[..., :2] - gt_steps[..., :2], axis=-1)[ok])
        acc.ref2d_moving.add(np.linalg.norm(est_steps[..., :2] - gt_steps[..., :2], axis=-1)[ok & moving[:, None]])
        if sample.has_depth:
            X_est = unproject(est_steps[..., :2], est_steps[..., 2], clip.K[f])
            X_gt = unproject(gt_steps[..., :2], gt_steps[..., 2], truth.K[f])
            e = np.linalg.norm(X_est - X_gt, axis=-1)
            acc.err3d.add(e[ok])
            acc.err3d_moving.add(e[ok & moving[:, None]])


def rotation_errors_deg(w2c: np.ndarray, gt_w2c: np.ndarray) -> np.ndarray:
    """``(T,)`` degrees: per frame, the angle between the estimated and the true rotation from that frame's camera
    to frame 0's (gauge-free: a common rotation of all estimated cameras costs nothing)."""
    est_c2w, gt_c2w = invert_rigid(w2c), invert_rigid(gt_w2c)
    rel_est = np.einsum("ij,tjk->tik", w2c[0, :3, :3], est_c2w[:, :3, :3])  # R_0 R_t^T: rotation to frame 0
    rel_gt = np.einsum("ij,tjk->tik", gt_w2c[0, :3, :3], gt_c2w[:, :3, :3])
    diff = np.einsum("tji,tjk->tik", rel_est, rel_gt)
    return np.degrees(np.arccos(np.clip((np.trace(diff, axis1=1, axis2=2) - 1) / 2, -1, 1)))


def _camera_errors(clip: Clip, gt_w2c: np.ndarray, acc: Accumulator) -> dict:
    est_c2w, gt_c2w = invert_rigid(clip.w2c), invert_rigid(gt_w2c)
    rot = rotation_errors_deg(clip.w2c, gt_w2c)
    acc.rot_deg.add(rot)
    out = {"camera_rot_deg_median": round(float(np.median(rot)), 3), "camera_rot_deg_max": round(float(rot.max()), 3)}
    ce, cg = est_c2w[:, :3, 3], gt_c2w[:, :3, 3]
    if np.linalg.matrix_rank(cg - cg.mean(0)) >= 2:
        s, R, t = umeyama(ce, cg)
        centre = 100 * np.linalg.norm(ce @ (s * R).T + t - cg, axis=-1)
        acc.centre_cm.add(centre)
        out["camera_centre_cm_median"] = round(float(np.median(centre)), 3)
    return out


def report(acc: Accumulator, cfg: ForgeConfig) -> dict[str, Any]:
    """The JSON report: headline numbers first, then details."""
    track_m, lk_m = acc.track_moving.all(), acc.lk_moving.all()
    e3 = acc.err3d.all() * 100
    per_clip = acc.seconds / max(acc.frames, 1) * CLIP_FRAMES
    ok = [e for e in acc.episodes if "error" not in e]
    out: dict[str, Any] = {
        "episodes": len(ok),
        "episodes_failed": len(acc.episodes) - len(ok),
        "moving_within_4px": _frac(track_m < 4) if len(track_m) else None,
        "moving_median_px": _q(track_m, 50),
        "lk_moving_within_4px": _frac(lk_m < 4) if len(lk_m) else None,
        "lk_moving_median_px": _q(lk_m, 50),
        "err3d_median_cm": _q(e3, 50),
        "err3d_p90_cm": _q(e3, 90),
        "clips_per_min_per_core": round(60 / per_clip, 2) if acc.frames else None,
        "seconds_per_clip": round(per_clip, 3) if acc.frames else None,
        "clip_frames": CLIP_FRAMES,
        "camera": cfg.camera.kind,
        "tracker": cfg.tracker.kind,
    }
    out |= acc.track_all.stats("track_px", (1, 2, 4, 8))
    out |= acc.track_moving.stats("track_moving_px", (1, 2, 4, 8))
    out |= acc.lk_all.stats("lk_px", (1, 2, 4, 8))
    out |= acc.lk_moving.stats("lk_moving_px", (1, 2, 4, 8))
    out |= acc.err3d.stats("err3d_cm", (0.5, 1, 2), scale=100)
    out |= acc.err3d_moving.stats("err3d_moving_cm", (0.5, 1, 2), scale=100)
    out |= acc.ref2d.stats("ref_px", (1, 4))
    out |= acc.ref2d_moving.stats("ref_moving_px", (1, 4))
    out |= acc.vis_agree.stats("visibility_agreement")
    if acc.rot_deg.values:
        out |= acc.rot_deg.stats("camera_rot_deg")
        out |= acc.centre_cm.stats("camera_centre_cm")
    if acc.depth_absrel.values:
        out |= acc.depth_absrel.stats("depth_absrel", (0.01, 0.05))
    total = sum(acc.stage_seconds.values()) or 1.0
    out["stage_share"] = {k: round(v / total, 4) for k, v in acc.stage_seconds.items()}
    out["stage_seconds_per_clip"] = {
        k: round(v / max(acc.frames, 1) * CLIP_FRAMES, 4) for k, v in acc.stage_seconds.items()
    }
    out["per_episode"] = acc.episodes
    out["config"] = cfg.to_dict()
    return out


def _frac(mask: np.ndarray) -> float:
    return round(float(np.mean(mask)), 4)


def _q(e: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(e, q)), 4) if len(e) else None
