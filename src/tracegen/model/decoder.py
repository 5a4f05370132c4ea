"""The trace decoder: a small diffusion transformer (DiT) over trace tokens, built for CPU speed.

Tokenisation (the choice that sets the cost): the ``G x G`` grid of points is cut into ``p x p`` patches of
neighbouring points and **all L steps of a patch form one token** — ``(G/p)^2`` tokens of ``p*p*L*3`` numbers
(the default p = 4 gives 25 tokens of 1536 numbers for G = 20, L = 32; p = 2 gives 100 tokens of 384). The official
decoder makes 1600 tokens of the same tensor (2x2 patches x 16 frame pairs). On 2 CPU cores the default trains at
~110 samples/s and plans in ~65 ms (Heun x 4), p = 2 at ~57 samples/s (docs/BENCHMARKS.md); a token's linear head still
gives each of its 16 points its own 32 steps.

Each block: self-attention over trace tokens, cross-attention to the condition tokens (observation + instruction),
and an MLP, each modulated AdaLN-Zero style by the flow time and the pooled condition. With point features, each
token's input also gets what the observation shows under its ``p x p`` points (a linear map of their features).
With retrieval, each token's input also gets the retrieved trace's increments of its points, and the output is a
correction added to them (zero at initialisation: an untrained model replays its neighbour); with the retrieved
scene, each token's input also gets what the neighbour's observation showed under its points.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tracegen.model.config import TraceGenConfig


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(B, dim)`` of flow times ``t (B,)`` in [0, 1] (scaled by 1000 like diffusion steps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], -1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, cross: bool = False):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.cross = cross

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        B, T, D = x.shape
        src = context if self.cross else x
        q = self.q(x).view(B, T, self.heads, -1).transpose(1, 2)  # (B, h, T, D/h)
        k, v = self.kv(src).view(B, src.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (B, h, M, D/h) each
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """Self-attention, cross-attention, MLP; each pre-normed, modulated and gated by the conditioning vector."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6) for _ in range(3)])
        self.self_attn = Attention(dim, heads)
        self.cross_attn = Attention(dim, heads, cross=True)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.ada = nn.Linear(dim, 9 * dim)  # shift, scale, gate for each of the three sub-layers
        nn.init.zeros_(self.ada.weight)  # AdaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mods = self.ada(F.silu(cond)).chunk(9, -1)
        for i, layer in enumerate((self.self_attn, self.cross_attn, self.mlp)):
            shift, scale, gate = mods[3 * i : 3 * i + 3]
            h = modulate(self.norms[i](x), shift, scale)
            h = layer(h, context) if layer is self.cross_attn else layer(h)
            x = x + gate[:, None] * h
        return x


class TraceDiT(nn.Module):
    """Velocity field ``v(x_t, t | condition)`` over normalised trace increments ``x (B, N, L, 3)``."""

    def __init__(self, cfg: TraceGenConfig):
        super().__init__()
        self.cfg = cfg
        p, G, L = cfg.point_patch, cfg.grid, cfg.horizon
        self.side = G // p  # tokens per grid side
        token_size = p * p * L * 3
        self.embed = nn.Linear(token_size, cfg.dim)
        self.pos = nn.Parameter(torch.randn(1, self.side * self.side, cfg.dim) * 0.02)
        self.point_embed = nn.Linear(p * p * cfg.point_features, cfg.dim) if cfg.point_features else None
        self.retrieved_embed = nn.Linear(token_size, cfg.dim) if cfg.retrieval else None
        scene_points = cfg.retrieval_scene and cfg.point_features
        self.scene_point_embed = nn.Linear(p * p * cfg.point_features, cfg.dim) if scene_points else None
        self.time = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList([Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.depth)])
        self.final_norm = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.head = nn.Linear(cfg.dim, token_size)
        self.point_head = PointHead(cfg) if cfg.point_head else None
        for layer in (self.final_ada, self.head):  # the initial prediction is exactly zero
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, G*G, L, 3)`` -> ``(B, (G/p)^2, p*p*L*3)``: neighbouring points and all their steps in one token."""
        B, p, s = len(x), self.cfg.point_patch, self.side
        x = x.view(B, s, p, s, p, -1)  # (B, row tile, row in tile, col tile, col in tile, L*3)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(B, s * s, -1)

    def untokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        B, p, s = len(tokens), self.cfg.point_patch, self.side
        x = tokens.view(B, s, s, p, p, self.cfg.horizon, 3).permute(0, 1, 3, 2, 4, 5, 6)
        return x.reshape(B, s * p * s * p, self.cfg.horizon, 3)

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor,
        pooled: torch.Tensor,
        points: torch.Tensor | None = None,
        retrieved: torch.Tensor | None = None,
        retrieved_points: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x ``(B, N, L, 3)``, t ``(B,)``, context ``(B, M, dim)`` condition tokens, pooled ``(B, dim)``,
        points ``(B, N, point_features)`` (needed when the config has point features), retrieved ``(B, N, L, 3)``
        (needed with retrieval), retrieved_points ``(B, N, point_features)`` (with retrieval_scene and point
        features)."""
        h = self.embed(self.tokenize(x)) + self.pos
        if self.point_embed is not None:
            h = h + self.point_embed(self.tokenize(points))
        if self.retrieved_embed is not None:
            h = h + self.retrieved_embed(self.tokenize(retrieved))
        if self.scene_point_embed is not None:
            h = h + self.scene_point_embed(self.tokenize(retrieved_points))
        cond = self.time(timestep_embedding(t, self.cfg.dim)) + pooled
        for block in self.blocks:
            h = block(h, context, cond)
        shift, scale = self.final_ada(F.silu(cond)).chunk(2, -1)
        h = modulate(self.final_norm(h), shift, scale)  # (B, T, dim)
        out = self.head(h)  # (B, T, p*p*L*3)
        if self.point_head is not None:
            out = out + self.point_head(h, self.tokenize(x), None if points is None else self.tokenize(points))
        if self.retrieved_embed is not None:
            out = out + self.tokenize(retrieved)  # the decoder predicts a correction to the retrieved increments
        return self.untokenize(out)


class PointHead(nn.Module):
    """A small MLP run on every point of a token: its token's output state, its own features and its own noisy input
    ``-> (L*3)``. The token's linear head gives its p x p points their outputs from one shared state; this lets a point
    on the gripper and its neighbour on the table part ways. Zero-initialised: it starts by adding nothing."""

    def __init__(self, cfg: TraceGenConfig):
        super().__init__()
        self.pp, steps = cfg.point_patch**2, cfg.horizon * 3
        self.net = nn.Sequential(
            nn.Linear(cfg.dim + cfg.point_features + steps, cfg.point_head),
            nn.GELU(approximate="tanh"),
            nn.Linear(cfg.point_head, steps),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, h: torch.Tensor, x_tokens: torch.Tensor, point_tokens: torch.Tensor | None) -> torch.Tensor:
        """h ``(B, T, dim)``, x_tokens ``(B, T, p*p*L*3)``, point_tokens ``(B, T, p*p*F)`` or None -> ``(B, T,
        p*p*L*3)``."""
        B, T, _ = h.shape
        parts = [h[:, :, None].expand(B, T, self.pp, h.shape[-1]), x_tokens.view(B, T, self.pp, -1)]
        if point_tokens is not None:
            parts.insert(1, point_tokens.view(B, T, self.pp, -1))
        return self.net(torch.cat(parts, -1)).reshape(B, T, -1)
