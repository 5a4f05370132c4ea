"""TAPVid-3D style ``.npz`` files (time-major 3D tracks in camera coordinates), exported and read back.

Keys written (one file per trace sample)::

    tracks_XYZ      (S, N, 3) float32   metres, in the reference camera (OpenCV axes); S = valid retargeted steps
    visibility      (S, N)    bool      all True when the sample carries no visibility (the official files keep none)
    queries_xyt     (N, 3)    float32   query pixel (x, y) and step 0
    fx_fy_cx_cy     (4,)      float64   reference intrinsics
    extrinsics_w2c  (S, 4, 4) float64   the reference camera's world -> camera, repeated (traces are compensated)
    tracegen_*                          what TAPVid-3D has no key for: the observation image and depth, the
                                        instructions, metadata, the step mask; they make the export round-trip

On read, the lowercase spellings ``tracks_xyz`` and ``intrinsics`` are accepted too. TAPVid-3D's own
``images_jpeg_bytes`` is a pickled object array, which tracegen never loads; a file without a tracegen image can be
inspected but not turned into a training triplet.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tracegen.errors import DataError, check
from tracegen.geometry import fx_fy_cx_cy, intrinsics, project, unproject
from tracegen.io.files import entries, load_npz, save_npz
from tracegen.io.trace_dataset import TraceSample

TRACKS_KEYS = ("tracks_XYZ", "tracks_xyz")
INTRINSICS_KEYS = ("fx_fy_cx_cy", "intrinsics")


def is_tapvid3d(path: str | Path) -> bool:
    path = Path(path)
    files = [path] if path.is_file() else entries(path, "*.npz") if path.is_dir() else []
    if not files or files[0].suffix != ".npz":
        return False
    try:
        with np.load(files[0], allow_pickle=False) as z:
            return any(k in z.files for k in TRACKS_KEYS)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):  # not an .npz it can read: the readers say so
        return False


def tapvid3d_files(path: str | Path) -> list[Path]:
    path = Path(path)
    return [path] if path.is_file() else entries(path, "*.npz")


def write_tapvid3d(path: str | Path, sample: TraceSample) -> Path:
    """Export one trace sample. Needs metric depth (``has_depth``) and intrinsics K.

    A point without a depth measurement (z = 0: sky, far plane, a sensor's hole) has no 3D position; it is written
    on its pixel's ray at 1 m and marked not visible (TAPVid-3D's tracks must be finite, in front of the camera),
    and ``tracegen_no_depth (S, N)`` names it, so that tracegen reads it back as it was."""
    path = Path(path)
    check(sample.has_depth, path, "a 2D-only sample has no depth; TAPVid-3D needs metric 3D tracks")
    check(sample.K is not None, path, "the sample has no intrinsics K; TAPVid-3D needs fx_fy_cx_cy")
    S = sample.num_valid
    uvz = sample.traj[:, :S].astype(np.float64)  # (N, S, 3)
    no_depth = ~(uvz[..., 2] > 0)  # (N, S)
    xyz = unproject(uvz[..., :2], np.where(no_depth, 1.0, uvz[..., 2]), sample.K)  # (N, S, 3) camera metres
    visibility = sample.visibility[:, :S] if sample.visibility is not None else np.ones(uvz.shape[:2], bool)
    queries = np.concatenate([uvz[:, 0, :2], np.zeros((len(uvz), 1))], -1)
    arrays = {
        "tracks_XYZ": np.swapaxes(xyz, 0, 1).astype(np.float32),
        "visibility": np.swapaxes(visibility & ~no_depth, 0, 1),
        "tracegen_visibility": np.swapaxes(visibility, 0, 1),
        "tracegen_no_depth": np.swapaxes(no_depth, 0, 1),
        "queries_xyt": queries.astype(np.float32),
        "fx_fy_cx_cy": fx_fy_cx_cy(sample.K),
        "tracegen_rgb": sample.rgb,
        "tracegen_valid_steps": sample.valid_steps[:S],
        "tracegen_instructions": np.array(sample.instructions, dtype=str),
        "tracegen_meta": np.array(json.dumps(sample.meta, sort_keys=True)),
        "tracegen_visibility_known": np.array(sample.visibility is not None),
    }
    if sample.w2c is not None:
        arrays["extrinsics_w2c"] = np.repeat(sample.w2c[None], S, 0)
    if sample.depth is not None:
        arrays["tracegen_depth"] = sample.depth.astype(np.float32)
    save_npz(path, **arrays)
    return path


def read_tapvid3d_tracks(path: str | Path) -> dict[str, np.ndarray]:
    """The track arrays of any TAPVid-3D file under canonical names: ``tracks_XYZ (T, N, 3)``, ``visibility (T, N)``,
    ``fx_fy_cx_cy (4,)``, and ``extrinsics_w2c (T, 4, 4)`` when present. Validated."""
    path = Path(path)
    arrays = load_npz(path, skip_pickled=True)
    tracks = _first(arrays, TRACKS_KEYS, path)
    intr = _first(arrays, INTRINSICS_KEYS, path).astype(np.float64).ravel()
    check(tracks.ndim == 3 and tracks.shape[-1] == 3, path, f"tracks_XYZ must be (T, N, 3), got {tracks.shape}")
    check(intr.shape == (4,), path, f"fx_fy_cx_cy must have 4 values, got {intr.shape}")
    check(bool(np.isfinite(tracks).all()), path, "tracks_XYZ has NaN or inf values")
    vis = arrays.get("visibility", np.ones(tracks.shape[:2], bool)).astype(bool)
    check(vis.shape == tracks.shape[:2], path, f"visibility must be {tracks.shape[:2]}, got {vis.shape}")
    out = {"tracks_XYZ": tracks.astype(np.float64), "visibility": vis, "fx_fy_cx_cy": intr}
    if "extrinsics_w2c" in arrays:
        out["extrinsics_w2c"] = arrays["extrinsics_w2c"].astype(np.float64)
    return out | {k: v for k, v in arrays.items() if k.startswith("tracegen_")}


def _first(arrays: dict[str, np.ndarray], keys: tuple[str, ...], path: Path) -> np.ndarray:
    for key in keys:
        if key in arrays:
            return arrays[key]
    raise DataError(path, f"missing {' / '.join(keys)}; present: {sorted(arrays)}")


def read_tapvid3d(path: str | Path) -> TraceSample:
    """A trace sample from a TAPVid-3D file written by tracegen (which carries the observation image).

    Files from elsewhere hold their frames only as pickled JPEG bytes, which tracegen does not load: they fail here
    with a message saying so (``tracegen inspect`` still summarises their tracks).
    """
    path = Path(path)
    a = read_tapvid3d_tracks(path)
    check(
        "tracegen_rgb" in a,
        path,
        "has no observation image tracegen can read (TAPVid-3D's images_jpeg_bytes is a "
        "pickled object array, which tracegen never loads); only files exported by tracegen convert to triplets",
    )
    K = intrinsics(*a["fx_fy_cx_cy"])
    check(
        bool((a["tracks_XYZ"][..., 2] > 0).all()),
        path,
        "tracks_XYZ has points at or behind the camera (z <= 0)",
    )
    xyz = np.swapaxes(a["tracks_XYZ"], 0, 1)  # (N, S, 3)
    uv, z = project(xyz, K)
    if "tracegen_no_depth" in a:  # written on the ray at 1 m: no depth, as the sample had
        z = np.where(np.swapaxes(a["tracegen_no_depth"], 0, 1).astype(bool), 0.0, z)
    traj = np.concatenate([uv, z[..., None]], -1).astype(np.float32)
    S = traj.shape[1]
    valid = a.get("tracegen_valid_steps", np.ones(S, bool)).astype(bool)
    w2c = a["extrinsics_w2c"][0] if "extrinsics_w2c" in a else None
    vis = np.swapaxes(a.get("tracegen_visibility", a["visibility"]), 0, 1).astype(bool)
    vis = vis if bool(a.get("tracegen_visibility_known", False)) else None
    meta = json.loads(str(a["tracegen_meta"])) if "tracegen_meta" in a else {"source": "tapvid3d"}
    instructions = [str(t) for t in a.get("tracegen_instructions", np.array([], str))]
    sample = TraceSample(
        a["tracegen_rgb"], traj, valid, instructions, True, a.get("tracegen_depth"), K, w2c, vis, None, meta
    )
    sample.validate(path)
    return sample
