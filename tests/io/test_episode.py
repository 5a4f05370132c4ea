import json
import os

import numpy as np
import pytest

from tracegen.errors import DataError
from tracegen.io.episode import read_episode, read_episode_meta, write_episode
from tracegen.io.files import atomic_dir, recover_dir, save_json
from tracegen.io.video import read_video, write_video


def smooth_frames(T=12, H=32, W=48):
    """Frames a video codec keeps nearly intact (smooth gradients + a moving square)."""
    v, u = np.mgrid[0:H, 0:W]
    frames = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        frames[t, ..., 0] = (4 * u) % 256
        frames[t, ..., 1] = (5 * v) % 256
        frames[t, 8:16, 2 * t : 2 * t + 8, 2] = 255
    return frames


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_video_round_trip_both_codecs(tmp_path, codec):
    frames = smooth_frames()
    write_video(tmp_path / "v.mp4", frames, fps=10, codec=codec)
    back = read_video(tmp_path / "v.mp4", expected_frames=len(frames))
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 6


@pytest.mark.parametrize("size", [64, 160, 224])
def test_the_same_frames_give_the_same_video_bytes(tmp_path, size):
    """Reruns must write byte-identical episodes: libx264's threads and macroblock-tree rate control did not."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    waves = [np.sin(xx / 7 + t / 3) + np.cos(yy / 5 - t / 4) for t in range(30)]
    grey = np.stack([60 * w + 128 + rng.normal(0, 8, w.shape) for w in waves]).clip(0, 255).astype(np.uint8)
    frames = np.repeat(grey[..., None], 3, -1)
    files = [tmp_path / f"{k}.mp4" for k in range(3)]
    for f in files:
        write_video(f, frames, fps=10)
    assert files[0].read_bytes() == files[1].read_bytes() == files[2].read_bytes()


def test_episode_round_trip(tmp_path, episode):
    episode.rgb = smooth_frames(episode.num_frames, episode.height, episode.width)
    write_episode(tmp_path / "ep", episode)
    back = read_episode(tmp_path / "ep")
    np.testing.assert_array_equal(back.depth, episode.depth)  # loss-free
    np.testing.assert_array_equal(back.K, episode.K)
    np.testing.assert_array_equal(back.w2c, episode.w2c)
    np.testing.assert_array_equal(back.gt.point_local, episode.gt.point_local)
    np.testing.assert_array_equal(back.gt.visibility, episode.gt.visibility)
    assert back.instructions == episode.instructions and back.meta == episode.meta
    assert np.abs(back.rgb.astype(int) - episode.rgb).mean() < 6
    meta = read_episode_meta(tmp_path / "ep")
    assert meta["has_gt_tracks"] and meta["num_frames"] == episode.num_frames


def test_ground_truth_is_exact_in_the_reference_camera(episode):
    uvz, vis = episode.gt_reference_tracks(1)  # query frame 5
    from tracegen.traces import grid_points

    np.testing.assert_allclose(uvz[:, 0, :2], grid_points(episode.height, episode.width), atol=1e-9)
    moving = np.ptp(uvz[:, :, 0], axis=1) > 0
    assert moving.sum() == 200 and vis.all()  # the left half slides, the right half stays


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "ep") as tmp:
        (tmp / "episode.json").write_text("{}")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_keeps_a_whole_copy_through_a_replacement(tmp_path):
    for content in ("one", "two"):
        with atomic_dir(tmp_path / "state") as tmp:
            (tmp / "step").write_text(content)
    assert (tmp_path / "state" / "step").read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == [
        "state"
    ]
    (tmp_path / "state").rename(tmp_path / ".old-state")  # killed between the two renames of the next replacement
    recover_dir(tmp_path / "state")
    assert (tmp_path / "state" / "step").read_text() == "two" and not (tmp_path / ".old-state").exists()
    recover_dir(tmp_path / "state")  # nothing to do: path whole
    assert (tmp_path / "state" / "step").read_text() == "two"


def test_half_written_episode_is_not_accepted(tmp_path, episode):
    write_episode(tmp_path / "ep", episode)
    (tmp_path / "ep" / "depth.npz").unlink()
    with pytest.raises(DataError, match="depth.npz"):
        read_episode(tmp_path / "ep")


# --- bad input


@pytest.fixture
def written(tmp_path, episode):
    return write_episode(tmp_path / "ep", episode)


def _edit_meta(path, **changes):
    meta = json.loads((path / "episode.json").read_text())
    meta.update(changes)
    (path / "episode.json").write_text(json.dumps(meta))


def test_truncated_video(written):
    data = (written / "rgb.mp4").read_bytes()
    (written / "rgb.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"rgb\.mp4"):
        read_episode(written)


def test_zero_frame_video(written):
    (written / "rgb.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"rgb\.mp4"):
        read_episode(written)


def test_frame_count_mismatch(written):
    _edit_meta(written, num_frames=99)
    with pytest.raises(DataError, match="99 were expected"):
        read_episode(written)


def test_unknown_format_version(written):
    _edit_meta(written, format_version=99)
    with pytest.raises(DataError, match="unknown tracegen-episode format version 99"):
        read_episode(written)


def test_corrupt_json(written):
    (written / "episode.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_episode(written)


@pytest.mark.parametrize(
    "depth_edit, message",
    [
        (lambda d: d[:, :-1], "does not match the RGB"),
        (lambda d: np.where(d > 0, np.nan, d), "non-finite"),
        (lambda d: -d, "negative"),
    ],
    ids=["wrong-size", "nan", "negative"],
)
def test_bad_depth(written, depth_edit, message):
    depth = np.load(written / "depth.npz")["depth"]
    np.savez(written / "depth.npz", depth=depth_edit(depth).astype(np.float32))
    with pytest.raises(DataError, match=message) as err:
        read_episode(written)
    assert "depth.npz" in str(err.value)


def test_missing_intrinsics(written):
    (written / "cameras.npz").unlink()
    with pytest.raises(DataError, match=r"cameras\.npz: file not found"):
        read_episode(written)


def test_intrinsics_without_focal_length_and_non_rigid_extrinsics(written):
    cams = dict(np.load(written / "cameras.npz"))
    bad_K = cams["K"].copy()
    bad_K[:, 0, 0] = 0
    np.savez(written / "cameras.npz", K=bad_K, w2c=cams["w2c"])
    with pytest.raises(DataError, match="focal"):
        read_episode(written)
    bad_w2c = cams["w2c"].copy()
    bad_w2c[:, :3, :3] *= 2
    np.savez(written / "cameras.npz", K=cams["K"], w2c=bad_w2c)
    with pytest.raises(DataError, match="proper rotations"):
        read_episode(written)


def test_corrupt_and_pickled_npz(written):
    (written / "cameras.npz").write_bytes(b"garbage" * 10)
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_episode(written)
    np.savez(written / "cameras.npz", K=np.array([{"a": 1}], dtype=object), w2c=np.zeros(1))
    with pytest.raises(DataError, match="pickled object array"):
        read_episode(written)


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    """Files and folders written atomically are readable by others as plain writes would be (umask 022)."""
    old = os.umask(0o022)
    try:
        save_json(tmp_path / "a.json", {"x": 1})
        with atomic_dir(tmp_path / "d") as d:
            (d / "f.txt").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755
