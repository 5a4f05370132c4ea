"""Retrieval: the bank's search, and TraceGen conditioned on the nearest training trace (retrieval=True)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from synthetic import tiny_train_config as tiny
from tracegen.errors import DataError
from tracegen.model import TraceGen, preset
from tracegen.model.data import resize_observation
from tracegen.model.retrieval import BANK, RetrievalBank, retrieval_keys
from tracegen.train import load_examples, make_batch, split_by_episode, train

N, L = 16, 8  # a 4 x 4 grid, 8 steps


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (count, 24, 32, 3), dtype=np.uint8)


def bank_of(model: TraceGen, rgbs: np.ndarray, texts: list[str], episodes: list[str]) -> RetrievalBank:
    """A bank whose triplet i has these image and instruction, and increments all equal to (i + 1) / 10."""
    size = model.cfg.image_size
    rgb = torch.from_numpy(np.stack([resize_observation(r, None, size)[0] for r in rgbs])).float() / 255
    traces = torch.arange(1, len(rgbs) + 1).float().view(-1, 1, 1, 1).expand(-1, N, L, 3) / 10
    return RetrievalBank(retrieval_keys(rgb, model.embed_texts(texts)), traces.half(), episodes)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = TraceGen(preset("tiny", grid=4, horizon=8, retrieval=True))
    texts = ["open the drawer", "open the drawer", "push the button", "push the button"]
    m.bank = bank_of(m, np.concatenate([images(2)] * 2), texts, ["a", "b", "a", "b"])
    return m.eval()


def test_the_nearest_triplet_is_found_by_image_and_by_instruction(model):
    rgb = torch.from_numpy(np.stack([resize_observation(r, None, 32)[0] for r in images(2)] * 2)).float() / 255
    same = retrieval_keys(
        rgb, model.embed_texts(["open the drawer", "open the drawer", "push the button", "push the button"])
    )
    assert model.bank.nearest(same).tolist() == [0, 1, 2, 3]
    swapped = retrieval_keys(rgb, model.embed_texts(["push the button"] * 2 + ["open the drawer"] * 2))
    assert model.bank.nearest(swapped).tolist() == [2, 3, 0, 1]  # the instruction decides between equal images
    # leaving a query's own episode out gives the nearest of the others
    assert model.bank.nearest(same, exclude=["a", "b", "a", "b"]).tolist() == [1, 0, 3, 2]
    drawn = {
        int(model.bank.nearest(same[:1], top_k=2, generator=torch.Generator().manual_seed(s))[0]) for s in range(20)
    }
    assert drawn == {0, 2}  # top_k draws among the k nearest (the same image), and only them
    with pytest.raises(ValueError, match="at least two episodes"):
        RetrievalBank(model.bank.keys[:1], model.bank.traces[:1], ["a"]).nearest(same[:1], exclude=["a"])


def test_an_untrained_retrieval_model_replays_its_neighbour(model):
    """The decoder's correction starts at zero, so the flow lands on the retrieved increments."""
    rgb = images(2)[0]
    np.testing.assert_allclose(model.predict(rgb, None, "push the button", num_samples=2).x, 0.3, atol=1e-3)
    np.testing.assert_allclose(model.predict(rgb, None, "open the drawer").x, 0.1, atol=1e-3)


def test_the_null_condition_drops_the_retrieved_trace(model):
    batch = model.with_retrieved(model._prepare(images(1, seed=5), None, ["push the button"]))
    assert batch["retrieved"].abs().min() > 0
    cond = model.condition(batch, keep=torch.zeros(1, dtype=torch.bool))
    assert cond.retrieved.abs().max() == 0


def test_the_bank_is_saved_with_the_weights_and_required_on_load(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    loaded = TraceGen.from_pretrained(tmp_path / "ckpt")
    for a, b in ((loaded.bank.keys, model.bank.keys), (loaded.bank.traces, model.bank.traces)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.bank.episodes == model.bank.episodes and loaded.bank.fingerprint == model.bank.fingerprint
    assert loaded.bank.ids == model.bank.ids  # what its ids name (rollouts); a bank saved before says nothing:
    from safetensors.torch import save_file

    save_file(
        {"keys": model.bank.keys, "traces": model.bank.traces}, str(tmp_path / "old.safetensors"), {"episodes": "null"}
    )
    assert RetrievalBank.load(tmp_path / "old.safetensors").ids == "episode"  # per-camera episodes, as it was made
    stamp = (tmp_path / "ckpt" / BANK).stat().st_mtime_ns
    model.save_pretrained(tmp_path / "ckpt")  # the same bank again: the file is left alone
    assert (tmp_path / "ckpt" / BANK).stat().st_mtime_ns == stamp
    assert TraceGen.from_pretrained(tmp_path / "ckpt", load_bank=False).bank is None
    rgb = images(1, seed=7)[0]
    np.testing.assert_array_equal(loaded.predict(rgb, None, "x").traj, model.predict(rgb, None, "x").traj)
    other = TraceGen(preset("tiny", grid=4, horizon=6, retrieval=True))
    other.bank = RetrievalBank(model.bank.keys, model.bank.traces[:, :, :6], model.bank.episodes)
    other.bank.save(tmp_path / "ckpt" / BANK)
    with pytest.raises(DataError, match="does not fit the model"):
        TraceGen.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / BANK).unlink()
    with pytest.raises(DataError, match="needs the bank it was trained with"):
        TraceGen.from_pretrained(tmp_path / "ckpt")
    with pytest.raises(ValueError, match="saved with its retrieval bank"):
        TraceGen(preset("tiny", grid=4, horizon=8, retrieval=True)).save_pretrained(tmp_path / "bare")
    with pytest.raises(ValueError, match="retrieval=True needs decoder='dit'"):
        preset("tiny", retrieval=True, target="offsets").validate()


def test_training_with_retrieval_builds_the_bank_from_the_training_episodes(dataset, tmp_path):
    run = tmp_path / "run"
    train(tiny(dataset, run, 3, model={"retrieval": True, "retrieval_top_k": 2}))
    model = TraceGen.from_pretrained(run)
    train_set, val_set = split_by_episode(load_examples([dataset], model.cfg)[0], 0.25, 0)  # tiny()'s split
    assert len(val_set) > 0 and len(model.bank) == len(train_set) and model.bank.traces.shape[1:] == (400, 32, 3)
    torch.testing.assert_close(model.bank.traces[5].float(), torch.from_numpy(train_set[5].x0), atol=1e-3, rtol=0)
    # each training sample's neighbour comes from another episode (bank traces relabelled: trace j is all j / 100)
    labels = torch.arange(len(train_set)).view(-1, 1, 1, 1).expand_as(model.bank.traces) / 100
    model.bank = RetrievalBank(model.bank.keys, labels.half(), model.bank.episodes)
    idx = list(range(len(train_set)))
    batch = make_batch(model, train_set, idx, torch.Generator().manual_seed(0), top_k=2)
    picked = (batch["retrieved"][:, 0, 0, 0] * 100).round().long().tolist()
    assert all(train_set[j].rollout != train_set[i].rollout for i, j in zip(idx, picked, strict=True))
    # a warm-up's bank is its own data, not its init's
    warm = tmp_path / "warm"
    train(tiny(dataset, warm, 2, init=str(run), val_fraction=0.5))
    assert len(TraceGen.from_pretrained(warm).bank) == len(
        split_by_episode(load_examples([dataset], model.cfg)[0], 0.5, 0)[0]
    )
    assert json.loads((run / "config.json").read_text())["model"]["retrieval"] is True
    with pytest.raises(ValueError, match="shift_cells=0 with retrieval"):
        train(tiny(dataset, tmp_path / "shifted", 2, shift_cells=1, model={"retrieval": True}))
    with pytest.raises(ValueError, match="has 1 rollout"):
        train(tiny(dataset, tmp_path / "one", 2, val_fraction=0.75, model={"retrieval": True}))


def test_with_the_retrieved_scene_the_decoder_sees_the_neighbours_observation(dataset, tmp_path):
    """retrieval_scene: the bank keeps each triplet's observation; the neighbour's comes with its increments, is
    encoded beside the current one, changes the condition, and is dropped by the null condition."""
    run = tmp_path / "scene"
    train(tiny(dataset, run, 2, model={"retrieval": True, "retrieval_scene": True}))
    model = TraceGen.from_pretrained(run)
    train_set = split_by_episode(load_examples([dataset], model.cfg)[0], 0.25, 0)[0]
    np.testing.assert_array_equal(model.bank.rgb[3].numpy(), train_set[3].rgb)
    torch.testing.assert_close(model.bank.depth[3].float(), torch.from_numpy(train_set[3].depth), atol=2e-3, rtol=0)
    assert torch.equal(model.bank.has_depth, torch.tensor([e.has_depth for e in train_set]))
    # the scene comes from the triplet whose increments are retrieved (bank traces relabelled: trace j is all j / 100)
    labelled = torch.arange(len(train_set)).view(-1, 1, 1, 1).expand_as(model.bank.traces) / 100
    scenes = (model.bank.rgb, model.bank.depth, model.bank.has_depth)
    model.bank = RetrievalBank(model.bank.keys, labelled.half(), model.bank.episodes, *scenes)
    batch = make_batch(model, train_set, [0, 1], torch.Generator().manual_seed(0), top_k=2)
    picked = (batch["retrieved"][:, 0, 0, 0] * 100).round().long()
    torch.testing.assert_close(batch["retrieved_rgb"], model.bank.rgb[picked].float() / 255)
    torch.testing.assert_close(batch["retrieved_depth"], model.bank.depth[picked].float())
    cond = model.condition(batch)
    image_tokens = model.cfg.image_tokens**2
    assert cond.tokens.shape[1] == 2 * image_tokens + 1 and cond.retrieved_points.shape == cond.points.shape
    other = model.condition({**batch, "retrieved_rgb": 1 - batch["retrieved_rgb"]})
    assert not torch.allclose(other.tokens[:, image_tokens:-1], cond.tokens[:, image_tokens:-1])
    torch.testing.assert_close(other.tokens[:, :image_tokens], cond.tokens[:, :image_tokens])  # the current scene's
    null = model.condition(batch, keep=torch.zeros(2, dtype=torch.bool))
    assert null.retrieved_points.abs().max() == 0
    torch.testing.assert_close(null.tokens[:, image_tokens:-1], model.null_image.expand(2, image_tokens, -1))
    # the decoder uses the neighbour's tokens and point features (its output head is no longer zero after training)
    model.train()
    model.loss(batch, generator=torch.Generator().manual_seed(0)).backward()
    assert model.scene_tag.grad.abs().max() > 0 and model.decoder.scene_point_embed.weight.grad.abs().max() > 0
    model.eval()
    # it predicts from a single observation like any model, and refuses a bank without observations
    assert model.predict(images(1)[0], None, "open the drawer").traj.shape == (1, 1, 400, 33, 3)
    RetrievalBank(model.bank.keys, model.bank.traces, model.bank.episodes).save(run / BANK)
    with pytest.raises(DataError, match="observations at 32x32 .*this bank has none"):
        TraceGen.from_pretrained(run)
    with pytest.raises(ValueError, match="rgb, depth and has_depth together"):
        RetrievalBank(model.bank.keys, model.bank.traces, None, model.bank.rgb)
    with pytest.raises(ValueError, match="it needs retrieval=True"):
        preset("tiny", retrieval_scene=True)


def test_one_rollout_filmed_by_two_cameras_is_one_rollout_for_splits_and_retrieval():
    from tracegen.model.data import rollout_id

    meta = {"episode_id": "metaworld_door-open_sawyer_corner2_s001000", "camera": "corner2"}
    other = {"episode_id": "metaworld_door-open_sawyer_corner3_s001000", "camera": "corner3"}
    assert rollout_id(meta) == rollout_id(other) == "metaworld_door-open_sawyer_s001000"
    assert rollout_id({"episode_id": "clip_7"}) == "clip_7" and rollout_id({"rollout_id": "r", **meta}) == "r"
    films = [  # 8 rollouts x 2 cameras (the split reads only .rollout)
        SimpleNamespace(
            rollout=rollout_id({"episode_id": f"metaworld_door-open_sawyer_{camera}_s{seed:06d}", "camera": camera})
        )
        for seed in range(8)
        for camera in ("corner", "corner2")
    ]
    train_set, val_set = split_by_episode(films, 0.25, 0)
    assert len(val_set) == 4 and not {e.rollout for e in val_set} & {e.rollout for e in train_set}
