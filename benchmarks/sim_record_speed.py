"""Recording speed: 150-frame RGB-D episodes with exact GT tracks, simulated, rendered and written.

    MUJOCO_GL=egl python benchmarks/sim_record_speed.py --episodes 5 --size 224

For Meta-World (drawer-open, Sawyer, corner3) and robosuite (Lift, Panda, agentview): one warm-up rollout,
then ``--episodes`` rollouts of exactly 150 frames (149 expert steps; RGB + depth every frame, segmentation
and a 20 x 20 query grid every 5 frames), each written with ``write_episode``. Prints seconds per episode for
the rollout and the write, episodes per minute, frames per second and the frame-0 reprojection error (max).
``--default-look`` adds one Meta-World run with MuJoCo's default rendering (shadows, reflections, MSAA).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from tracegen.io.episode import write_episode
from tracegen.sim.cameras import CameraSpec
from tracegen.sim.env import make_env
from tracegen.sim.recorder import RecordConfig, record_rollout
from tracegen.traces import grid_points

SETUPS = [("metaworld", "drawer-open", "sawyer", "corner3"), ("robosuite", "Lift", "Panda", "agentview")]


def reprojection_error(ep) -> float:
    uvz, _ = ep.gt_reference_tracks(0)
    on = ep.gt.point_body[0] >= 0
    return float(np.abs(uvz[on, 0, :2] - grid_points(ep.height, ep.width, ep.gt.grid)[on]).max())


def measure(suite: str, task: str, who: str, camera: str, episodes: int, size: int, fast: bool) -> None:
    cfg = RecordConfig(height=size, width=size, fast_render=fast, max_steps=149, stop_on_success=False)
    env = make_env(suite, task, who, size, size, fast_render=fast)
    with env, tempfile.TemporaryDirectory() as tmp:
        record_rollout(env, [CameraSpec(camera)], 0, cfg)  # warm-up: GL context, caches
        sim, write, errors = [], [], []
        for seed in range(1, episodes + 1):
            start = time.perf_counter()
            ep = record_rollout(env, [CameraSpec(camera)], seed, cfg).episodes[camera]
            sim.append(time.perf_counter() - start)
            start = time.perf_counter()
            write_episode(Path(tmp) / f"ep{seed}", ep)
            write.append(time.perf_counter() - start)
            errors.append(reprojection_error(ep))
    total = np.mean(sim) + np.mean(write)
    look = "fast" if fast else "default look"
    print(
        f"{suite:<10}{task:<12}{who:<8}{camera:<10}{size:>4}px {look:<13} rollout {np.mean(sim):.2f} s"
        f" + write {np.mean(write):.2f} s = {total:.2f} s/episode -> {60 / total:.1f} episodes/min,"
        f" {150 / np.mean(sim):.0f} frames/s rollout; frame-0 reprojection error {max(errors):.1e} px",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--default-look", action="store_true")
    args = ap.parse_args()
    for setup in SETUPS:
        measure(*setup, episodes=args.episodes, size=args.size, fast=True)
    if args.default_look:
        measure(*SETUPS[0], episodes=2, size=args.size, fast=False)


if __name__ == "__main__":
    main()
