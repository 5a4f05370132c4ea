"""TraceGen at tiny size: sampling, guidance, prediction shapes and units, checkpoints, the paper preset."""

import json

import numpy as np
import pytest
import torch

from tracegen.errors import DataError
from tracegen.model import TraceGen, flow, preset
from tracegen.traces import decode_deltas, encode_deltas, grid_points


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = TraceGen(preset("tiny", grid=4, horizon=8))
    for p in m.parameters():  # random, non-zero weights everywhere (the zero-initialised heads included)
        torch.nn.init.normal_(p, std=0.05)
    return m.eval()


def observation(H=48, W=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (H, W, 3), dtype=np.uint8), rng.uniform(0.5, 2.0, (H, W)).astype(np.float32)


def test_a_perfect_velocity_field_decodes_to_its_target():
    """For data concentrated at x*, the exact velocity is (x - x*) / t; both samplers must land on x*."""
    H, W, L = 48, 64, 8
    traj = np.zeros((16, L + 1, 3))
    traj[..., :2] = grid_points(H, W, 4)[:, None] + np.arange(L + 1)[None, :, None] * [1.5, -0.5]
    traj[..., 2] = 1.0 + 0.01 * np.arange(L + 1)
    target, _ = encode_deltas(traj, np.ones(L + 1, bool), H, W, horizon=L)
    x_star = torch.from_numpy(target).double()[None]
    for method in ("euler", "heun"):
        x = flow.sample(lambda x, t: (x - x_star) / t.view(-1, 1, 1, 1), torch.randn_like(x_star), 7, method)
        np.testing.assert_allclose(x[0].numpy(), target, atol=1e-6)
        back = decode_deltas(x[0].numpy(), traj[:, 0, :2], traj[:, 0, 2], H, W)
        np.testing.assert_allclose(back, traj, atol=1e-5)


def test_sampling_is_deterministic_under_a_seed(model):
    rgb, depth = observation()
    a = model.predict(rgb, depth, "open the drawer", seed=3).traj
    b = model.predict(rgb, depth, "open the drawer", seed=3).traj
    c = model.predict(rgb, depth, "open the drawer", seed=4).traj
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_many_sampling_steps_land_on_a_perfectly_predicted_target(model, monkeypatch):
    """An x0 model that predicts the target exactly: every step count and sampler ends on it (with more steps than
    1 / min_t, a clip of t in the sampler would leave noise behind)."""
    rgb, depth = observation()
    batch = model._prepare(rgb[None], depth[None], ["push the button"])
    target = torch.linspace(-0.5, 0.5, 16 * 8 * 3).view(1, 16, 8, 3)
    monkeypatch.setattr(model, "decode", lambda x_t, t, cond: target.expand_as(x_t))
    for steps in (1, 4, 50, 100):
        for sampler in ("euler", "heun"):
            out = model.sample(batch, steps=steps, sampler=sampler, seed=0)[:, 0]
            torch.testing.assert_close(out, target, atol=1e-5, rtol=0)


def test_guidance_scale_one_is_the_conditional_model(model):
    rgb, depth = observation()
    batch = model._prepare(rgb[None], depth[None], ["push the button"])
    cond = model.condition(batch)
    noise = torch.randn((1, 16, 8, 3), generator=torch.Generator().manual_seed(0))
    manual = model.from_target(flow.sample(lambda x, t: model.velocity(x, t, cond), noise, 3, "heun"))
    guided = model.sample(batch, steps=3, guidance=1.0, sampler="heun", seed=0)[:, 0]
    torch.testing.assert_close(guided, manual)
    assert not torch.allclose(model.sample(batch, steps=3, guidance=3.0, seed=0)[:, 0], manual)


def test_x0_prediction_lands_on_the_decoders_clean_estimate(model, monkeypatch):
    """A decoder that says "nothing moves" gives exactly static traces, whatever the noise (velocity would not)."""
    rgb, depth = observation()
    batch = model._prepare(rgb[None], depth[None], ["push the button"])
    monkeypatch.setattr(model.decoder, "forward", lambda x, t, *condition: torch.zeros_like(x))
    for sampler in ("euler", "heun"):
        x = model.sample(batch, num_samples=2, steps=4, sampler=sampler, seed=3)
        assert x.abs().max() < 1e-6
    model.cfg.prediction = "velocity"
    try:
        assert model.sample(batch, steps=4, seed=3).abs().max() > 0.1  # the noise, untouched
    finally:
        model.cfg.prediction = "x0"


def test_prediction_shapes_units_and_other_image_sizes(model):
    rgb, depth = observation(H=60, W=90)
    K = np.array([[80.0, 0, 44.5], [0, 80, 29.5], [0, 0, 1]])
    pred = model.predict(rgb, depth, "open the drawer", K=K, num_samples=2)
    assert pred.traj.shape == (1, 2, 16, 9, 3) and pred.xyz.shape == (1, 2, 16, 9, 3)
    np.testing.assert_allclose(pred.traj[0, 0, :, 0, :2], grid_points(60, 90, 4), atol=1e-4)  # input pixels
    rows, cols = np.rint(grid_points(60, 90, 4)[:, 1]).astype(int), np.rint(grid_points(60, 90, 4)[:, 0]).astype(int)
    np.testing.assert_allclose(pred.traj[0, 0, :, 0, 2], depth[rows, cols], rtol=1e-6)  # z starts at the depth map
    assert np.abs(pred.x).max() <= 1.0 and pred.latency_ms > 0  # increments are clamped to the target range


def test_missing_depth_empty_and_long_instructions(model):
    rgb, _ = observation()
    pred = model.predict(rgb, None, "")
    assert np.isnan(pred.traj[..., 2]).all() and np.isfinite(pred.traj[..., :2]).all()
    long = model.predict(rgb, None, "open " * 5000)
    assert np.isfinite(long.traj[..., :2]).all()
    batch = model.predict(np.stack([rgb, rgb]), None, ["a", "b"])
    assert batch.traj.shape[0] == 2
    with pytest.raises(ValueError, match="sizes must agree"):
        model.predict(np.stack([rgb, rgb]), None, ["only one"])


def test_save_load_round_trip_is_exact(model, tmp_path):
    rgb, depth = observation()
    model.save_pretrained(tmp_path / "ckpt")
    loaded = TraceGen.from_pretrained(tmp_path / "ckpt")
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    np.testing.assert_array_equal(model.predict(rgb, depth, "x").traj, loaded.predict(rgb, depth, "x").traj)


def test_bad_checkpoints_fail_clearly(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated or corrupt"):
        TraceGen.from_pretrained(tmp_path / "ckpt")
    model.save_pretrained(tmp_path / "ckpt2")
    config = tmp_path / "ckpt2" / "config.json"
    config.write_text(config.read_text().replace('"grid": 4', '"grid": 6'))
    with pytest.raises(DataError, match="weights do not match"):
        TraceGen.from_pretrained(tmp_path / "ckpt2")
    config.write_text(config.read_text().replace('"grid": 6', '"grid": 4, "wings": 2'))
    with pytest.raises(DataError, match="unknown model config field"):
        TraceGen.from_pretrained(tmp_path / "ckpt2")
    model.save_pretrained(tmp_path / "ckpt3")  # increments normalised otherwise: its traces would come out scaled
    config = tmp_path / "ckpt3" / "config.json"
    meta = json.loads(config.read_text())
    meta["normalization"]["delta_scale_u_v_z"] = [0.1, 0.1, 0.1]
    config.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="normalised by"):
        TraceGen.from_pretrained(tmp_path / "ckpt3")
    del meta["model"]["prediction"], meta["normalization"]  # saved before x0 prediction: a velocity model
    config.write_text(json.dumps(meta))
    assert TraceGen.from_pretrained(tmp_path / "ckpt3").cfg.prediction == "velocity"


def test_non_finite_depth_is_no_measurement_not_a_nan_trace(model):
    rgb, depth = observation()
    holes = depth.copy()
    holes[5:9, 10:20] = np.nan  # a sensor's missing depth
    holes[0, 0] = np.inf
    with_holes = model.predict(rgb, holes, "open the drawer", seed=1).traj
    zeroed = model.predict(rgb, np.where(np.isfinite(holes), holes, 0), "open the drawer", seed=1).traj
    assert np.isfinite(with_holes[..., :2]).all()  # (z is NaN where the start has no depth, as for a 0)
    np.testing.assert_array_equal(with_holes, zeroed)


def test_paper_preset_shape_builds_and_trains_at_tiny_size():
    cfg = preset(
        "paper",
        dim=32,
        image_size=32,
        image_channels=(8, 16),
        image_tokens=2,
        grid=4,
        horizon=4,
        cog_layers=1,
        cog_heads=2,
        cog_head_dim=8,
        cog_time_dim=16,
        cog_cond_tokens=8,
    )
    model = TraceGen(cfg)
    video = model.decoder.to_video(torch.arange(16 * 4 * 3.0).view(1, 16, 4, 3))
    assert video.shape == (1, 2, 6, 4, 4)
    torch.testing.assert_close(model.decoder.from_video(video), torch.arange(16 * 4 * 3.0).view(1, 16, 4, 3))
    batch = {
        "rgb": torch.rand(2, 3, 32, 32),
        "depth": torch.rand(2, 1, 32, 32),
        "has_depth": torch.tensor([1, 0]) > 0,
        "text_emb": torch.randn(2, 384),
        "x0": torch.rand(2, 16, 4, 3),
        "mask": torch.ones(2, 16, 4, 3) > 0,
    }
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.decoder.net.patch_embed.proj.weight.grad is not None


def test_hf_vision_adapter_with_a_locally_built_model(tmp_path):
    from transformers import ViTConfig, ViTModel

    ViTModel(
        ViTConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(tmp_path / "vit")
    model = TraceGen(preset("tiny", image_encoder="hf", hf_vision_path=str(tmp_path / "vit")))
    rgb, depth = observation(32, 32)
    assert model.predict(rgb, depth, "x").traj.shape == (1, 1, 400, 33, 3)
    with pytest.raises(FileNotFoundError, match="local model folder"):
        TraceGen(preset("tiny", image_encoder="hf", hf_vision_path=str(tmp_path / "missing")))
