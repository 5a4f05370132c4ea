"""Traces drawn on their observation: one coloured tail per grid point, a dot where it ends."""

from __future__ import annotations

import cv2
import numpy as np


def point_colors(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours, a rainbow over the grid (row-major), as trackers usually draw them."""
    hue = np.linspace(0, 170, n, endpoint=False).astype(np.uint8)  # OpenCV hue range 0..179
    hsv = np.stack([hue, np.full(n, 230, np.uint8), np.full(n, 255, np.uint8)], -1)[None]
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]


def draw_traces(
    rgb: np.ndarray,
    traj: np.ndarray,
    num_steps: int | None = None,
    min_size: int = 448,
    min_motion_px: float = 0.0,
    thickness: int = 1,
    colors: np.ndarray | None = None,
    visible: np.ndarray | None = None,
) -> np.ndarray:
    """Overlay ``traj (N, S, >=2)`` (pixels of ``rgb``) on ``rgb (H, W, 3)``; returns an upscaled RGB image.

    Only the first ``num_steps`` steps are drawn (all by default); points that move less than ``min_motion_px``
    get just their dot, so a mostly static scene stays readable. ``colors (N, 3)`` uint8 overrides the rainbow
    (to keep each point's colour when drawing a subset); points with ``visible (N,)`` False end in a hollow ring
    (occluded), as CoTracker draws them.
    """
    H, W = rgb.shape[:2]
    scale = max(1, int(np.ceil(min_size / max(H, W))))
    canvas = cv2.resize(rgb, (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
    canvas = (0.6 * canvas).astype(np.uint8)  # dim the image so the traces stand out
    steps = traj[:, : num_steps or traj.shape[1], :2]
    pts = np.round((steps + 0.5) * scale - 0.5).astype(np.int32)  # pixel centres survive the upscale
    colors = point_colors(len(traj)) if colors is None else colors
    moving = np.linalg.norm(steps - steps[:, :1], axis=-1).max(1) >= min_motion_px
    radius = max(2, round(max(canvas.shape[:2]) / 150))  # 3 px at 448: dots mark points without hiding the scene
    for i in range(len(traj)):
        color = tuple(int(c) for c in colors[i])
        if moving[i] and len(pts[i]) > 1:
            cv2.polylines(canvas, [pts[i]], False, color, thickness, cv2.LINE_AA)
        fill = -1 if visible is None or visible[i] else 1
        cv2.circle(canvas, tuple(int(c) for c in pts[i, -1]), radius, color, fill, cv2.LINE_AA)
    return canvas


def side_by_side(*images: np.ndarray, gap: int = 8) -> np.ndarray:
    """Images of equal height next to each other with a white gap."""
    H = max(im.shape[0] for im in images)
    pad = [np.pad(im, ((0, H - im.shape[0]), (0, 0), (0, 0)), constant_values=255) for im in images]
    spacer = np.full((H, gap, 3), 255, np.uint8)
    out = [pad[0]]
    for im in pad[1:]:
        out += [spacer, im]
    return np.concatenate(out, 1)
