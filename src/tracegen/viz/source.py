"""What ``tracegen viz`` draws, read from any file that holds a trace: one :class:`TraceView`.

Three kinds of input, told apart by their content:

* a trace sample: a trace dataset, an official TraceForge layout or a tracegen TAPVid-3D export (``index`` picks
  the sample); the trace is drawn on its observation, one frame per retargeted step;
* an episode with ground-truth tracks (``index`` picks the query grid); the video plays from the query frame with
  every tail re-projected into the current frame's camera, so a moving camera is followed;
* a ``tracegen predict`` ``.npz`` (``index`` picks the sample); the observation comes from ``image`` (the file
  given to ``predict``) or, without it, a grey canvas of the prediction's image size.

Every problem is a :class:`~tracegen.errors.DataError` naming the file and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracegen.errors import DataError, check
from tracegen.geometry import project, transform_points, unproject
from tracegen.viz.overlay import point_colors

PREDICTION_KEYS = ("traj", "image_hw")


@dataclass
class TraceView:
    """One trace ready to draw. N points, S steps (frames of the animation), observation H x W.

    Attributes:
        source: the file or folder it came from.
        rgb: ``(H, W, 3)`` uint8 observation (the reference frame of the trace).
        traj: ``(N, S, 3)`` ``(u px, v px, z m)`` in the observation's camera; NaN rows for points without a
            surface (dropped when drawing).
        colors: ``(N, 3)`` uint8 colour of every point (the overlay's rainbow over the full grid).
        title: one line for captions (instruction, task, where it came from).
        has_depth: whether ``traj[..., 2]`` is metric depth.
        K: ``(3, 3)`` intrinsics of the observation, or None when unknown.
        depth: ``(H, W)`` metres of the observation (0 = none), or None.
        frames: ``(S, H, W, 3)`` the image to draw at each step (an episode's video), or None: the observation.
        world: ``(N, S, 3)`` world points, with ``Ks (S, 3, 3)`` / ``w2cs (S, 4, 4)``: tails are re-projected into
            each frame's own camera (episodes); None for traces that live in the observation camera only.
        visible: ``(N, S)`` bool, or None when unknown.
    """

    source: Path
    rgb: np.ndarray
    traj: np.ndarray
    colors: np.ndarray
    title: str
    has_depth: bool
    K: np.ndarray | None = None
    depth: np.ndarray | None = None
    frames: np.ndarray | None = None
    world: np.ndarray | None = None
    Ks: np.ndarray | None = None
    w2cs: np.ndarray | None = None
    visible: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        return int(self.traj.shape[1])

    @property
    def has_surface(self) -> np.ndarray:
        """``(N,)`` points with a finite track (simulator grid points that hit nothing are NaN)."""
        return np.isfinite(self.traj[..., :2]).all(axis=(1, 2))

    def image(self, k: int) -> np.ndarray:
        return self.rgb if self.frames is None else self.frames[k]

    def tails(self, k: int) -> np.ndarray:
        """``(N, k + 1, 2)`` pixels of steps ``0..k`` as seen in the image of step ``k``."""
        if self.world is None:
            return self.traj[:, : k + 1, :2]
        uv, _ = project(transform_points(self.w2cs[k], self.world[:, : k + 1]), self.Ks[k])
        return uv

    def camera_points(self) -> np.ndarray:
        """``(N, S, 3)`` metres in the observation's camera (OpenCV axes); needs depth and K."""
        check(
            self.has_depth,
            self.source,
            "this trace has no metric depth (2D-only), so it cannot be lifted to 3D; use the 2D overlay (--out)",
        )
        check(
            self.K is not None,
            self.source,
            "no camera intrinsics to lift the trace to metres; pass --fovy DEGREES (the vertical field of view)",
        )
        return unproject(self.traj[..., :2].astype(np.float64), self.traj[..., 2].astype(np.float64), self.K)


def load_view(path: str | Path, index: int = 0, image: Path | None = None) -> TraceView:
    """Read whatever trace ``path`` holds (see the module docstring); ``index`` selects a sample or query grid."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "does not exist; give a trace dataset, an episode or a `tracegen predict` .npz")
    if path.is_file() and path.suffix == ".npz" and _is_prediction(path):
        return _prediction_view(path, index, image)
    if image is not None:
        raise DataError(image, "--image only goes with a `tracegen predict` .npz (other inputs carry their image)")
    from tracegen.io import convert

    kind = convert.detect(path)
    if kind == "episodes":
        return _episode_view(path, index)
    if kind == "lerobot":
        raise DataError(
            path,
            "a LeRobot dataset holds raw videos, not traces: convert it (tracegen convert --to tracegen), "
            "then run `tracegen forge`, and view the result",
        )
    return _sample_view(path, kind, index)


def _is_prediction(path: Path) -> bool:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            return all(k in z.files for k in PREDICTION_KEYS) and "rgb" not in z.files
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(path, f"not a readable .npz file (truncated or corrupt?): {e}") from None


def _pick(path: Path, index: int, count: int, what: str) -> int:
    check(count > 0, path, f"holds no {what}s")
    check(0 <= index < count, path, f"has {count} {what}(s); --index must be 0..{count - 1}, not {index}")
    return index


def _sample_view(path: Path, kind: str, index: int) -> TraceView:
    from tracegen.io import convert
    from tracegen.io.trace_dataset import TraceDataset

    if kind == "traces":
        ds = TraceDataset(path)
        sample = ds[_pick(path, index, len(ds), "sample")]
    else:
        samples = [s for _, shard in convert.trace_shards(path, kind) for s in shard]
        sample = samples[_pick(path, index, len(samples), "sample")]
    S = max(sample.num_valid, 1)
    traj = sample.traj[:, :S].astype(np.float64)
    meta = sample.meta
    where = ", ".join(str(meta[k]) for k in ("task", "embodiment", "camera") if meta.get(k))
    title = (sample.instructions[0] if sample.instructions else "") + (f"  ({where})" if where else "")
    return TraceView(
        source=path,
        rgb=sample.rgb,
        traj=traj,
        colors=point_colors(len(traj)),
        title=title.strip() or path.name,
        has_depth=sample.has_depth,
        K=sample.K,
        depth=sample.depth,
        visible=None if sample.visibility is None else sample.visibility[:, :S],
        meta=dict(meta),
    )


def _episode_view(path: Path, index: int) -> TraceView:
    from tracegen.io.convert import episode_dirs
    from tracegen.io.episode import read_episode

    dirs = episode_dirs(path)
    if len(dirs) > 1:
        raise DataError(path, f"holds {len(dirs)} episodes; give one episode directory, e.g. {dirs[0]}")
    ep = read_episode(dirs[0])
    if ep.gt is None or ep.K is None:
        raise DataError(
            dirs[0],
            "episode has no ground-truth tracks or no cameras; run `tracegen forge` on it and view the trace dataset",
        )
    q = _pick(dirs[0], index, len(ep.gt.query_frames), "query grid")
    f = int(ep.gt.query_frames[q])
    world = ep.gt.world_tracks(q)[:, f:]  # (N, S, 3), NaN for points without a surface
    traj, visible = ep.gt_reference_tracks(q)
    where = ", ".join(str(ep.meta[k]) for k in ("task", "embodiment", "camera") if ep.meta.get(k))
    title = (ep.instructions[0] if ep.instructions else "") + (f"  ({where})" if where else "")
    return TraceView(
        source=dirs[0],
        rgb=ep.rgb[f],
        traj=traj,
        colors=point_colors(len(traj)),
        title=title.strip() or dirs[0].name,
        has_depth=True,
        K=ep.K[f],
        depth=None if ep.depth is None else ep.depth[f],
        frames=ep.rgb[f:],
        world=world,
        Ks=ep.K[f:],
        w2cs=ep.w2c[f:],
        visible=visible,
        meta={**ep.meta, "query_frame": f},
    )


def _prediction_view(path: Path, index: int, image: Path | None) -> TraceView:
    from tracegen.io.files import load_npz
    from tracegen.io.official import read_png

    arrays = load_npz(path, PREDICTION_KEYS)
    traj, hw = arrays["traj"], arrays["image_hw"]
    if traj.ndim == 3:  # one sample without the samples axis
        traj = traj[None]
    check(
        traj.ndim == 4 and traj.shape[-1] == 3 and hw.shape == (2,),
        path,
        f"traj must be (samples, N, steps, 3) and image_hw (2,), got {traj.shape} and {hw.shape}",
    )
    traj = traj[_pick(path, index, len(traj), "sample")].astype(np.float64)
    check(bool(np.isfinite(traj[..., :2]).all()), path, "traj has non-finite pixel coordinates")
    H, W = int(hw[0]), int(hw[1])
    if image is not None:
        rgb = read_png(image)
        check(
            rgb.shape[:2] == (H, W),
            image,
            f"is {rgb.shape[1]}x{rgb.shape[0]} but the prediction was made on a {W}x{H} image; "
            "pass the --image given to `tracegen predict`",
        )
    else:
        rgb = np.full((H, W, 3), 96, np.uint8)
    text = str(arrays["instruction"]) if "instruction" in arrays else ""
    return TraceView(
        source=path,
        rgb=rgb,
        traj=traj,
        colors=point_colors(len(traj)),
        title=(f"predicted: {text}" if text else f"predicted: {path.name}"),
        has_depth=bool((np.nan_to_num(traj[..., 2]) > 0).any()),  # z is NaN where there was no depth
    )
