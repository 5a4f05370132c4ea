"""Pictures of one :class:`~tracegen.viz.source.TraceView`: overlay frames (PNG / MP4 with growing tails), a
matplotlib 3D plot in the camera frame, and a Rerun ``.rrd`` recording. Every file is written atomically."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from tracegen.io.files import atomic_path
from tracegen.viz.overlay import draw_traces
from tracegen.viz.source import TraceView

CAPTION_PX = 28
MAX_CLOUD_POINTS = 6000


def with_caption(image: np.ndarray, left: str, right: str = "") -> np.ndarray:
    """``image`` with a dark band below it: ``left`` (shortened to fit) and ``right`` in white."""
    H, W = image.shape[:2]
    band = np.full((CAPTION_PX, W, 3), 24, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45

    def width(text: str) -> int:
        return cv2.getTextSize(text, font, scale, 1)[0][0] if text else 0

    right = right.encode("ascii", "replace").decode()
    if width(right) > W - 16:
        right = ""  # a very small picture: no room for the step counter
    room = W - width(right) - 24
    left = left.encode("ascii", "replace").decode()
    if width(left) > room:
        while len(left) > 1 and width(left + "~") > room:
            left = left[:-1]
        left = left + "~" if width(left + "~") <= room else ""
    base = CAPTION_PX // 2 + 5
    cv2.putText(band, left, (8, base), font, scale, (235, 235, 235), 1, cv2.LINE_AA)
    if right:
        cv2.putText(band, right, (W - width(right) - 8, base), font, scale, (200, 200, 200), 1, cv2.LINE_AA)
    return np.concatenate([image, band], 0)


def overlay_frame(view: TraceView, k: int, min_size: int = 448) -> np.ndarray:
    """The image of step ``k`` with every point's tail over steps ``0..k`` (CoTracker-style), captioned."""
    keep = view.has_surface
    tails = np.clip(view.tails(k)[keep], -1e4, 1e4)  # far off-image points must not overflow int32 pixels
    visible = None if view.visible is None else view.visible[keep, k]
    image = draw_traces(
        view.image(k),
        tails,
        min_size=min_size,
        min_motion_px=1.0,
        thickness=2,
        colors=view.colors[keep],
        visible=visible,
    )
    return with_caption(image, view.title, f"step {k}/{view.num_steps - 1}")


def _even(image: np.ndarray) -> np.ndarray:
    """Pad one edge row / column so H.264 (yuv420p) accepts the size."""
    H, W = image.shape[:2]
    return np.pad(image, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")


def write_overlay_png(view: TraceView, out: Path, min_size: int = 448) -> Path:
    """The final step: the whole trace on the observation (or the episode's last frame)."""
    from tracegen.io.official import write_png

    write_png(out, overlay_frame(view, view.num_steps - 1, min_size))
    return out


def write_overlay_mp4(view: TraceView, out: Path, fps: float = 10.0, hold_s: float = 1.0, min_size: int = 448) -> int:
    """One frame per step with the tails growing, then the last frame held for ``hold_s`` seconds (H.264).

    Returns the number of frames written: ``num_steps + round(hold_s * fps)``.
    """
    from tracegen.io.video import write_video

    frames = [_even(overlay_frame(view, k, min_size)) for k in range(view.num_steps)]
    frames += [frames[-1]] * int(round(hold_s * fps))
    write_video(out, np.stack(frames), fps)
    return len(frames)


# --- 3D


def _cloud(view: TraceView) -> tuple[np.ndarray, np.ndarray] | None:
    """The observation's depth as camera-frame points ``(M, 3)`` with their colours ``(M, 3)`` in [0, 1]."""
    from tracegen.geometry import unproject

    if view.depth is None or view.K is None:
        return None
    H, W = view.depth.shape
    stride = max(1, int(np.ceil(np.sqrt(H * W / MAX_CLOUD_POINTS))))
    v, u = np.mgrid[0:H:stride, 0:W:stride]
    z = view.depth[v, u]
    keep = z > 0
    if not keep.any():
        return None
    uv = np.stack([u[keep], v[keep]], -1).astype(np.float64)
    return unproject(uv, z[keep].astype(np.float64), view.K), view.rgb[v[keep], u[keep]] / 255.0


def check_writable_3d(view: TraceView, plot3d: Path | None, rrd: Path | None) -> None:
    """Before anything is written: the packages the 3D outputs need are here, and the trace has points to draw
    (a :class:`DataError` naming the output otherwise)."""
    from tracegen.errors import DataError

    for out, module in ((plot3d, "matplotlib"), (rrd, "rerun")):
        if out is not None and importlib.util.find_spec(module) is None:
            raise DataError(out, f"needs {module}, which is not installed: pip install -e '.[viz]'")
    if plot3d is not None:
        xyz = view.camera_points()  # (N, S, 3)
        if not (np.isfinite(xyz).all(axis=(1, 2)) & (xyz[..., 2] > 0).all(axis=1)).any():
            raise DataError(view.source, "no point of the trace has a finite, positive depth; nothing to plot in 3D")


def plot_3d(view: TraceView, out: Path, elev: float = 18.0, azim: float = -62.0) -> Path:
    """The lifted trace in the observation's camera frame (metres, OpenCV axes: x right, y down, z forward).

    Drawn with matplotlib's vertical axis = camera y pointing down and depth z going into the picture, so the plot
    looks like the image seen from slightly above and to the side; the observation's depth is the faint point cloud
    behind the tracks.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    xyz = view.camera_points()  # (N, S, 3)
    keep = np.isfinite(xyz).all(axis=(1, 2)) & (xyz[..., 2] > 0).all(axis=1)
    if not keep.any():
        from tracegen.errors import DataError

        raise DataError(view.source, "no point of the trace has a finite, positive depth; nothing to plot in 3D")
    xyz, colors = xyz[keep], view.colors[keep] / 255.0
    motion = np.linalg.norm(xyz - xyz[:, :1], axis=-1).max(1)
    moving = motion > max(1e-3, 0.05 * motion.max())

    fig = plt.figure(figsize=(7.2, 6.0), dpi=120)
    ax = fig.add_subplot(projection="3d")

    def put(p, **kw):  # camera (x, y, z) -> matplotlib (x, z, y): depth into the picture, y as height
        return ax.plot(p[..., 0], p[..., 2], p[..., 1], **kw)

    # limits: the tracked points (robust percentiles); the cloud is cut to them (3D axes do not clip)
    lo, hi = np.percentile(xyz.reshape(-1, 3), 1, 0), np.percentile(xyz.reshape(-1, 3), 99, 0)
    pad = 0.05 * np.maximum(hi - lo, 1e-3)
    lo, hi = lo - pad, hi + pad
    cloud = _cloud(view)
    if cloud is not None:
        inside = ((cloud[0] >= lo) & (cloud[0] <= hi)).all(1)
        P, C = cloud[0][inside], cloud[1][inside]
        ax.scatter(P[:, 0], P[:, 2], P[:, 1], c=C, s=1.5, alpha=0.3, linewidths=0, depthshade=False)
    for i in np.flatnonzero(moving):
        put(xyz[i], color=colors[i], lw=1.2, alpha=0.95)
    end = xyz[:, -1]
    inside = ((end >= lo) & (end <= hi)).all(1) | moving
    ax.scatter(
        end[inside, 0],
        end[inside, 2],
        end[inside, 1],
        c=colors[inside],
        s=np.where(moving[inside], 14, 3),
        depthshade=False,
    )
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[2], hi[2])
    ax.set_zlim(hi[1], lo[1])  # camera y points down: larger y lower in the plot
    ax.set_box_aspect(np.maximum(hi - lo, 1e-3)[[0, 2, 1]])
    ax.set_xlabel("x [m] (right)")
    ax.set_ylabel("z [m] (forward, depth)")
    ax.set_zlabel("y [m] (down)")
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(
        f"{view.title}\n{int(moving.sum())} moving of {len(xyz)} points, camera frame (OpenCV axes)", fontsize=9
    )
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", pad_inches=0.15)
    plt.close(fig)
    return out


# --- Rerun


def write_rrd(view: TraceView, out: Path) -> Path:
    """A Rerun recording: the camera (pinhole, OpenCV axes), the observation and its point cloud, and the 3D
    tracks growing over the ``step`` timeline. Open it with ``rerun FILE.rrd``. Needs ``rerun-sdk`` (viz extra)."""
    try:
        import rerun as rr
    except ImportError:
        from tracegen.errors import DataError

        problem = "cannot write a Rerun recording: rerun-sdk is not installed (pip install -e '.[viz]')"
        raise DataError(out, problem) from None

    xyz = view.camera_points()
    keep = np.isfinite(xyz).all(axis=(1, 2))
    xyz, colors = xyz[keep], view.colors[keep]
    H, W = view.rgb.shape[:2]
    with atomic_path(out) as tmp:
        rec = rr.RecordingStream("tracegen_viz")
        rec.save(str(tmp))
        rec.log("camera", rr.ViewCoordinates.RDF, static=True)  # the trace lives in the observation's camera
        rec.log("camera/image", rr.Pinhole(image_from_camera=view.K, resolution=[W, H]), static=True)
        rec.log("camera/image/rgb", rr.Image(view.rgb), static=True)
        cloud = _cloud(view)
        if cloud is not None:
            rec.log("camera/cloud", rr.Points3D(cloud[0], colors=cloud[1], radii=0.002), static=True)
        rec.log("camera/image/query", rr.Points2D(view.traj[keep, 0, :2], colors=colors, radii=1.0), static=True)
        for k in range(view.num_steps):
            rec.set_time("step", sequence=k)
            rec.log("camera/tracks", rr.LineStrips3D(list(xyz[:, : k + 1]), colors=colors, radii=0.001))
            rec.log("camera/points", rr.Points3D(xyz[:, k], colors=colors, radii=0.004))
        rec.flush(blocking=True)
        rec.disconnect()
    return out
