"""Typed model configuration and named presets. Saved as ``config.json`` beside every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from tracegen.settings import same_kind


@dataclass
class TraceGenConfig:
    """Everything that fixes the shape of a TraceGen model (training settings live in ``TrainConfig``)."""

    # --- the trace space (must match the data) ---
    grid: int = 20  # G: G x G query points
    horizon: int = 32  # L: predicted steps per point (L + 1 points with the start)
    # --- observation encoders ---
    image_size: int = 128  # the observation is resized to image_size x image_size (K is rescaled with it)
    image_encoder: Literal["conv", "hf"] = "conv"  # conv: small CNN from scratch; hf: a local transformers model
    image_channels: tuple[int, ...] = (32, 64, 128)  # conv widths: a stride-4 stem, then stride-2 stages
    image_tokens: int = 8  # the encoder's feature map is pooled to image_tokens x image_tokens tokens
    point_features: int = 32  # features read under each query point and added to its trace token (0: none)
    hf_vision_path: str | None = None  # a local folder for image_encoder="hf" (DINOv2, SigLIP, ...)
    text_encoder: str = "minilm"  # "minilm" (all-MiniLM-L6-v2, offline) or a local sentence-transformers folder
    text_dim: int = 384  # the sentence embedding's size
    # --- the trace decoder ---
    decoder: Literal["dit", "cogvideox"] = "dit"
    dim: int = 128  # transformer width
    depth: int = 4  # transformer blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    point_patch: int = 4  # a token holds point_patch x point_patch neighbouring points and all their steps
    point_head: int = 0  # > 0: hidden width of a per-point MLP that refines each point's output from its token, its
    # own features and its own noisy input (0: the token's linear head alone speaks for all its points)
    dropout: float = 0.0
    retrieval: bool = False  # condition on the nearest training triplet's increments and predict a correction to
    # them (tracegen.model.retrieval; the bank is saved beside the weights)
    retrieval_top_k: int = 3  # training: a triplet's neighbour is one of this many nearest (of other episodes)
    retrieval_scene: bool = False  # with retrieval: the decoder also sees the neighbour's observation (its image
    # tokens beside the current ones, its point features in each trace token), to tell how the two scenes differ
    # --- flow matching ---
    cond_dropout: float = 0.1  # probability of training with the null condition (enables guidance)
    depth_dropout: float = 0.1  # probability of hiding depth during training (teaches the no-depth token)
    prediction: Literal["x0", "velocity"] = "x0"  # what the decoder outputs (the loss: loss_space)
    loss_space: Literal["velocity", "x0"] = "x0"  # x0-prediction: measure the loss on velocities or on x0
    path_loss: float = 0.0  # x0-prediction: weight of an extra loss on the path (running sum of the increments)
    loss_norm: Literal["squared", "distance"] = "squared"  # x0 loss in x0 space: squared error of the increments
    # (minimiser: the conditional mean), or the Euclidean distance of the paths, what ADE measures (minimiser: the
    # geometric median: a point that moves in a minority of the plausible futures is predicted still)
    moving_weight: float = 0.0  # points whose target moves count 1 + moving_weight times in the loss (0: all alike).
    # Few of the 400 points move (the effector, what it handles) and they are what the executor follows; weighting
    # them changes the minimiser on purpose, towards the moving points' paths.
    moving_threshold: float = 0.5  # ... "moves": its path leaves its start by this many normalised steps (u or v)
    target: Literal["increments", "offsets"] = "increments"  # what the flow generates (the data are increments
    # either way): per-step increments, or each step's offset from the start (their running sum / offset_scale),
    # with which an error does not add up over the steps (measured: no better, docs/BENCHMARKS.md)
    offset_scale: float = 4.0  # offsets are divided by this (crossing a quarter of the image in 32 steps: ~1.25)
    min_t: float = 0.05  # x0-prediction: the velocity (x_t - x0_hat) / t uses t >= min_t
    sample_steps: int = 4  # default ODE steps at inference (Heun: 2 evaluations per step but the last, so 7)
    sampler: Literal["euler", "heun"] = "heun"
    guidance: float = 1.0  # classifier-free guidance scale (1 = conditional model only)
    # --- paper preset (CogVideoX-style decoder through diffusers) ---
    cog_layers: int = 6
    cog_heads: int = 12
    cog_head_dim: int = 64
    cog_time_dim: int = 512
    cog_cond_tokens: int = 704
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_points(self) -> int:
        return self.grid * self.grid

    def validate(self) -> None:
        if self.prediction not in ("x0", "velocity"):
            raise ValueError(f"prediction must be 'x0' or 'velocity', got {self.prediction!r}")
        if self.loss_space not in ("velocity", "x0"):
            raise ValueError(f"loss_space must be 'velocity' or 'x0', got {self.loss_space!r}")
        if self.loss_norm not in ("squared", "distance"):
            raise ValueError(f"loss_norm must be 'squared' or 'distance', got {self.loss_norm!r}")
        paths_of_increments = (self.prediction, self.loss_space, self.target) == ("x0", "x0", "increments")
        if self.loss_norm == "distance" and not paths_of_increments:
            raise ValueError(
                "loss_norm='distance' measures the paths of x0's increments: it needs prediction='x0', "
                "loss_space='x0' and target='increments'"
            )
        if self.moving_weight < 0 or self.moving_threshold <= 0:
            raise ValueError(
                f"moving_weight must be >= 0 and moving_threshold > 0, got {self.moving_weight}, "
                f"{self.moving_threshold}"
            )
        if self.target not in ("increments", "offsets") or self.offset_scale <= 0:
            raise ValueError(
                f"target must be 'increments' or 'offsets' and offset_scale > 0, got {self.target!r}, "
                f"{self.offset_scale}"
            )
        if self.target == "offsets" and self.path_loss:
            raise ValueError("path_loss needs target='increments': with target='offsets' the loss is on the path")
        if self.retrieval and (self.decoder != "dit" or self.prediction != "x0" or self.target != "increments"):
            raise ValueError(
                "retrieval=True needs decoder='dit', prediction='x0' and target='increments' (the "
                f"decoder corrects the retrieved increments), got {self.decoder!r}, {self.prediction!r}, "
                f"{self.target!r}"
            )
        if self.retrieval_scene and not self.retrieval:
            raise ValueError(
                "retrieval_scene=True shows the decoder the retrieved triplet's observation; it needs retrieval=True"
            )
        if self.retrieval_top_k < 1:
            raise ValueError(f"retrieval_top_k must be >= 1, got {self.retrieval_top_k}")
        if self.point_head and self.decoder != "dit":
            raise ValueError(f"point_head belongs to the 'dit' decoder; set point_head=0 for decoder={self.decoder!r}")
        if self.grid % self.point_patch:
            raise ValueError(f"grid {self.grid} must be divisible by point_patch {self.point_patch}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        stride = 4 * 2 ** (len(self.image_channels) - 1)
        if self.image_size % stride:
            raise ValueError(f"image_size {self.image_size} must be divisible by the encoder's stride {stride}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_channels"] = list(self.image_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TraceGenConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s) {unknown}: checkpoint from another tracegen version?")
        d = dict(d)
        if "image_channels" in d:
            d["image_channels"] = tuple(d["image_channels"])
        cfg = cls(**d)
        cfg.validate()
        return cfg


PRESETS: dict[str, dict[str, Any]] = {
    # tests: builds and trains in a fraction of a second
    "tiny": dict(
        dim=32,
        depth=1,
        heads=2,
        point_patch=2,
        image_size=32,
        image_channels=(8, 16),
        image_tokens=2,
        sample_steps=2,
        point_features=8,
    ),
    # the CPU default: fast enough to pretrain on a laptop and plan in well under 100 ms
    "default": dict(),
    # a wider model for longer CPU runs or a GPU
    "large": dict(dim=256, depth=8, heads=8, image_size=192, image_channels=(32, 64, 128, 256), image_tokens=8),
    # the official architecture's shape: CogVideoX 3D transformer, 6 x 768, 704 condition tokens
    "paper": dict(
        decoder="cogvideox",
        dim=768,
        image_size=384,
        image_channels=(64, 128, 256, 512),
        image_tokens=24,
        sample_steps=100,
        sampler="euler",
        prediction="velocity",  # as the official code
        point_features=0,  # the official decoder sees the observation only through its condition tokens
    ),
}


def preset(name: str, **overrides: Any) -> TraceGenConfig:
    """A named preset with ``key=value`` overrides, validated."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    base = TraceGenConfig.from_dict(PRESETS[name])
    for key, value in overrides.items():
        if hasattr(base, key):  # (an unknown key is named by from_dict)
            same_kind(key, getattr(base, key), value)  # ValueError naming it: "setting dim takes an int, not 'abc'"
    cfg = TraceGenConfig.from_dict({**PRESETS[name], **overrides})
    return cfg
