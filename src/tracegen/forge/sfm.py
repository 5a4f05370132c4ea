"""Structure from motion with pycolmap (COLMAP, BSD): per-frame cameras of a moving-camera clip.

SIFT features (2048; small frames upsampled 2x) on at most ``max_images`` evenly spaced frames, exhaustive matching
(sequential beyond 40 frames), incremental mapping with a single shared camera: PINHOLE with the given intrinsics
held fixed, or SIMPLE_PINHOLE with an estimated focal length (principal point at the image centre). The largest
reconstruction is kept; frames that were not registered (or not submitted) get poses interpolated between their
registered neighbours (slerp + linear), and held at the ends. Moving objects (an arm) are outliers to the
static-scene geometry and are rejected by the two-view RANSAC.

With metric sensor depth, the reconstruction is scaled to metres (:func:`metric_scale`) and then aligned to the
depth (:func:`refine_with_depth`): on small, low-parallax simulator frames this cuts the pose error several-fold.
The camera stage then aligns the dense depth maps (:mod:`tracegen.forge.rgbd_align`), another 40x.

COLMAP puts pixel centres at +0.5; everything returned here uses tracegen's integer pixel centres.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracegen.forge.clip import ClipError
from tracegen.geometry import make_rigid

MAX_FEATURES = 2048  # SIFT features per frame
SMALL_IMAGE = 400  # longest side (pixels) below which SIFT upsamples the image 2x (more features on small frames)
EXHAUSTIVE_UP_TO = 40  # match every pair of frames up to this many frames, else each with the next OVERLAP ones
OVERLAP = 10
FOCAL_RANGE = (0.3, 5.0)  # plausible focal lengths, in units of the longest image side (fov ~11..120 degrees)


@dataclass
class SfMResult:
    """Cameras of every frame and the sparse points seen by the registered ones.

    Attributes:
        K: ``(T, 3, 3)`` intrinsics.  w2c: ``(T, 4, 4)`` world -> camera (SfM units: arbitrary scale).
        registered: ``(T,)`` bool, the frame's pose comes from SfM (else interpolated).
        observations: frame -> ``(uv (n, 2) pixels, X (n, 3) world points)`` for registered frames.
        info: statistics for the run summary.
    """

    K: np.ndarray
    w2c: np.ndarray
    registered: np.ndarray
    observations: dict[int, tuple[np.ndarray, np.ndarray]]
    info: dict


def run_sfm(
    rgb: np.ndarray,
    K: np.ndarray | None = None,
    max_images: int = 60,
    min_registered: float = 0.6,
    refine_focal: bool = True,
    seed: int = 0,
) -> SfMResult:
    """Cameras for the frames ``rgb (T, H, W, 3)``; ``K (3, 3)`` when the intrinsics are known.

    Raises :class:`ClipError` when fewer than ``min_registered`` of the submitted frames are registered.
    """
    import pycolmap

    pycolmap.logging.minloglevel = 2  # COLMAP logs every step to stderr otherwise
    pycolmap.set_random_seed(seed)
    T, H, W = rgb.shape[:3]
    chosen = np.unique(np.linspace(0, T - 1, min(T, max_images)).round().astype(int))
    with tempfile.TemporaryDirectory(prefix="tracegen-sfm-") as tmp:
        tmp = Path(tmp)
        images, db, out = tmp / "images", tmp / "database.db", tmp / "sparse"
        images.mkdir()
        out.mkdir()
        for i in chosen:
            cv2.imwrite(str(images / f"{i:06d}.png"), cv2.cvtColor(rgb[i], cv2.COLOR_RGB2BGR))
        reader = pycolmap.ImageReaderOptions()
        if K is not None:
            reader.camera_model = "PINHOLE"
            reader.camera_params = ",".join(str(x) for x in (K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5))
        else:
            reader.camera_model = "SIMPLE_PINHOLE"
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.num_threads = 1
        extraction.sift.max_num_features = MAX_FEATURES
        extraction.sift.first_octave = -1 if max(H, W) < SMALL_IMAGE else 0
        pycolmap.extract_features(
            db,
            images,
            camera_mode=pycolmap.CameraMode.SINGLE,
            reader_options=reader,
            extraction_options=extraction,
            device=pycolmap.Device.cpu,
        )
        matching = pycolmap.FeatureMatchingOptions()
        matching.num_threads = 1
        if len(chosen) <= EXHAUSTIVE_UP_TO:
            pycolmap.match_exhaustive(db, matching_options=matching, device=pycolmap.Device.cpu)
        else:
            pairing = pycolmap.SequentialPairingOptions()
            pairing.overlap, pairing.quadratic_overlap = OVERLAP, False
            pycolmap.match_sequential(
                db, matching_options=matching, pairing_options=pairing, device=pycolmap.Device.cpu
            )
        options = pycolmap.IncrementalPipelineOptions()
        options.num_threads = 1
        options.random_seed = seed
        options.min_model_size = 3
        fixed = K is not None or not refine_focal
        options.ba_refine_focal_length = not fixed
        options.ba_refine_principal_point = False
        options.ba_refine_extra_params = False
        options.ba_global_max_num_iterations, options.ba_local_max_num_iterations = 20, 10
        options.min_focal_length_ratio, options.max_focal_length_ratio = FOCAL_RANGE  # of the longest side
        options.ba_global_max_refinements = options.ba_local_max_refinements = 1
        models = pycolmap.incremental_mapping(db, images, out, options)
    if not models:
        raise ClipError(
            f"SfM could not register the frames (no reconstruction from {len(chosen)} frames; "
            "a fixed camera or too little texture/parallax? use --camera static or given)"
        )
    recon = max(models.values(), key=lambda r: r.num_reg_images())
    return _result(recon, chosen, T, min_registered)


def _result(recon, chosen: np.ndarray, T: int, min_registered: float) -> SfMResult:
    poses: dict[int, np.ndarray] = {}
    observations = {}
    K = None
    for image in recon.images.values():
        if not image.has_pose:
            continue
        frame = int(Path(image.name).stem)
        poses[frame] = make_rigid(*_split(image.cam_from_world().matrix()))
        uv, X = [], []
        for p2d in image.points2D:
            if p2d.has_point3D():
                uv.append(np.asarray(p2d.xy) - 0.5)
                X.append(recon.points3D[p2d.point3D_id].xyz)
        observations[frame] = (np.asarray(uv).reshape(-1, 2), np.asarray(X).reshape(-1, 3))
        if K is None:
            K = np.asarray(image.camera.calibration_matrix(), np.float64)
            K[0, 2] -= 0.5
            K[1, 2] -= 0.5
    fraction = len(poses) / len(chosen)
    info = {
        "sfm_frames": int(len(chosen)),
        "sfm_registered": len(poses),
        "sfm_points": int(recon.num_points3D()),
        "sfm_reprojection_px": round(float(recon.compute_mean_reprojection_error()), 3),
    }
    if fraction < min_registered or len(poses) < 2:
        raise ClipError(
            f"SfM registered only {len(poses)} of {len(chosen)} frames (need {min_registered:.0%}); "
            "too little texture or parallax for a moving-camera reconstruction"
        )
    camera = next(iter(recon.cameras.values()))
    longest = max(camera.width, camera.height)
    if not FOCAL_RANGE[0] <= K[0, 0] / longest <= FOCAL_RANGE[1]:
        raise ClipError(
            f"SfM is degenerate: focal length {K[0, 0]:.0f} px for {longest}-px frames (no camera motion, "
            "or only a moving object? use --camera static or given)"
        )
    registered = np.zeros(T, bool)
    registered[list(poses)] = True
    info["focal_px"] = round(float(K[0, 0]), 2)
    return SfMResult(np.repeat(K[None], T, 0), interpolate_poses(poses, T), registered, observations, info)


def _split(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return m[:3, :3], m[:3, 3]


def interpolate_poses(poses: dict[int, np.ndarray], T: int) -> np.ndarray:
    """``(T, 4, 4)`` w2c for every frame from the known ones: slerp rotation and lerp camera centre between the
    nearest known frames; held before the first and after the last."""
    known = np.array(sorted(poses))
    out = np.zeros((T, 4, 4))
    for t in range(T):
        j = np.searchsorted(known, t)
        if j < len(known) and known[j] == t:
            out[t] = poses[t]
        elif j == 0 or j == len(known):
            out[t] = poses[int(known[min(j, len(known) - 1)])]
        else:
            a, b = int(known[j - 1]), int(known[j])
            out[t] = _blend(poses[a], poses[b], (t - a) / (b - a))
    return out


def _blend(A: np.ndarray, B: np.ndarray, s: float) -> np.ndarray:
    """w2c between ``A`` (s = 0) and ``B`` (s = 1): slerp of the rotations, lerp of the camera centres."""
    Ra, Rb = A[:3, :3], B[:3, :3]
    rel = Rb @ Ra.T
    angle = np.arccos(np.clip((np.trace(rel) - 1) / 2, -1.0, 1.0))
    if angle < 1e-9:
        R = Ra
    else:
        axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]]) / (2 * np.sin(angle))
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        a = s * angle
        R = (np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k) @ Ra
    ca, cb = -Ra.T @ A[:3, 3], -Rb.T @ B[:3, 3]
    centre = (1 - s) * ca + s * cb
    return make_rigid(R, -R @ centre)


def metric_scale(result: SfMResult, depth: np.ndarray) -> float:
    """Factor taking SfM units to the metres of ``depth (T, H, W)``: the per-frame median ratio of sensor depth to
    SfM depth at the sparse points, averaged over frames (PAPER.md §3.3)."""
    ratios = []
    H, W = depth.shape[1:]
    for frame, (uv, X) in result.observations.items():
        if not len(uv):
            continue
        z_sfm = (X @ result.w2c[frame][:3, :3].T + result.w2c[frame][:3, 3])[:, 2]
        c = np.clip(np.rint(uv[:, 0]), 0, W - 1).astype(int)
        r = np.clip(np.rint(uv[:, 1]), 0, H - 1).astype(int)
        z_sensor = depth[frame][r, c]
        ok = (z_sensor > 0) & (z_sfm > 0)
        if ok.sum() >= 5:
            ratios.append(np.median(z_sensor[ok]) / np.median(z_sfm[ok]))
    if not ratios:
        raise ClipError("cannot scale SfM to the sensor depth: no sparse point has a depth measurement")
    return float(np.mean(ratios))


def scale_result(result: SfMResult, s: float) -> SfMResult:
    """The same reconstruction with world units multiplied by ``s``."""
    w2c = result.w2c.copy()
    w2c[:, :3, 3] *= s
    obs = {f: (uv, X * s) for f, (uv, X) in result.observations.items()}
    return SfMResult(result.K, w2c, result.registered, obs, {**result.info, "sfm_scale": round(s, 6)})


def refine_with_depth(result: SfMResult, depth: np.ndarray, iters: int = 30, inlier_m: float = 0.02) -> SfMResult:
    """Metric RGB-D alignment of an SfM result (already scaled to metres): alternately fit every registered frame's
    pose to its sparse points lifted with the sensor depth (robust rigid fit), and move each 3D point to the mean of
    its depth-lifted observations. Depth pins down what low-parallax SfM leaves loose (depth direction, scale
    drift); SfM's correspondences tie the frames together. Poses of unregistered frames are re-interpolated."""
    from tracegen.geometry import invert_rigid, kabsch, make_rigid, unproject

    H, W = depth.shape[1:]
    frames = sorted(result.observations)
    lifted, keys = {}, {}
    for f in frames:  # each observation: its pixel lifted with the sensor depth (camera frame)
        uv, X = result.observations[f]
        c = np.clip(np.rint(uv[:, 0]), 0, W - 1).astype(int)
        r = np.clip(np.rint(uv[:, 1]), 0, H - 1).astype(int)
        z = depth[f][r, c]
        lifted[f] = unproject(uv, z, result.K[f])
        keys[f] = [tuple(np.round(x, 6)) for x in X]  # the SfM point id (same xyz = same point)
    points = {k: np.array(k) for f in frames for k in keys[f]}
    w2c = {f: result.w2c[f].copy() for f in frames}
    for _ in range(iters):
        for f in frames:
            P, valid = lifted[f], lifted[f][:, 2] > 0
            X = np.array([points[k] for k in keys[f]])
            keep = valid.copy()
            for _ in range(3):  # IRLS-style trimming of outliers (moving objects, depth edges)
                if keep.sum() < 6:
                    break
                R, t = kabsch(X[keep], P[keep])
                residual = np.linalg.norm(X @ R.T + t - P, axis=1)
                keep = valid & (residual < max(inlier_m, 2.5 * float(np.median(residual[keep]))))
            if keep.sum() >= 6:
                w2c[f] = make_rigid(R, t)
        sums: dict[tuple, list] = {}
        for f in frames:
            c2w = invert_rigid(w2c[f])
            world = lifted[f] @ c2w[:3, :3].T + c2w[:3, 3]
            for k, x, ok in zip(keys[f], world, lifted[f][:, 2] > 0, strict=True):
                if ok:
                    sums.setdefault(k, []).append(x)
        for k, xs in sums.items():
            xs = np.array(xs)
            points[k] = np.median(xs, axis=0) if len(xs) > 2 else xs.mean(0)
    observations = {
        f: (result.observations[f][0], np.array([points[k] for k in keys[f]]).reshape(-1, 3)) for f in frames
    }
    return SfMResult(
        result.K,
        interpolate_poses(w2c, len(result.K)),
        result.registered,
        observations,
        {**result.info, "depth_refined": True},
    )
