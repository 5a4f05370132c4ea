"""``save_npz``: numpy's .npz layout, deflated at a fast level, byte-identical on every write."""

import io
import zipfile
import zlib

import numpy as np

from tracegen.io.files import describe_changes, load_npz, save_npz


def deflated_size(data: bytes, level: int) -> int:
    c = zlib.compressobj(level, zlib.DEFLATED, -15)  # raw deflate, as in zip members
    return len(c.compress(data) + c.flush())


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_npz_is_deflated_at_the_fast_level_and_rewritten_byte_identically(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"traj": np.cumsum(rng.normal(0, 1, (50, 40, 3)), 1).astype(np.float32), "ok": np.ones(9, bool)}
    save_npz(tmp_path / "a.npz", **arrays)
    save_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = load_npz(tmp_path / "a.npz")
    assert all(np.array_equal(back[k], v) for k, v in arrays.items())
    with zipfile.ZipFile(tmp_path / "a.npz") as zf:
        info = zf.getinfo("traj.npy")
    data = npy_bytes(arrays["traj"])
    assert deflated_size(data, 1) != deflated_size(data, 6)  # the levels are told apart on this array
    assert info.compress_size == deflated_size(data, 1) and info.date_time == (1980, 1, 1, 0, 0, 0)


def test_uncompressed_npz_is_numpys_own(tmp_path):
    arrays = {"x": np.arange(12.0).reshape(3, 4), "s": np.array("text")}
    save_npz(tmp_path / "u.npz", compress=False, **arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    assert (tmp_path / "u.npz").read_bytes() == buf.getvalue()


def test_describe_changes_names_nested_added_and_removed_keys():
    before = {"window": {"grid": 20, "smooth_frames": 2.0}, "workers": 1, "old": True}
    after = {"window": {"grid": 20, "smooth_frames": 0.0}, "workers": 1, "new": 3}
    assert describe_changes(before, after) == "new: None -> 3, old: True -> None, window.smooth_frames: 2.0 -> 0.0"
    assert describe_changes(before, before) == ""
