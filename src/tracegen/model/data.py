"""Trace samples -> model tensors: the resized observation, the normalised target and its mask.

Images are resized to ``S x S`` (aspect not preserved, as the official loader does); the target does not change
with the resize because increments are normalised by the image size (``u / W``, ``v / H``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tracegen.io.trace_dataset import TraceSample
from tracegen.model.config import TraceGenConfig
from tracegen.model.encoders import clean_instruction
from tracegen.traces import encode_deltas


@dataclass
class Example:
    """One training/evaluation example. S = image size, N points, L steps."""

    rgb: np.ndarray  # (3, S, S) uint8
    depth: np.ndarray  # (1, S, S) float32 metres, zeros when absent
    has_depth: bool  # the observation has depth (the no-depth token is used otherwise)
    x0: np.ndarray  # (N, L, 3) float32 normalised increments in [-1, 1]
    mask: np.ndarray  # (N, L, 3) bool
    instructions: list[str]
    traj: np.ndarray  # (N, L + 1, 3) float32 ground-truth trace (u, v px; z m) in the original image
    image_hw: tuple[int, int]
    episode_id: str
    K: np.ndarray | None = None  # (3, 3) intrinsics of the original image (for 3D metrics)
    z_valid: bool = True  # the trace's z is metric depth (False for 2D-only traces)
    rollout: str = ""  # the rollout it comes from, whichever camera filmed it (rollout_id): splits and exclusions

    def __post_init__(self) -> None:
        self.rollout = self.rollout or self.episode_id


def source_ids(examples: list[Example], ids: str) -> list[str]:
    """Each example's rollout (``ids="rollout"``) or per-camera episode (``"episode"``: splits and banks made before
    rollouts), as a split or a bank of that kind names it."""
    return [e.rollout if ids == "rollout" else e.episode_id for e in examples]


def rollout_id(meta: dict) -> str:
    """The rollout a sample comes from, whichever camera filmed it: ``meta["rollout_id"]`` when given, else its
    episode id less its camera (the recorder films one rollout with several cameras and names each film
    ``..._{camera}_s{seed}``). Train/validation splits and retrieval's own-episode exclusion go by it, so that a
    held-out rollout is not trained on, nor retrieved, through another camera's film of it."""
    if meta.get("rollout_id"):
        return str(meta["rollout_id"])
    episode, camera = str(meta.get("episode_id", "")), meta.get("camera")
    return episode.replace(f"_{camera}_", "_", 1) if camera else episode


def resize_observation(rgb: np.ndarray, depth: np.ndarray | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB ``(H, W, 3)`` uint8 -> ``(3, S, S)`` uint8 (area); depth ``(H, W)`` -> ``(1, S, S)`` (nearest: keeps 0)."""
    rgb_s = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    if depth is None:
        return np.ascontiguousarray(rgb_s), np.zeros((1, size, size), np.float32)
    depth_s = cv2.resize(depth.astype(np.float32), (size, size), interpolation=cv2.INTER_NEAREST)[None]
    return np.ascontiguousarray(rgb_s), depth_s


def make_example(sample: TraceSample, cfg: TraceGenConfig) -> Example:
    H, W = sample.image_size
    rgb, depth = resize_observation(sample.rgb, sample.depth, cfg.image_size)
    x0, mask = encode_deltas(sample.traj, sample.valid_steps, H, W, cfg.horizon, sample.has_depth)
    steps = cfg.horizon + 1
    traj = sample.traj[:, :steps]
    if traj.shape[1] < steps:
        traj = np.concatenate([traj, np.repeat(traj[:, -1:], steps - traj.shape[1], 1)], 1)
    instructions = [clean_instruction(t) for t in sample.instructions] or [clean_instruction("")]
    return Example(
        rgb,
        depth,
        sample.depth is not None,
        x0,
        mask,
        instructions,
        traj.astype(np.float32),
        (H, W),
        str(sample.meta.get("episode_id", "")),
        sample.K,
        sample.has_depth,
        rollout_id(sample.meta),
    )


def collate(examples: list[Example], texts: list[str]) -> dict[str, torch.Tensor | list[str]]:
    """Stack examples into a batch; ``texts`` is the instruction chosen for each example."""
    return {
        "rgb": torch.from_numpy(np.stack([e.rgb for e in examples])).float() / 255.0,  # (B, 3, S, S) in [0, 1]
        "depth": torch.from_numpy(np.stack([e.depth for e in examples])),  # (B, 1, S, S) metres
        "has_depth": torch.tensor([e.has_depth for e in examples]),  # (B,)
        "x0": torch.from_numpy(np.stack([e.x0 for e in examples])),  # (B, N, L, 3)
        "mask": torch.from_numpy(np.stack([e.mask for e in examples])),  # (B, N, L, 3)
        "image_hw": torch.tensor([e.image_hw for e in examples]),  # (B, 2) the original image's (H, W) px
        "texts": texts,
    }
