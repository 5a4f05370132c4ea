"""The pictures of docs/SIM.md: exact ground-truth tracks, embodiment variants, upright corner cameras.

    MUJOCO_GL=egl python benchmarks/sim_pictures.py --out docs/sim

* ``tracks_<suite>_<task>_<embodiment>_<camera>.png``: one successful episode per (task, embodiment or arm) at
  224 x 224; left the first frame with the query grid, right the last frame with every point's visible track.
  Prints each episode's frame-0 reprojection error, the fraction of grid points on a surface and the fraction
  of those visible at the last frame.
* ``embodiments.png``: the same Meta-World state seen with each embodiment variant.
* ``corner_cameras.png``: Meta-World's corner cameras as defined (top) and re-aimed upright (bottom).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np

from tracegen.io.episode import Episode, read_episode
from tracegen.sim.cameras import model_camera
from tracegen.sim.env import make_env
from tracegen.sim.recorder import CorpusEntry, RecordConfig, episode_name, record_group
from tracegen.traces import grid_points

PICTURES = (
    [("metaworld", "drawer-open", e, "corner3") for e in ("sawyer", "floating_gripper", "hand")]
    + [("metaworld", "door-open", "sawyer", "corner")]
    + [
        ("robosuite", t, r, "agentview")
        for t, r in (
            ("Lift", "Panda"),
            ("Stack", "Sawyer"),
            ("Door", "IIWA"),
            ("PickPlaceCan", "UR5e"),
            ("Lift", "Jaco"),
            ("Door", "Kinova3"),
        )
    ]
)


def overlay(ep: Episode, q: int = 0) -> tuple[np.ndarray, dict[str, float]]:
    """First and last frame with query ``q``'s tracks side by side, and statistics of the tracks."""
    uvz, vis = ep.gt_reference_tracks(q)  # (N, T', 3), (N, T')
    on = ep.gt.point_body[q] >= 0
    grid = grid_points(ep.height, ep.width, ep.gt.grid)
    first = np.ascontiguousarray(ep.rgb[int(ep.gt.query_frames[q])])
    last = np.ascontiguousarray(ep.rgb[-1])
    hsv = cv2.applyColorMap(np.linspace(0, 255, len(uvz)).astype(np.uint8), cv2.COLORMAP_HSV)[:, 0, ::-1]
    for n in np.flatnonzero(on):
        colour = tuple(int(c) for c in hsv[n])
        pts = [tuple(int(round(c)) for c in p[:2]) for p, v in zip(uvz[n], vis[n], strict=True) if v]
        if vis[n, 0]:
            cv2.circle(first, pts[0], 2, colour, -1, cv2.LINE_AA)
        for a, b in zip(pts[:-1], pts[1:], strict=False):
            cv2.line(last, a, b, colour, 1, cv2.LINE_AA)
        if vis[n, -1]:
            cv2.circle(last, pts[-1], 2, colour, -1, cv2.LINE_AA)
    stats = {
        "frame-0 reprojection error (px)": float(np.abs(uvz[on, 0, :2] - grid[on]).max()),
        "points on a surface": float(on.mean()),
        "visible at the last frame": float(vis[on, -1].mean()),
    }
    return np.concatenate([first, last], 1), stats


def save(path: Path, rgb: np.ndarray, colours: int = 192) -> None:
    """A small palette PNG (the pictures live in the repository)."""
    from PIL import Image

    Image.fromarray(rgb).quantize(colours, dither=Image.Dither.NONE).save(path, optimize=True)


def embodiments(out: Path, size: int = 192) -> None:
    images = []
    for name in ("sawyer", "floating_gripper", "hand"):
        with make_env("metaworld", "pick-place", name, size, size) as env:
            env.reset(1)
            for _ in range(25):
                env.step(env.expert_action())
            images.append(env.render("corner3", depth=False).rgb)
    save(out / "embodiments.png", np.concatenate(images, 1))


def corner_cameras(out: Path, size: int = 160) -> None:
    with make_env("metaworld", "drawer-open", "sawyer", size, size) as env:
        env.reset(0)
        cams = ("corner", "corner2", "corner3")
        as_defined = [env.render(c, depth=False, pose=model_camera(env.model, env.data, c)).rgb for c in cams]
        upright = [env.render(c, depth=False).rgb for c in cams]
    rows = [np.concatenate(as_defined, 1), np.concatenate(upright, 1)]
    save(out / "corner_cameras.png", np.concatenate(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("docs/sim"))
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    embodiments(args.out)
    corner_cameras(args.out)
    cfg = RecordConfig(height=args.size, width=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        for suite, task, who, camera in PICTURES:
            result = record_group(CorpusEntry(suite, task, who, (camera,), 1, 0), tmp, cfg)
            if not result.seeds:
                print(f"{suite} {task} {who}: no successful episode")
                continue
            ep = read_episode(Path(tmp) / episode_name(suite, task, who, camera, result.seeds[0]))
            image, stats = overlay(ep)
            path = args.out / f"tracks_{suite}_{task}_{who}_{camera}.png"
            save(path, image)
            print(path.name, f"frames={ep.num_frames}", *(f"{k}={v:.2g}" for k, v in stats.items()), sep="  ")


if __name__ == "__main__":
    main()
