"""Training augmentations that keep the observation and its trace consistent.

Colour changes leave the trace alone. A geometric change must move the trace with the image: :func:`shift_by_cells`
translates the observation by whole cells of the query grid, so every query point of the shifted image lands on a
scene point that had its own query point, and its target is that point's increments (the increments do not change
under a translation). Points whose scene came in from outside the image have no trace and leave the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def color_jitter(rgb: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation changes of ``rgb (B, 3, S, S)`` in [0, 1]."""
    B = len(rgb)
    a = 1 + amount * (2 * torch.rand(B, 3, 1, 1, 1, generator=g) - 1)
    gray = rgb.mean(1, keepdim=True)
    rgb = gray + (rgb - gray) * a[:, 2]  # saturation
    rgb = rgb.mean((1, 2, 3), keepdim=True) + (rgb - rgb.mean((1, 2, 3), keepdim=True)) * a[:, 1]  # contrast
    return (rgb * a[:, 0]).clamp(0, 1)  # brightness


def shift_by_cells(batch: dict, max_cells: int, grid: int, g: torch.Generator) -> dict:
    """Translate each observation by ``(kx, ky)`` query-grid cells, drawn uniformly from ``[-max_cells, max_cells]``.

    ``batch`` holds ``rgb (B, 3, S, S)``, ``depth (B, 1, S, S)`` metres, ``x0``/``mask (B, N, L, 3)`` with
    ``N = grid * grid`` row-major (rows = v), and ``image_hw (B, 2)``: the original image size, which fixes the
    cell's width (the grid spans ``linspace(0, W - 1, grid)`` of the original image). The image content moves by
    ``+k`` cells (RGB edge-replicated, depth zero = unknown where it came from outside); query point ``(i, j)``
    then sees what point ``(i - ky, j - kx)`` saw and takes over its increments and mask.
    """
    k = torch.randint(-max_cells, max_cells + 1, (len(batch["rgb"]), 2), generator=g)  # (B, 2) cells: (kx, ky)
    return translate_by_cells(batch, k, grid)


def translate_by_cells(batch: dict, k: torch.Tensor, grid: int) -> dict:
    """:func:`shift_by_cells` with given shifts ``k (B, 2)`` int: ``(kx, ky)`` cells, positive = right / down."""
    B = len(k)
    wh = batch["image_hw"].flip(-1).to(torch.float32)  # (B, 2) original (W, H) px
    # one cell in grid_sample's normalised coordinates (align_corners=False: [-1, 1] spans W pixels)
    cell = 2 * (wh - 1) / ((grid - 1) * wh)  # (B, 2): (x, y)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -k * cell  # output pixel p samples the input at p - shift
    rgb, depth = batch["rgb"], batch["depth"]
    sampling = F.affine_grid(theta, list(rgb.shape), align_corners=False)
    rgb = F.grid_sample(rgb, sampling, mode="bilinear", padding_mode="border", align_corners=False)
    depth = F.grid_sample(depth, sampling, mode="nearest", padding_mode="zeros", align_corners=False)
    x0, mask = batch["x0"].clone(), batch["mask"].clone()
    for b, (kx, ky) in enumerate(k.tolist()):
        x0[b], mask[b] = shift_grid(x0[b], kx, ky, grid), shift_grid(mask[b], kx, ky, grid)
    return {**batch, "rgb": rgb, "depth": depth, "x0": x0, "mask": mask}


def shift_grid(values: torch.Tensor, kx: int, ky: int, grid: int) -> torch.Tensor:
    """Per-point ``values (N, ...)`` moved ``kx`` columns and ``ky`` rows along the grid; vacated points are zero."""
    g = values.reshape(grid, grid, *values.shape[1:])
    out = torch.zeros_like(g)
    rows_src, rows_dst = _span(ky, grid)
    cols_src, cols_dst = _span(kx, grid)
    out[rows_dst, cols_dst] = g[rows_src, cols_src]
    return out.reshape(values.shape)


def _span(k: int, n: int) -> tuple[slice, slice]:
    """Source and destination slices of a length-``n`` axis moved by ``k``."""
    return (slice(0, n - k), slice(k, n)) if k >= 0 else (slice(-k, n), slice(0, n + k))
