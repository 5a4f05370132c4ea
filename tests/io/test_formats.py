"""Round trips between our trace dataset, the official TraceGen layout and TAPVid-3D, plus their bad inputs."""

import json

import numpy as np
import pytest

from synthetic import synthetic_episode
from tracegen.errors import DataError
from tracegen.forge.windows import gt_samples
from tracegen.io import convert, official, tapvid3d, trace_dataset
from tracegen.io.episode import read_episode, write_episode
from tracegen.io.inspect import inspect


@pytest.fixture(scope="module")
def samples():
    out, dropped = gt_samples(synthetic_episode())
    assert len(out) >= 3 and sum(dropped.values()) >= 1  # the last, too-short window is dropped with a reason
    return out


def assert_same_samples(a, b, traj_atol=0.0, check_visibility=True):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.rgb, y.rgb)
        n = x.num_valid
        assert n == y.num_valid
        np.testing.assert_allclose(x.traj[:, :n], y.traj[:, :n], atol=traj_atol, rtol=0)
        assert x.has_depth == y.has_depth and x.instructions == y.instructions
        for key in ("depth", "K", "w2c"):
            if getattr(x, key) is None:
                assert getattr(y, key) is None
            else:
                np.testing.assert_allclose(getattr(x, key), getattr(y, key), atol=1e-6)
        assert x.meta["query_frame"] == y.meta["query_frame"]


def test_gt_samples_follow_the_trace_spec(samples):
    s = samples[0]
    assert s.traj.shape == (400, 128, 3) and s.traj.dtype == np.float32
    assert s.valid_steps[: s.num_valid].all() and s.num_valid > 3
    from tracegen.traces import grid_points

    np.testing.assert_allclose(s.traj[:, 0, :2], grid_points(*s.image_size), atol=1e-4)
    np.testing.assert_allclose(s.traj[:, 0, 2], 1.0, atol=1e-6)  # the wall is 1 m away


def test_trace_dataset_round_trip(tmp_path, samples):
    trace_dataset.write_dataset(tmp_path / "ds", [("ep0", samples[:2]), ("ep1", samples[2:])], grid=20, retarget={})
    ds = trace_dataset.TraceDataset(tmp_path / "ds")
    assert len(ds) == len(samples)
    assert_same_samples(samples, [ds[i] for i in range(len(ds))])
    assert ds.episodes() == ["synthetic_0"]


def test_dataset_reopen_with_other_settings_is_refused(tmp_path):
    trace_dataset.create_dataset(tmp_path / "ds", 20, {"step": 0.05})
    with pytest.raises(DataError, match="grid"):
        trace_dataset.create_dataset(tmp_path / "ds", 10, {"step": 0.05})


def test_shard_without_commit_marker_is_invisible(tmp_path, samples):
    trace_dataset.write_dataset(tmp_path / "ds", [("ep0", samples)], grid=20, retarget={})
    (tmp_path / "ds" / "shards" / "ep0.json").unlink()  # as if killed between the two writes
    assert len(trace_dataset.TraceDataset(tmp_path / "ds")) == 0


def test_official_round_trip(tmp_path, samples):
    official.write_official_episode(tmp_path, "ep", samples)
    files = sorted(p.name for p in (tmp_path / "ep" / "samples").iterdir())
    assert files[0].startswith("ep_") and (tmp_path / "ep" / "three_instructions.json").exists()
    raw = np.load(tmp_path / "ep" / "samples" / files[0])
    assert raw["traj"].shape == (400, 128, 3) and np.isneginf(raw["traj"][:, -1]).all()
    assert raw["keypoints"].shape == (400, 2) and raw["valid_steps"].shape == (128,)
    assert_same_samples(samples, official.read_official_episode(tmp_path / "ep"))


def test_a_writers_work_in_progress_is_never_read(tmp_path, samples):
    import shutil

    official.write_official_episode(tmp_path / "off", "ep", samples[:2])
    shutil.copytree(tmp_path / "off" / "ep", tmp_path / "off" / ".tmp-ep.k3x9")  # a killed export's folder
    assert [p.name for p in official.official_episode_dirs(tmp_path / "off")] == ["ep"]
    write_episode(tmp_path / "eps" / "a", synthetic_episode())
    shutil.copytree(tmp_path / "eps" / "a", tmp_path / "eps" / ".old-a")  # a replaced copy left by a kill
    assert [p.name for p in convert.episode_dirs(tmp_path / "eps")] == ["a"]
    tapvid3d.write_tapvid3d(tmp_path / "tap" / "s.npz", samples[0])
    (tmp_path / "tap" / ".tmp-s.npz").write_bytes(b"PK\x03\x04 cut short")  # a killed export's file, sorted first
    assert tapvid3d.tapvid3d_files(tmp_path / "tap") == [tmp_path / "tap" / "s.npz"]
    assert convert.detect(tmp_path / "tap") == "tapvid3d"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.npz").write_bytes(b"PK\x03\x04 cut short")  # corrupt: one clear line, not a traceback
    with pytest.raises(DataError, match="unrecognised layout"):
        convert.detect(tmp_path / "bad")


def test_official_two_dimensional_sample(tmp_path, samples):
    s = samples[0]
    flat = trace_dataset.TraceSample(
        s.rgb,
        s.traj * np.array([1, 1, 0], np.float32),
        s.valid_steps,
        s.instructions,
        has_depth=False,
        meta=s.meta,
    )
    official.write_official_episode(tmp_path, "ep2d", [flat])
    assert np.load(next((tmp_path / "ep2d" / "samples").iterdir()))["traj"].shape[-1] == 2
    back = official.read_official_episode(tmp_path / "ep2d")[0]
    assert not back.has_depth and back.depth is None
    np.testing.assert_array_equal(back.traj[:, : s.num_valid], flat.traj[:, : s.num_valid])


def test_official_files_written_by_hand(tmp_path):
    """The layout as the official pipeline writes it: -inf padding, no valid_steps key, no cameras, no texts."""
    ep = tmp_path / "handmade"
    (ep / "samples").mkdir(parents=True)
    (ep / "images").mkdir()
    official.write_png(ep / "images" / "handmade_0.png", np.zeros((40, 60, 3), np.uint8))
    traj = np.full((400, 128, 3), -np.inf, np.float32)
    traj[:, :5] = np.linspace(0, 4, 5)[None, :, None]
    np.savez(ep / "samples" / "handmade_0.npz", traj=traj, keypoints=traj[:, 0, :2])
    s = official.read_official_episode(ep)[0]
    assert s.num_valid == 5 and s.K is None and s.meta["instructions_default"]
    assert s.instructions == [official.DEFAULT_INSTRUCTION]
    np.testing.assert_array_equal(s.traj[:, 5:], 4.0)  # forward-filled, never -inf


def test_official_bad_inputs(tmp_path, samples):
    official.write_official_episode(tmp_path, "ep", samples[:1])
    f = next((tmp_path / "ep" / "samples").iterdir())
    arrays = dict(np.load(f))
    arrays["traj"][3, 1, 0] = np.nan
    np.savez(f, **arrays)
    with pytest.raises(DataError, match="non-finite trace values"):
        official.read_official_episode(tmp_path / "ep")
    arrays["traj"][3, 1, 0] = 1.0
    np.savez(f, **arrays)
    raw = next((tmp_path / "ep" / "depth").glob("*_raw.npz"))
    np.savez(raw, depth=np.ones((3, 3), np.float32))
    with pytest.raises(DataError, match="does not match the image"):
        official.read_official_episode(tmp_path / "ep")


def test_tapvid3d_round_trip_and_key_spellings(tmp_path, samples):
    s = samples[0]
    tapvid3d.write_tapvid3d(tmp_path / "s.npz", s)
    raw = np.load(tmp_path / "s.npz")
    assert raw["tracks_XYZ"].shape == (s.num_valid, 400, 3) and raw["fx_fy_cx_cy"].shape == (4,)
    np.testing.assert_allclose(raw["tracks_XYZ"][0, :, 2], 1.0, atol=1e-6)  # metres in the reference camera
    assert_same_samples([s], [tapvid3d.read_tapvid3d(tmp_path / "s.npz")], traj_atol=1e-3)
    np.savez(tmp_path / "lower.npz", tracks_xyz=raw["tracks_XYZ"], intrinsics=raw["fx_fy_cx_cy"])
    assert tapvid3d.read_tapvid3d_tracks(tmp_path / "lower.npz")["tracks_XYZ"].shape == raw["tracks_XYZ"].shape


def test_tapvid3d_keeps_points_without_depth(tmp_path, samples):
    import dataclasses

    s = samples[0]
    traj = s.traj.copy()
    traj[:40, :, 2] = 0.0  # no depth measured there (sky, far plane): the simulator's z = 0
    s = dataclasses.replace(s, traj=traj)
    tapvid3d.write_tapvid3d(tmp_path / "s.npz", s)
    raw = np.load(tmp_path / "s.npz")
    assert np.isfinite(raw["tracks_XYZ"]).all() and (raw["tracks_XYZ"][..., 2] > 0).all()  # a valid TAPVid-3D file
    assert not raw["visibility"][:, :40].any() and raw["visibility"][:, 40:].all()  # ... that marks them unseen
    assert_same_samples([s], [tapvid3d.read_tapvid3d(tmp_path / "s.npz")], traj_atol=1e-3)  # read back as they were


def test_foreign_tapvid3d_file_is_inspected_but_never_unpickled(tmp_path, samples):
    tracks = np.ones((5, 3, 3), np.float32)
    jpegs = np.empty(5, dtype=object)
    jpegs[:] = [b"\xff\xd8"] * 5
    np.savez(
        tmp_path / "clip.npz",
        tracks_XYZ=tracks,
        visibility=np.ones((5, 3), bool),
        fx_fy_cx_cy=np.array([100.0, 100, 50, 50]),
        images_jpeg_bytes=jpegs,
    )
    summary = inspect(tmp_path / "clip.npz")
    assert summary["kind"] == "tapvid3d" and summary["items"][0]["steps"] == 5
    with pytest.raises(DataError, match="pickled"):
        tapvid3d.read_tapvid3d(tmp_path / "clip.npz")


def test_tapvid3d_export_refuses_two_dimensional_traces(tmp_path, samples):
    s = samples[0]
    flat = trace_dataset.TraceSample(s.rgb, s.traj, s.valid_steps, [], has_depth=False, K=s.K, w2c=s.w2c)
    with pytest.raises(DataError, match="2D-only"):
        tapvid3d.write_tapvid3d(tmp_path / "x.npz", flat)


def test_convert_chain_episodes_official_tapvid_tracegen(tmp_path):
    write_episode(tmp_path / "episodes" / "ep0", synthetic_episode())
    samples = gt_samples(read_episode(tmp_path / "episodes" / "ep0"))[0]  # frames as decoded from the video
    assert convert.detect(tmp_path / "episodes") == "episodes"
    s1 = convert.convert(tmp_path / "episodes", tmp_path / "official", "official")
    assert s1["samples"] == len(samples) and convert.detect(tmp_path / "official") == "official"
    convert.convert(tmp_path / "official", tmp_path / "tap", "tapvid3d")
    assert convert.detect(tmp_path / "tap") == "tapvid3d"
    convert.convert(tmp_path / "tap", tmp_path / "ours", "tracegen")
    assert convert.detect(tmp_path / "ours") == "traces"
    convert.convert(tmp_path / "ours", tmp_path / "official2", "official")
    back = [s for _, shard in convert.trace_shards(tmp_path / "official2", "official") for s in shard]
    assert_same_samples(samples, back, traj_atol=1e-3)


def test_inspect_summaries(tmp_path, samples):
    trace_dataset.write_dataset(tmp_path / "ds", [("ep0", samples)], grid=20, retarget={})
    summary = inspect(tmp_path / "ds")
    assert summary["kind"] == "traces" and summary["samples"] == len(samples) and summary["grid"] == [20]
    assert summary["z_m_range"] == [1.0, 1.0] and summary["samples_failing_official_filters"] == 0
    json.dumps(summary)  # serialisable
    write_episode(tmp_path / "ep", synthetic_episode(camera_motion=0.01))
    ep_summary = inspect(tmp_path / "ep")
    assert ep_summary["episodes"] == 1 and ep_summary["items"][0]["camera_travel_m"] == pytest.approx(0.23)


def test_unrecognised_layout(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="unrecognised layout"):
        convert.detect(tmp_path)


def test_convert_lerobot_to_tracegen_episodes_and_inspect(tmp_path):
    from lerobot_fixture import LENGTHS, write_v3

    root = write_v3(tmp_path / "lerobot")
    assert convert.detect(root) == "lerobot"
    summary = convert.convert(root, tmp_path / "eps", "tracegen")
    assert summary["episodes"] == 2 * len(LENGTHS) and summary["cameras"] == 2  # every episode x camera
    eps = convert.episode_dirs(tmp_path / "eps")
    assert sorted(read_episode(p).num_frames for p in eps) == sorted(LENGTHS * 2)
    assert inspect(root)["episodes"] == len(LENGTHS)
    with pytest.raises(DataError, match="raw videos"):
        convert.convert(root, tmp_path / "x", "official")
    info_path = root / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    camera = next(k for k, f in info["features"].items() if f.get("dtype") == "video")
    info["features"][camera]["shape"] = [63, 64, 3]  # odd frames: refused before any episode is written
    info_path.write_text(json.dumps(info))
    with pytest.raises(DataError, match="needs even sizes: run tracegen forge"):
        convert.convert(root, tmp_path / "odd", "tracegen")
    assert not (tmp_path / "odd").exists()
