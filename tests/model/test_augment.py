"""Augmentations keep the observation and its trace consistent."""

import numpy as np
import pytest
import torch

from tracegen.model.augment import color_jitter, shift_by_cells, translate_by_cells
from tracegen.model.data import resize_observation
from tracegen.traces import grid_points

G, H, W, S, L = 5, 60, 80, 40, 3


def ramp_batch() -> dict:
    """One observation whose red and green channels are the original pixel's u / W and v / H, resized to S x S;
    each point's increments carry its own index, so a moved target can be traced to its source."""
    v, u = np.mgrid[0:H, 0:W]
    image = np.stack([u / W * 255, v / H * 255, np.zeros_like(u)], -1).astype(np.uint8)
    depth = 1.0 + u.astype(np.float32) / W
    rgb, depth = resize_observation(image, depth, S)
    x0 = torch.arange(G * G, dtype=torch.float32)[:, None, None].expand(G * G, L, 3).clone()
    return {
        "rgb": torch.from_numpy(rgb)[None].float() / 255,
        "depth": torch.from_numpy(depth)[None],
        "x0": x0[None],
        "mask": torch.ones(1, G * G, L, 3, dtype=torch.bool),
        "image_hw": torch.tensor([[H, W]]),
    }


def at_grid(image: torch.Tensor) -> np.ndarray:
    """``image (C, S, S)`` read at the query grid (the original image's grid, scaled to S) -> ``(N, C)``."""
    uv = grid_points(H, W, G) * [S / W, S / H] + ([S / W, S / H] - np.ones(2)) / 2  # pixel centres after resizing
    cols, rows = np.clip(np.rint(uv), 0, S - 1).astype(int).T
    return image[:, rows, cols].T.numpy()


@pytest.mark.parametrize("kx, ky", [(1, 0), (0, -1), (2, 1), (-1, -2)])
def test_a_shifted_query_point_sees_and_moves_like_the_point_it_took_over(kx, ky):
    batch = ramp_batch()
    out = translate_by_cells(batch, torch.tensor([[kx, ky]]), G)
    index = np.arange(G * G).reshape(G, G)
    rows, cols = np.divmod(index.ravel(), G)
    src_rows, src_cols = rows - ky, cols - kx
    inside = (src_rows >= 0) & (src_rows < G) & (src_cols >= 0) & (src_cols < G)
    source = index[src_rows[inside], src_cols[inside]]
    # the image: the ramp under each moved query point is the one its source point saw (within a resized pixel)
    before, after = at_grid(batch["rgb"][0]), at_grid(out["rgb"][0])
    np.testing.assert_allclose(after[inside, :2], before[source, :2], atol=2.5 / S)
    np.testing.assert_allclose(at_grid(out["depth"][0])[inside], at_grid(batch["depth"][0])[source], atol=2.5 / S)
    # the trace: its increments and mask, and none for the points whose scene came from outside
    np.testing.assert_array_equal(out["x0"][0, inside, 0, 0].numpy(), source)
    assert out["mask"][0, inside].all() and not out["mask"][0, ~inside].any()
    assert (out["x0"][0, ~inside] == 0).all()
    assert (at_grid(out["depth"][0])[~inside] == 0).all()  # depth from outside is unknown, not invented


def test_zero_shift_is_the_identity_and_draws_stay_in_range():
    batch = ramp_batch()
    same = translate_by_cells(batch, torch.zeros(1, 2, dtype=torch.long), G)
    for key in ("rgb", "depth", "x0", "mask"):
        torch.testing.assert_close(same[key], batch[key], atol=1e-6, rtol=0)
    g = torch.Generator().manual_seed(0)
    vacated = []
    for _ in range(50):
        out = shift_by_cells(batch, 1, G, g)
        vacated.append(int((~out["mask"][0, :, 0, 0]).sum()))
    assert set(vacated) <= {0, G, 2 * G - 1} and len(set(vacated)) == 3  # at most one row and one column shifted in


def test_colour_jitter_changes_colours_within_range():
    batch = ramp_batch()
    out = color_jitter(batch["rgb"], 0.3, torch.Generator().manual_seed(1))
    assert out.shape == batch["rgb"].shape and out.min() >= 0 and out.max() <= 1
    assert (out - batch["rgb"]).abs().max() > 0.01
