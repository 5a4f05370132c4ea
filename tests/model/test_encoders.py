"""The observation encoder's point features and the path loss, at tiny size."""

import json

import numpy as np
import pytest
import torch

from tracegen.model import TraceGen, flow, preset
from tracegen.model.decoder import PointHead
from tracegen.model.encoders import sample_at_grid
from tracegen.traces import grid_points


def tiny_batch(x0: torch.Tensor | None = None, has_depth=(True, True)) -> dict:
    """Two 32 x 32 observations for the tiny preset (grid 4, horizon 8), with targets ``x0`` when given."""
    batch = {
        "rgb": torch.rand(2, 3, 32, 32),
        "depth": torch.rand(2, 1, 32, 32) + 0.5,
        "has_depth": torch.tensor(has_depth),
        "text_emb": torch.randn(2, 384),
    }
    if x0 is not None:
        batch |= {"x0": x0, "mask": torch.ones(x0.shape, dtype=torch.bool)}
    return batch


def test_point_features_are_read_under_the_query_grid():
    """A map whose channels are its own pixel coordinates, at any stride, reads back the grid's pixel centres."""
    S, G = 32, 5
    for stride in (1, 4, 8):
        cells = S // stride
        centres = (torch.arange(cells) + 0.5) * stride - 0.5  # pixel coordinate of each cell's centre
        u = centres.view(1, 1, 1, cells).expand(1, 1, cells, cells)
        v = centres.view(1, 1, cells, 1).expand(1, 1, cells, cells)
        feats = sample_at_grid([torch.cat([u, v], 1)], G, S)[0].numpy()  # (G*G, 2)
        grid = grid_points(S, S, G)
        inside = ((grid >= centres[0].item()) & (grid <= centres[-1].item())).all(1)
        np.testing.assert_allclose(feats[inside], grid[inside], atol=1e-4)  # bilinear is exact inside


def test_point_features_reach_the_decoder_and_vanish_with_the_null_condition():
    torch.manual_seed(0)
    model = TraceGen(preset("tiny", grid=4, horizon=8)).eval()
    batch = tiny_batch(has_depth=(True, False))
    cond = model.condition(batch)
    assert cond.points.shape == (2, 16, model.cfg.point_features)
    null = model.condition(batch, keep=torch.tensor([True, False]))
    assert torch.equal(null.points[0], cond.points[0]) and not null.points[1].any()
    x, t = torch.randn(2, 16, 8, 3), torch.full((2,), 0.5)
    torch.nn.init.normal_(model.decoder.point_embed.weight)
    torch.nn.init.normal_(model.decoder.head.weight)
    moved = model.velocity(x, t, cond._replace(points=cond.points + 1))
    assert not torch.allclose(model.velocity(x, t, cond), moved)


def test_presets_have_point_features_and_older_checkpoints_load_without_them(tmp_path):
    assert preset("default").point_features == 32 and preset("paper").point_features == 0
    old = TraceGen(preset("tiny", grid=4, horizon=8, point_features=0)).save_pretrained(tmp_path / "old")
    meta = json.loads((old / "config.json").read_text())
    del meta["model"]["point_features"], meta["model"]["target"], meta["model"]["offset_scale"]  # as written before
    (old / "config.json").write_text(json.dumps(meta))
    assert TraceGen.from_pretrained(old).cfg.point_features == 0
    assert TraceGen.from_pretrained(old).cfg.target == "increments"  # as written before offsets existed


def test_offsets_are_the_running_sum_of_valid_increments_and_invert_on_the_valid_steps():
    torch.manual_seed(0)
    inc = torch.rand(2, 5, 8, 3) * 2 - 1
    mask = torch.ones_like(inc, dtype=torch.bool)
    mask[0, :, 6:] = False  # the first sample's last two steps are invalid: its offsets hold
    off = flow.to_offsets(inc, mask, 4.0)
    torch.testing.assert_close(off[0, :, 6:], off[0, :, 5:6].expand(-1, 2, -1))
    back = flow.from_offsets(off, 4.0)
    torch.testing.assert_close(back[mask], inc[mask])
    assert (back[~mask] == 0).all()
    model = TraceGen(preset("tiny", grid=4, horizon=8, offset_scale=2.0))
    inc, mask = inc[:, :4].repeat(1, 4, 1, 1), mask[:, :4].repeat(1, 4, 1, 1)  # (2, 16, 8, 3): the tiny grid's points
    torch.testing.assert_close(model.from_target(model.to_target(inc, mask))[mask], inc[mask])
    with pytest.raises(ValueError, match="target"):
        preset("tiny", target="positions")
    with pytest.raises(ValueError, match="path_loss"):
        preset("tiny", target="offsets", path_loss=0.1)


def test_the_path_is_the_running_sum_of_valid_increments_and_its_loss_counts():
    inc = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1).expand(1, 1, 4, 3)
    mask = torch.tensor([True, True, True, False]).view(1, 1, 4, 1).expand(1, 1, 4, 3)
    np.testing.assert_array_equal(flow.path(inc, mask)[0, 0, :, 0].numpy(), [1, 3, 6, 6])
    torch.manual_seed(0)
    model = TraceGen(preset("tiny", grid=4, horizon=8, target="increments"))
    batch = tiny_batch(torch.rand(2, 16, 8, 3) * 0.2)
    plain = model.loss(batch, torch.Generator().manual_seed(1))
    model.cfg.path_loss = 1.0
    with_path = model.loss(batch, torch.Generator().manual_seed(1))
    assert with_path > plain  # the zero-initialised decoder predicts no motion: its path is off by the whole path


def test_the_loss_measured_on_x0_weights_every_flow_time_alike():
    torch.manual_seed(0)
    x0 = torch.rand(2, 16, 8, 3) * 0.2
    batch = tiny_batch(x0)
    offsets = torch.cumsum(x0, 2) / 4.0
    # the zero-initialised decoder predicts a zero target: the x0 loss is the target's mean square, whatever the times
    for target, expected in (("increments", (x0**2).mean()), ("offsets", (offsets**2).mean())):
        model = TraceGen(preset("tiny", grid=4, horizon=8, loss_space="x0", target=target, offset_scale=4.0))
        for seed in (1, 2):
            torch.testing.assert_close(model.loss(batch, torch.Generator().manual_seed(seed)), expected)
    with pytest.raises(ValueError, match="loss_space"):
        preset("tiny", loss_space="eps")


def test_moving_weight_counts_the_moving_points_more():
    """One point moves (its path leaves the start by more than moving_threshold), fifteen stay: the zero-initialised
    decoder predicts no motion, so its x0 loss is the moving point's squared path, weighted as configured."""
    x0 = torch.zeros(2, 16, 8, 3)
    x0[:, 0, :, 0] = 0.5  # 8 steps of 0.5: the path reaches 4 normalised steps
    x0[:, 1, :, 0] = 0.05  # reaches 0.4 < 0.5: counts as static
    mask = torch.ones(x0.shape, dtype=torch.bool)
    assert flow.moving_points(x0, mask, 0.5)[0].tolist() == [True] + [False] * 15
    batch = tiny_batch(x0)
    losses = {}
    for w in (0.0, 3.0):
        torch.manual_seed(0)
        model = TraceGen(preset("tiny", grid=4, horizon=8, moving_weight=w, target="increments"))
        losses[w] = model.loss(batch, torch.Generator().manual_seed(1)).item()
    entries = 16 * 8 * 3
    expected = {w: ((1 + w) * 8 * 0.25 + 8 * 0.0025) / (entries + w * 8 * 3) for w in (0.0, 3.0)}
    assert losses == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="moving_weight"):
        preset("tiny", moving_weight=-1.0)


def test_the_distance_loss_measures_the_paths_and_prefers_the_median():
    """The zero-initialised decoder predicts no motion: with loss_norm="distance" its loss is the mean distance of
    the target's path from the start; and of three futures where one point moves in one, the distance is smallest
    for "it stays" (the median) and the squared error for a third of the motion (the mean)."""
    x0 = torch.zeros(2, 16, 8, 3)
    x0[:, 0, :, 0], x0[:, 0, :, 1] = 0.3, 0.4  # each step 0.5 away: the path is 0.5, 1.0, ..., 4.0 from the start
    model = TraceGen(preset("tiny", grid=4, horizon=8, loss_norm="distance", target="increments"))
    loss = model.loss(tiny_batch(x0), torch.Generator().manual_seed(1)).item()
    floor = 1e-3  # sqrt(eps): the distance's floor, where the gradient stays finite
    assert loss == pytest.approx((0.5 * np.arange(1, 9).mean() + 15 * floor) / 16, rel=1e-4)

    def along_u(*values):  # (len(values), 1, 1, 3): one point, one step, displaced along u
        return torch.tensor(values)[:, None, None, None] * torch.tensor([1.0, 0.0, 0.0])

    futures, mask = along_u(3.0, 0.0, 0.0), torch.ones(3, 1, 1, 3, dtype=torch.bool)
    still, mean = along_u(0.0, 0.0, 0.0), along_u(1.0, 1.0, 1.0)
    assert flow.masked_distance(still, futures, mask) < flow.masked_distance(mean, futures, mask)
    assert flow.masked_mse(mean, futures, mask) < flow.masked_mse(still, futures, mask)
    with pytest.raises(ValueError, match="loss_norm"):
        preset("tiny", loss_norm="l1")
    with pytest.raises(ValueError, match="loss_norm"):
        preset("tiny", loss_norm="distance", loss_space="velocity")
    with pytest.raises(ValueError, match="loss_norm"):
        preset("tiny", loss_norm="distance", target="offsets")


def test_point_features_read_the_same_numbers_as_grid_sample_everywhere():
    """The separable read agrees with torch's grid_sample (align_corners=False, zero padding), borders included."""
    torch.manual_seed(0)
    for size, cells, G in ((128, 32, 20), (128, 4, 20), (32, 8, 5), (96, 12, 7)):
        m = torch.randn(2, 3, cells, cells)
        coords = (2 * torch.linspace(0, size - 1, G) + 1) / size - 1
        v, u = torch.meshgrid(coords, coords, indexing="ij")
        ref = torch.nn.functional.grid_sample(m, torch.stack([u, v], -1).expand(2, G, G, 2), align_corners=False)
        torch.testing.assert_close(sample_at_grid([m], G, size), ref.flatten(2).transpose(1, 2), atol=1e-5, rtol=0)


def test_the_point_head_gives_each_point_its_own_output_and_starts_at_zero():
    cfg = preset("tiny", grid=4, horizon=8, point_head=16)
    head = PointHead(cfg)
    torch.manual_seed(0)
    for p in head.parameters():  # leave the zero initialisation to see the dependencies
        torch.nn.init.normal_(p, std=0.5)
    pp, steps = cfg.point_patch**2, 8 * 3
    h, x, pts = torch.randn(2, 4, cfg.dim), torch.randn(2, 4, pp * steps), torch.randn(2, 4, pp * cfg.point_features)
    out = head(h, x, pts).view(2, 4, pp, steps)
    x2 = x.clone().view(2, 4, pp, steps)
    x2[0, 1, 2] += 1.0  # one point's own input
    changed = (head(h, x2.view(2, 4, -1), pts).view(2, 4, pp, steps) != out).any(-1)
    assert changed.sum() == 1 and changed[0, 1, 2]
    model = TraceGen(cfg)  # zero-initialised: the untrained decoder predicts no motion
    batch = tiny_batch()
    cond = model.condition(batch)
    assert (model.decode(torch.randn(2, 16, 8, 3), torch.rand(2), cond) == 0).all()
    with pytest.raises(ValueError, match="point_head"):
        preset("paper", point_head=16)
