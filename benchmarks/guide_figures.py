"""The concepts figure of docs/GUIDE.md, from one simulated demonstration and the trace-space code itself.

    MUJOCO_GL=egl python benchmarks/guide_figures.py --out docs/guide

Records one Meta-World door-open demonstration (Sawyer, ``corner3``, 192 x 192, exact ground truth), takes the query
grid of one reference frame, and draws ``concepts.png``:

1. the 20 x 20 query grid on the reference image;
2. the trace: every point's first 33 retargeted steps, ``(u, v)`` in the reference camera (moving points only);
3. speed retargeting of one track (the fastest point): the same motion played at normal speed and twice as fast
   has a different number of video frames (left), but after :func:`tracegen.traces.retarget` the two give the same
   steps (right).
Prints the numbers drawn (frames, valid retargeted steps, the largest difference between the two retargeted tracks).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tracegen.io.episode import read_episode  # noqa: E402
from tracegen.sim.recorder import CorpusEntry, RecordConfig, record_group  # noqa: E402
from tracegen.traces import DEFAULT_HORIZON, grid_points, retarget  # noqa: E402

SIZE = 192
MOVING_PX = 2.0  # a point "moves" when its trace leaves this radius (the benchmarks' definition)


def record(out: Path) -> Path:
    """One successful door-open demonstration with exact ground truth; returns its episode folder."""
    cfg = RecordConfig(height=SIZE, width=SIZE)
    result = record_group(CorpusEntry("metaworld", "door-open", "sawyer", ("corner3",), 1, 1000), out, cfg)
    if result.written + result.skipped != 1:
        raise SystemExit(f"recording failed: {result.error}")
    return next(p for p in out.iterdir() if p.is_dir())


def pick_query(ep) -> int:
    """The query grid with the most moving points (the demonstration's busiest reference frame)."""
    counts = []
    for q in range(len(ep.gt.query_frames)):
        uvz, _ = ep.gt_reference_tracks(q)
        counts.append(int((np.linalg.norm(uvz[..., :2] - uvz[:, :1, :2], axis=-1).max(1) > MOVING_PX).sum()))
    return int(np.argmax(counts))


def draw(ep, q: int, path: Path) -> dict[str, float]:
    frame = int(ep.gt.query_frames[q])
    image = ep.rgb[frame]
    H, W = image.shape[:2]
    uvz, _ = ep.gt_reference_tracks(q)  # (N, T - frame, 3): exact (u, v, z) in the reference camera
    uvz = uvz[:, :128]  # a window of at most 128 frames, as TraceForge's
    on = ep.gt.point_body[q] >= 0  # grid points on a surface (the rest hit nothing)
    uvz = np.where(on[:, None, None], uvz, uvz[:, :1])  # background points: no track; keep them static
    trace = retarget(uvz, H, W)
    steps = min(trace.num_valid, DEFAULT_HORIZON + 1)
    traj = trace.traj[:, :steps]
    moving = np.linalg.norm(traj[..., :2] - traj[:, :1, :2], axis=-1).max(1) > MOVING_PX
    colours = plt.cm.hsv(np.linspace(0, 0.9, len(traj)))  # row-major rainbow over the grid

    fast = uvz[:, ::2]  # the same motion, twice as fast: every second frame
    slow_r, fast_r = retarget(uvz, H, W), retarget(fast, H, W)
    n = int(np.argmax(np.linalg.norm(uvz[:, -1, :2] - uvz[:, 0, :2], axis=-1)))  # the point that travels farthest
    common = min(slow_r.num_valid, fast_r.num_valid)
    diff_px = float(np.abs(slow_r.traj[n, :common, :2] - fast_r.traj[n, :common, :2]).max())

    fig = plt.figure(figsize=(13.2, 3.6), dpi=80)
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1.15, 1.15]})
    grid = grid_points(H, W, ep.gt.grid)
    axes[0].imshow(image)
    axes[0].scatter(grid[:, 0], grid[:, 1], s=4, c=colours, linewidths=0)
    axes[0].set_title(f"query grid {ep.gt.grid}×{ep.gt.grid} on the reference image", fontsize=9)
    axes[1].imshow((image * 0.55).astype(np.uint8))
    for k in np.flatnonzero(moving):
        axes[1].plot(traj[k, :, 0], traj[k, :, 1], "-", color=colours[k], lw=1)
        axes[1].plot(traj[k, -1, 0], traj[k, -1, 1], "o", color=colours[k], ms=2)
    axes[1].set_title(f"trace: {steps} steps of {int(moving.sum())} moving points", fontsize=9)
    for ax in axes[:2]:
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])

    def displacement(track: np.ndarray) -> np.ndarray:
        return np.linalg.norm(track[:, :2] - track[:1, :2], axis=-1)

    axes[2].plot(displacement(uvz[n]), ".-", ms=3, lw=0.8, label=f"normal speed ({uvz.shape[1]} frames)")
    axes[2].plot(displacement(fast[n]), ".-", ms=3, lw=0.8, label=f"twice as fast ({fast.shape[1]} frames)")
    axes[2].set_xlabel("video frame")
    axes[2].set_title("before retargeting: one track, two speeds", fontsize=9)
    axes[3].plot(displacement(slow_r.traj[n, : slow_r.num_valid]), "o-", ms=4, lw=0.8, label="normal speed")
    axes[3].plot(displacement(fast_r.traj[n, : fast_r.num_valid]), "x--", ms=5, lw=0.8, label="twice as fast")
    axes[3].set_xlabel("retargeted step (0.05 normalised units of arc)")
    axes[3].set_title("after retargeting: the same steps", fontsize=9)
    for ax in axes[2:]:
        ax.set_ylabel("distance from start (px)")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"door-open, Sawyer, corner3, reference frame {frame}: exact ground truth through tracegen.traces", fontsize=10
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return {
        "reference_frame": frame,
        "window_frames": uvz.shape[1],
        "fast_frames": fast.shape[1],
        "steps_normal": slow_r.num_valid,
        "steps_fast": fast_r.num_valid,
        "max_diff_px": round(diff_px, 2),
        "moving_points": int(moving.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/guide"))
    ap.add_argument("--episodes", type=Path, help="Record into (or reuse) this folder instead of a temporary one.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ep = read_episode(record(args.episodes or Path(tmp)))
        stats = draw(ep, pick_query(ep), args.out / "concepts.png")
    print(stats, f"{(args.out / 'concepts.png').stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
