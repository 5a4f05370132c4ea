import numpy as np
import pytest
import torch

from tracegen import traces as tr
from tracegen.geometry import intrinsics, look_at, pixels_to_world, world_to_pixels

H = W = 101  # normalised arc units: 1 px = 1 / (W - 1) = 0.01


def moving_scene(T=21, px_per_frame=2.0, movers=8, z=1.0):
    """The 20x20 grid; the first ``movers`` tracks move right at constant speed, the rest stay put."""
    start = tr.grid_points(H, W)
    traj = np.repeat(np.concatenate([start, np.full((400, 1), z)], -1)[:, None], T, 1)
    traj[:movers, :, 0] += px_per_frame * np.arange(T)
    return traj


def test_grid_is_row_major_over_the_whole_image():
    g = tr.grid_points(48, 64, 20)
    assert g.shape == (400, 2)
    np.testing.assert_allclose(g[0], [0, 0])
    np.testing.assert_allclose(g[19], [63, 0])  # first row runs along u
    np.testing.assert_allclose(g[20], [0, 47 / 19])
    np.testing.assert_allclose(g[-1], [63, 47])


def test_retarget_constant_speed_by_hand():
    # 8 movers = ceil(2 % of 400) -> robust speed 0.02 / frame; 20 segments -> arc 0.4 -> 9 targets 0.05 apart,
    # i.e. every 2.5 frames, i.e. every 5 px.
    out = tr.retarget(moving_scene(), H, W)
    assert out.traj.shape == (400, 128, 3) and out.num_valid == 9
    assert out.valid_steps[:9].all() and not out.valid_steps[9:].any()
    np.testing.assert_allclose(out.traj[0, :9, 0], 5.0 * np.arange(9), atol=1e-9)
    np.testing.assert_allclose(out.traj[0, 9:, 0], 40.0)  # padding repeats the last valid point
    np.testing.assert_allclose(out.traj[100], out.traj[100, :1].repeat(128, 0))  # static points stay put


def test_retarget_is_speed_invariant_and_skips_pauses():
    fast = tr.retarget(moving_scene(T=11, px_per_frame=4.0), H, W)
    slow = tr.retarget(moving_scene(T=41, px_per_frame=1.0), H, W)
    np.testing.assert_allclose(fast.traj, slow.traj, atol=1e-9)
    paused = moving_scene(T=21)
    paused = np.concatenate([paused[:, :11], np.repeat(paused[:, 10:11], 10, 1), paused[:, 11:]], 1)
    np.testing.assert_allclose(tr.retarget(paused, H, W).traj, tr.retarget(moving_scene(T=21), H, W).traj, atol=1e-9)


def test_retarget_cap_and_fixed_count_mode():
    long = moving_scene(T=401, px_per_frame=0.0)
    long[:8, :, 2] += 0.02 * np.arange(401)  # 2 cm / frame in depth: arc 8.0 -> 161 targets, capped at 128
    long = tr.retarget(long, H, W)
    assert long.num_valid == 128 and long.valid_steps.all()
    capped = tr.retarget(moving_scene(T=21), H, W, tr.RetargetConfig(max_steps=4))
    assert capped.traj.shape[1] == 4 and capped.num_valid == 4
    fixed = tr.retarget(moving_scene(T=21), H, W, tr.RetargetConfig(mode="fixed_count", num_points=5))
    np.testing.assert_allclose(fixed.traj[0, :, 0], [0, 10, 20, 30, 40], atol=1e-9)
    assert fixed.valid_steps.all()


def test_static_scene_gives_one_step_and_is_filtered():
    out = tr.retarget(moving_scene(px_per_frame=0.0), H, W)
    assert out.num_valid == 1
    assert "too few valid steps" in tr.official_filter_reason(out.traj, out.valid_steps, H, W)


def test_two_dimensional_traces_retarget_in_uv():
    out = tr.retarget(moving_scene()[..., :2], H, W)
    assert out.traj.shape == (400, 128, 2) and out.num_valid == 9


def test_moving_camera_over_static_world_is_static_after_compensation():
    T, rng = 15, np.random.default_rng(1)
    K = intrinsics(300, 300, 160, 120)
    w2c = np.stack([look_at([0.05 * t, 0.02 * t, -2.0], [0.0, 0.0, 0.0], up=[0, -1, 0]) for t in range(T)])
    X = rng.uniform(-0.5, 0.5, (50, 3))  # static world points
    seen = np.stack([world_to_pixels(X, K, w2c[t]) for t in range(T)], 1)  # (N, T, 3) each frame's own camera
    assert np.ptp(seen[..., 0], axis=1).max() > 10  # the camera motion is visible in the raw tracks
    ref = tr.compensate(seen, np.repeat(K[None], T, 0), w2c)
    np.testing.assert_allclose(ref, np.repeat(seen[:, :1], T, 1), atol=1e-9)
    out = tr.retarget(ref, 240, 320)
    assert out.num_valid == 1  # nothing moves


def test_world_to_reference_moves_with_the_object_only():
    K = intrinsics(100, 100, 50, 50)
    w2c = look_at([0, 0, -1], [0, 0, 0], up=[0, -1, 0])
    X0 = pixels_to_world(np.array([[50.0, 50.0, 1.0]]), K, w2c)
    X = np.stack([X0 + [0.01 * t, 0, 0] for t in range(5)], 1)  # (1, 5, 3) moving 1 cm / step along world x
    uvz = tr.world_to_reference(X, K, w2c)
    np.testing.assert_allclose(np.abs(np.diff(uvz[0, :, 0])), 1.0, atol=1e-9)  # 1 cm at 1 m with f = 100 -> 1 px


def test_encode_by_hand_and_decode_exactly():
    L = 32
    traj = np.zeros((4, L + 1, 3))
    traj[..., 0] = 10 + 2.0 * np.arange(L + 1)  # 2 px/step on W=100 -> 0.02 -> 0.4 after / 0.05
    traj[..., 1] = 20 - 1.0 * np.arange(L + 1)  # -1 px/step on H=50 -> -0.02 -> -0.4
    traj[..., 2] = 1 + 0.01 * np.arange(L + 1)  # 1 cm/step -> 0.25 after / 0.04
    valid = np.ones(L + 1, bool)
    x, mask = tr.encode_deltas(traj, valid, height=50, width=100)
    assert x.shape == (4, L, 3) and x.dtype == np.float32 and mask.all()
    np.testing.assert_allclose(x[0, 0], [0.4, -0.4, 0.25], atol=1e-6)
    back = tr.decode_deltas(x.astype(np.float64), traj[:, 0, :2], traj[:, 0, 2], height=50, width=100)
    np.testing.assert_allclose(back, traj, atol=1e-5)


def test_encode_masks_invalid_steps_clamps_and_pads():
    traj = np.zeros((4, 6, 3))
    traj[..., 0] = 10.0 * np.arange(6)  # 10 px/step on W=100 -> 2.0 -> clamped to 1
    valid = np.array([1, 1, 1, 0, 0, 0], bool)
    x, mask = tr.encode_deltas(traj, valid, height=100, width=100, horizon=8)
    assert x.shape == (4, 8, 3)
    np.testing.assert_allclose(x[0, :, 0], [1, 1, 0, 0, 0, 0, 0, 0])  # zero increments after the valid steps
    np.testing.assert_array_equal(mask[0, :, 0], [1, 1, 0, 0, 0, 0, 0, 0])


def test_two_dimensional_encoding_masks_z_and_decodes_nan_depth():
    traj = moving_scene(T=33)[..., :2]
    x, mask = tr.encode_deltas(traj, np.ones(33, bool), H, W)
    assert not mask[..., 2].any() and (x[..., 2] == 0).all() and mask[..., :2].all()
    back = tr.decode_deltas(x, traj[:, 0], None, H, W)
    assert np.isnan(back[..., 2]).all()
    np.testing.assert_allclose(back[..., :2], traj, atol=1e-4)


def test_decode_works_on_torch_batches():
    x = torch.zeros(2, 400, 32, 3)
    x[..., 0] = 0.5
    start = torch.tensor(tr.grid_points(H, W))[None].repeat(2, 1, 1)
    out = tr.decode_deltas(x, start, torch.ones(2, 400, dtype=torch.float64), H, W)
    assert out.shape == (2, 400, 33, 3)
    np.testing.assert_allclose(out[0, 0, -1, 0].item(), 32 * 0.5 * 0.05 * W)


def test_official_filter_motion_threshold_by_hand():
    traj = np.zeros((4, 10, 3))
    valid = np.ones(10, bool)
    traj[0, :, 0] = np.linspace(0, 9, 10)  # 9 px over W=100 -> 0.09 of the image: not enough
    assert "no track moves" in tr.official_filter_reason(traj, valid, 100, 100)
    traj[0, :, 0] = np.linspace(0, 11, 10)  # 0.11
    assert tr.official_filter_reason(traj, valid, 100, 100) is None
    valid[4:] = False  # only the valid steps count: 11 * 3/9 px -> 0.037
    assert tr.official_filter_reason(traj, valid, 100, 100) is not None


def test_retarget_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        tr.retarget(np.full((4, 5, 3), np.nan), H, W)
    with pytest.raises(ValueError, match="shape"):
        tr.retarget(np.zeros((4, 5)), H, W)


def literal_official_retarget(traj, height, width, step=0.05, cap=128, top=0.02):
    """A loop-by-loop transcription of the official pseudo-code (PAPER.md §3.6), to check the vectorised version."""
    n = traj.astype(np.float64).copy()
    n[..., 0] = np.clip(n[..., 0] / (width - 1), 0, 1)
    n[..., 1] = np.clip(n[..., 1] / (height - 1), 0, 1)
    N, T, _ = n.shape
    k = int(np.ceil(top * N))
    r = [np.mean(sorted(np.linalg.norm(n[:, t + 1] - n[:, t], axis=-1))[-k:]) for t in range(T - 1)]
    s = [0.0]
    for x in r:
        s.append(s[-1] + x)
    count = min(int(np.floor(s[-1] / step)) + 1, cap)
    out = np.zeros((N, count, n.shape[-1]))
    for j in range(count):
        target = min(step * j, s[-1])
        idx = min(max(max(i for i in range(T) if s[i] <= target), 0), T - 2)
        alpha = (target - s[idx]) / r[idx] if r[idx] > 0 else 0.0
        out[:, j] = n[:, idx] + alpha * (n[:, idx + 1] - n[:, idx])
    out[..., 0] *= width - 1
    out[..., 1] *= height - 1
    return out


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_retarget_matches_the_official_pseudo_code(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(2, 60))
    traj = np.cumsum(rng.normal(0, 1.5, (400, T, 3)) * [1, 1, 0.01], axis=1) + [50, 50, 1]
    traj[rng.random(400) < 0.8] = traj[:1, :1]  # most of the scene static, as in real clips
    ours = tr.retarget(traj, H, W)
    ref = literal_official_retarget(traj, H, W)
    assert ours.num_valid == ref.shape[1]
    np.testing.assert_allclose(ours.traj[:, : ours.num_valid], ref, atol=1e-9)


def test_restore_speed_gives_a_shrunken_trace_the_retargeted_speed_and_leaves_slow_steps():
    # a retargeted trace of 8 movers (the fastest 2 %): 5 px = 0.05 units per step; then shrunk to 40 % (a blurred
    # prediction), with a tail of steps at 5 % of the speed (the motion's end)
    exact = tr.retarget(moving_scene(), H, W).traj[:, :9]  # 9 valid points
    shrunk = exact[:, :1] + 0.4 * (exact - exact[:, :1])
    tail = shrunk[:, -1:] + 0.05 * (exact[:, 1:4] - exact[:, :1])
    given = np.concatenate([shrunk, tail], 1)
    restored = tr.restore_speed(given, H, W)
    np.testing.assert_allclose(restored[:, :9], exact, atol=1e-9)  # every moving step back to 0.05 units
    np.testing.assert_allclose(np.diff(restored[:, 8:], axis=1), np.diff(given[:, 8:], axis=1), atol=1e-9)  # tail
    given[10:, :, 2] = np.nan  # points without depth: their z stays unknown, the rest is restored the same
    partly = tr.restore_speed(given, H, W)
    np.testing.assert_allclose(partly[:, :9, :2], exact[:, :9, :2], atol=1e-9)
    assert np.isnan(partly[10:, :, 2]).all() and np.isfinite(partly[:10]).all()
    still = np.repeat(exact[:, :1], 5, 1)
    np.testing.assert_array_equal(tr.restore_speed(still, H, W), still)  # nothing moves: nothing changes


def noisy_line(T=60, noise=0.8, seed=0):
    """50 tracks at constant velocity (1.5, 0.5) px / frame, z 1 m, and the same tracks with Gaussian jitter (px)."""
    rng = np.random.default_rng(seed)
    clean = np.zeros((50, T, 3))
    clean[..., 0] = 10 + 1.5 * np.arange(T)
    clean[..., 1] = 20 + 0.5 * np.arange(T)
    clean[..., 2] = 1.0
    noisy = clean + rng.normal(0, noise, clean.shape) * [1, 1, 0]
    noisy[:, 0] = clean[:, 0]  # the query point is exact
    return clean, noisy


def arc_px(traj):
    """Summed frame-to-frame path length of all tracks, pixels."""
    return np.linalg.norm(np.diff(traj[..., :2], axis=1), axis=-1).sum()


def test_smoothing_removes_the_arc_length_jitter_adds_and_keeps_the_query_point():
    clean, noisy = noisy_line()
    smooth = tr.smooth_tracks(noisy, 2.0)
    assert arc_px(noisy) > 1.2 * arc_px(clean)  # jitter inflates the arc
    assert abs(arc_px(smooth) / arc_px(clean) - 1) < 0.03
    np.testing.assert_array_equal(smooth[:, 0], noisy[:, 0])  # exactly, not up to rounding
    np.testing.assert_array_equal(smooth[:, -1], noisy[:, -1])
    assert np.abs(smooth - clean).max() < np.abs(noisy - clean).max()
    np.testing.assert_allclose(tr.smooth_tracks(clean, 2.0), clean, atol=1e-9)  # constant velocity, ends too


def test_smoothing_keeps_missing_samples_missing_and_bridges_them():
    clean, _ = noisy_line(T=30)
    given = clean.copy()
    given[1, 10:15] = np.nan  # an occlusion
    given[2, :3] = np.nan  # a late start
    given[3] = np.nan  # no track at all
    given[4, -1, 2] = np.inf  # one bad coordinate
    out = tr.smooth_tracks(given, 2.0)
    missing = ~np.isfinite(given).all(-1)
    np.testing.assert_array_equal(out[missing], given[missing])  # as they were
    np.testing.assert_allclose(out[1, ~missing[1]], clean[1, ~missing[1]], atol=1e-9)  # the line bridges the gap
    assert np.isfinite(out[~missing]).all()


def test_smoothing_with_sigma_zero_or_one_frame_is_the_identity():
    _, noisy = noisy_line(T=20)
    noisy[0, 5] = np.nan
    np.testing.assert_array_equal(tr.smooth_tracks(noisy, 0.0), noisy)
    np.testing.assert_array_equal(tr.smooth_tracks(noisy[:, :1], 2.0), noisy[:, :1])
    two = tr.smooth_tracks(noisy[:, 1:3], 2.0)  # two frames: both are end points
    np.testing.assert_array_equal(two, noisy[:, 1:3])
