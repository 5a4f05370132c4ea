"""Synthetic inputs for the TraceForge tests: textures, an occluder sliding over a wall, depth and frame writers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

REAL_CLIP = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "handheld_apple.mp4"


def textured(h: int, w: int, seed: int, blur: float = 1.2) -> np.ndarray:
    """A random smooth texture ``(h, w)`` uint8 with strong gradients everywhere (easy to track)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), blur)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def occluder_clip(T: int = 40, H: int = 96, W: int = 128):
    """A static textured wall 2 m away, and a textured card 1 m away sliding across it left to right.

    Returns ``rgb (T, H, W, 3)``, ``depth (T, H, W)`` and the card's left edge per frame (pixels)."""
    wall, card = textured(H, W, 1), textured(H, 40, 2)
    rgb, depth, edges = [], [], []
    for t in range(T):
        x0 = int(round(-40 + (W + 40) * t / (T - 1)))
        img, d = wall.copy(), np.full((H, W), 2.0, np.float32)
        lo, hi = max(x0, 0), min(x0 + 40, W)
        if hi > lo:
            img[20:76, lo:hi] = card[20:76, lo - x0 : hi - x0]
            d[20:76, lo:hi] = 1.0
        rgb.append(np.repeat(img[..., None], 3, -1))
        depth.append(d)
        edges.append(x0)
    return np.stack(rgb), np.stack(depth), np.array(edges)


def write_depth_pngs(folder: Path, depth: np.ndarray, scale: float = 10000.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, d in enumerate(depth):
        cv2.imwrite(str(folder / f"{t:05d}.png"), np.clip(d * scale, 0, 65535).astype(np.uint16))
    return folder


def write_frames(folder: Path, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t, f in enumerate(rgb):
        cv2.imwrite(str(folder / f"frame_{t}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder


def panel_clip(T: int = 30, H: int = 72, W: int = 96, speed: float = 1.0, hold: int = 0):
    """A Clip of a textured wall 1 m away whose left half slides right by ``speed`` pixels per frame after
    ``hold`` still frames (right half static), fixed camera with known K, depth 1 m everywhere."""
    from tracegen.forge.clip import Clip
    from tracegen.geometry import intrinsics

    shift = np.round(np.maximum(np.arange(T) - hold, 0) * speed).astype(int)
    big = textured(H, W + int(shift.max()) + 1, 3)
    frames = np.empty((T, H, W), np.uint8)
    for t in range(T):
        start = int(shift.max()) - shift[t]
        frames[t, :, : W // 2] = big[:, start : start + W // 2]
        frames[t, :, W // 2 :] = big[:, int(shift.max()) + W // 2 : int(shift.max()) + W]
    K = intrinsics(100.0, 100.0, (W - 1) / 2, (H - 1) / 2)
    return Clip(
        "panel",
        np.repeat(frames[..., None], 3, -1),
        10.0,
        ["slide the panel"],
        np.ones((T, H, W), np.float32),
        True,
        np.repeat(K[None], T, 0),
        np.repeat(np.eye(4)[None], T, 0),
        camera_static=True,
        meta={"episode_id": "panel"},
    )


def card_behind_bar_clip(T: int = 50, H: int = 64, W: int = 128, ridge_m: float = 0.0):
    """A textured card 1 m away sliding right by 1 px per frame over a textured wall 2 m away, passing behind a
    plain vertical bar 0.5 m away (columns 60-65): its points are hidden for 6-7 frames and reappear moved.
    ``ridge_m``: the card is corrugated, ridges every 16 px this much deeper than its valleys (depth then shows
    how it moves). Fixed camera, focal 400 px. Returns the Clip; a card point starting at ``(u, v)`` is at
    ``(u + t, v)`` in frame t."""
    from tracegen.forge.clip import Clip
    from tracegen.geometry import intrinsics

    wall, card = textured(H, W, 4), textured(H, 60, 5)
    rgb = np.empty((T, H, W), np.uint8)
    depth = np.empty((T, H, W), np.float32)
    for t in range(T):
        rgb[t], depth[t] = wall, 2.0
        lo, hi = 10 + t, min(70 + t, W)  # the card's columns
        ridges = 1.0 + ridge_m * np.abs((np.arange(hi - lo) % 16) - 8) / 8  # (columns,) metres
        rgb[t, 8:56, lo:hi], depth[t, 8:56, lo:hi] = card[8:56, : hi - lo], ridges
        rgb[t, :, 60:66], depth[t, :, 60:66] = 128, 0.5
    K = intrinsics(400.0, 400.0, (W - 1) / 2, (H - 1) / 2)
    return Clip(
        "bar",
        np.repeat(rgb[..., None], 3, -1),
        10.0,
        ["slide the card"],
        depth,
        True,
        np.repeat(K[None], T, 0),
        np.repeat(np.eye(4)[None], T, 0),
        camera_static=True,
        meta={"episode_id": "bar"},
    )
