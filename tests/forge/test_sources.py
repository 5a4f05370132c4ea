"""Sources: tracegen episodes, videos / frame folders with depth and intrinsics, official folder layouts, LeRobot;
frame sampling; and every bad input becoming a clear per-clip error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from forge_data import occluder_clip, write_depth_pngs, write_frames

from lerobot_fixture import FRONT, LENGTHS, TASKS, write_v3
from synthetic import synthetic_episode
from tracegen.errors import DataError
from tracegen.forge.clip import ClipError
from tracegen.forge.config import ForgeConfig, SourceConfig
from tracegen.forge.sources import discover, frame_stride, load_clip
from tracegen.io.episode import write_episode
from tracegen.io.video import write_video


def test_episode_folder_round_trip(tmp_path):
    ep = synthetic_episode(T=20)
    write_episode(tmp_path / "ep_a", ep)
    write_episode(tmp_path / "ep_b", synthetic_episode(T=12, seed=1))
    items = discover(tmp_path)
    assert [i.name for i in items] == ["ep_a", "ep_b"] and {i.kind for i in items} == {"episode"}
    clip = load_clip(items[0])
    assert clip.rgb.shape == ep.rgb.shape and clip.gt is not None
    np.testing.assert_allclose(clip.depth, ep.depth)
    np.testing.assert_allclose(clip.w2c, ep.w2c)
    assert clip.instructions == ep.instructions


def test_stride_max_frames_and_resize_follow_the_paper(tmp_path):
    write_episode(tmp_path / "ep", synthetic_episode(T=30, H=48, W=64))
    item = discover(tmp_path)[0]
    clip = load_clip(item, SourceConfig(stride=2, max_frames=12, max_size=32))
    assert clip.num_frames == 12 and list(clip.frame_index) == list(range(0, 24, 2))
    assert (clip.height, clip.width) == (24, 32) and clip.depth.shape == (12, 24, 32)
    assert clip.K[0, 0, 0] == pytest.approx(synthetic_episode(H=48, W=64).K[0, 0, 0] / 2)
    assert list(clip.gt.query_frames) == [0, 5, 10]  # queries at source frames 0, 10, 20 survive the stride
    assert frame_stride(200, SourceConfig(stride=0, max_frames_per_video=50)) == 4  # --fps 0: ceil(200 / 50)


def test_video_with_png_depth_and_intrinsics(tmp_path):
    rgb, depth, _ = occluder_clip(T=12)
    write_video(tmp_path / "clip.mp4", rgb, 10.0)
    write_depth_pngs(tmp_path / "depth", depth)
    (tmp_path / "K.json").write_text(json.dumps({"fx": 100.0, "fy": 100.0, "cx": 63.5, "cy": 47.5}))
    cfg = SourceConfig(depth_path=str(tmp_path / "depth"), intrinsics=str(tmp_path / "K.json"))
    items = discover(tmp_path / "clip.mp4", cfg)
    assert [(i.name, i.kind) for i in items] == [("clip", "video")]
    clip = load_clip(items[0], cfg)
    assert clip.fps == pytest.approx(10.0) and clip.rgb.shape == (12, 96, 128, 3)
    np.testing.assert_allclose(clip.depth, depth, atol=1e-4)
    assert clip.K.shape == (12, 3, 3) and clip.K[0, 0, 2] == 63.5 and clip.w2c is None


def test_official_scan_depths_and_per_clip_depth(tmp_path):
    rgb, depth, _ = occluder_clip(T=8)
    root = tmp_path / "videos"
    write_video(root / "a.mp4", rgb, 10.0)
    write_frames(root / "b", rgb)
    np.savez(tmp_path / "depth_b.npz", depth=depth)
    (tmp_path / "depths").mkdir()
    np.savez(tmp_path / "depths" / "b.npz", depth=depth)
    items = discover(root, SourceConfig(depth_path=str(tmp_path / "depths")))
    assert [(i.name, i.kind) for i in items] == [("a", "video"), ("b", "frames")]
    assert items[1].depth.endswith("b.npz")
    assert load_clip(items[1], SourceConfig()).num_frames == 8
    assert [i.name for i in discover(tmp_path, SourceConfig(scan_depth=2))] == ["videos_a", "videos_b"]
    assert [i.name for i in discover(root / "b", SourceConfig(scan_depth=0))] == ["b"]


def test_lerobot_camera_and_episode_selection(tmp_path):
    root = write_v3(tmp_path / "lr")
    items = discover(root, SourceConfig(camera_key=FRONT, episodes=(0, 2)))
    assert [i.index for i in items] == [0, 2] and items[0].kind == "lerobot"
    clip = load_clip(items[1], SourceConfig(camera_key=FRONT))
    assert clip.num_frames == LENGTHS[2] and clip.instructions[0] in TASKS and clip.K is None
    with pytest.raises(DataError, match="out of range"):
        discover(root, SourceConfig(episodes=(7,)))
    with pytest.raises(DataError, match="unknown camera"):
        discover(root, SourceConfig(camera_key="nope"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[:, :50], "does not match the frames"),
        (lambda d: np.where(d > 1.5, np.nan, d), "NaN"),
        (lambda d: d[:-3], "missing or extra depth frames"),
    ],
)
def test_bad_depth_is_a_clip_error(tmp_path, damage, message):
    rgb, depth, _ = occluder_clip(T=8)
    write_video(tmp_path / "clip.mp4", rgb, 10.0)
    np.savez(tmp_path / "depth.npz", depth=damage(depth))
    cfg = SourceConfig(depth_path=str(tmp_path / "depth.npz"))
    with pytest.raises(ClipError, match=message):
        load_clip(discover(tmp_path / "clip.mp4", cfg)[0], cfg)


def test_corrupt_video_and_empty_folder(tmp_path):
    rgb, _, _ = occluder_clip(T=8)
    write_video(tmp_path / "clip.mp4", rgb, 10.0)
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "clip.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(ClipError, match="clip.mp4"):
        load_clip(discover(tmp_path / "clip.mp4")[0])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips found"):
        discover(tmp_path / "empty")


def test_config_round_trip_and_validation(tmp_path):
    cfg = ForgeConfig(source=SourceConfig(episodes=(1, 2), stride=3))
    cfg.save(tmp_path / "c.json")
    assert ForgeConfig.load(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match="unknown camera"):
        ForgeConfig.from_dict({"camera": {"kind": "magic"}})
    with pytest.raises(ValueError, match="unknown setting"):
        ForgeConfig.from_dict({"tracker": {"speed": 3}})
