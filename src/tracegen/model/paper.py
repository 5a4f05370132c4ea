"""The official architecture's decoder shape: a CogVideoX 3D transformer (diffusers), trained from scratch.

The trace ``(B, N = G*G, L, 3)`` is laid out as a tiny video, as in the official code: ``(B, L, 3, G, G)`` with
pairs of steps stacked into channels -> ``(B, L/2, 6, G, G)``; 2x2 spatial patches then give ``L/2 * (G/2)^2`` trace
tokens (1600 for the paper's 20x20x32), attending jointly with ``cog_cond_tokens`` condition tokens (704: the
observation tokens, the instruction token and learned padding). The time enters as ``100 * t`` (the official code's
integer steps 0..99). Needs the ``diffusers`` package; sized for GPUs (``paper`` preset: 6 layers x 768).
"""

from __future__ import annotations

import torch
from torch import nn

from tracegen.model.config import TraceGenConfig


class CogVideoXDecoder(nn.Module):
    def __init__(self, cfg: TraceGenConfig):
        super().__init__()
        try:
            from diffusers import CogVideoXTransformer3DModel
        except ImportError as e:
            raise ImportError("the 'cogvideox' decoder needs diffusers: pip install 'tracegen[paper]'") from e
        if cfg.horizon % 2 or cfg.grid % 2:
            raise ValueError("the CogVideoX decoder packs step pairs and 2x2 patches: horizon and grid must be even")
        self.cfg = cfg
        inner = cfg.cog_heads * cfg.cog_head_dim
        self.net = CogVideoXTransformer3DModel(
            num_attention_heads=cfg.cog_heads,
            attention_head_dim=cfg.cog_head_dim,
            in_channels=6,
            out_channels=6,
            num_layers=cfg.cog_layers,
            sample_width=cfg.grid,
            sample_height=cfg.grid,
            sample_frames=cfg.horizon // 2,
            temporal_compression_ratio=1,
            patch_size=2,
            text_embed_dim=cfg.dim,
            time_embed_dim=cfg.cog_time_dim,
            max_text_seq_length=cfg.cog_cond_tokens,
            use_rotary_positional_embeddings=False,
        )
        self.pad = nn.Parameter(torch.zeros(1, cfg.cog_cond_tokens, cfg.dim))  # learned padding of the condition
        self.inner = inner

    def to_video(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, L, 3)`` -> ``(B, L/2, 6, G, G)``; channel order c * 2 + (step within the pair), as the official."""
        B, G, L = len(x), self.cfg.grid, self.cfg.horizon
        v = x.view(B, G, G, L // 2, 2, 3).permute(0, 3, 5, 4, 1, 2)  # (B, L/2, 3, 2, G, G)
        return v.reshape(B, L // 2, 6, G, G)

    def from_video(self, v: torch.Tensor) -> torch.Tensor:
        B, G, L = len(v), self.cfg.grid, self.cfg.horizon
        x = v.view(B, L // 2, 3, 2, G, G).permute(0, 4, 5, 1, 3, 2)  # (B, G, G, L/2, 2, 3)
        return x.reshape(B, G * G, L, 3)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor, points=None):
        if points is not None:
            raise ValueError("the cogvideox decoder takes no point features: set point_features=0")
        M = self.cfg.cog_cond_tokens
        if context.shape[1] > M:
            raise ValueError(f"{context.shape[1]} condition tokens exceed cog_cond_tokens={M}")
        cond = torch.cat([context, self.pad[:, context.shape[1] :].expand(len(x), -1, -1)], 1)
        out = self.net(hidden_states=self.to_video(x), encoder_hidden_states=cond, timestep=100 * t, return_dict=False)[
            0
        ]
        return self.from_video(out)
