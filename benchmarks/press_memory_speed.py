"""What remembering the scene for a press's tool costs per observation (:class:`tracegen.act.rollout.PressMemory`).

    MUJOCO_GL=egl python benchmarks/press_memory_speed.py [--repeats 20]

For the first observation of every AVDC task x camera (seed 0, the protocol's 240x320 renders, RGB, depth and
segmentation): ``PressMemory.observe`` -- the robot's mask, the depth every ``height_stride`` pixels lifted to the
world, the height map's update and the fingers' offsets -- on a memory that has already seen that observation once;
printed: the median ms per camera over tasks, one process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tracegen.act.rollout import PressMemory, RolloutConfig
from tracegen.bench.metaworld import PROTOCOLS
from tracegen.sim.env import make_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    protocol = PROTOCOLS["avdc"]
    height, width = protocol.render_hw
    per_camera: dict[str, list[float]] = {camera: [] for camera in protocol.cameras}
    for task in protocol.tasks:
        env = make_env("metaworld", task, height=height, width=width)
        for camera in protocol.cameras:
            env.reset(0)
            frame = env.render(camera, depth=True, seg=True)
            K, w2c = env.intrinsics(camera), env.extrinsics(camera)
            memory = PressMemory(RolloutConfig())
            memory.observe(env, frame, K, w2c)  # the map exists: what every later plan pays
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                memory.observe(env, frame, K, w2c)
                times.append(1000 * (time.perf_counter() - t0))
            per_camera[camera].append(float(np.median(times)))
        env.close()
    for camera, ms in per_camera.items():
        print(f"{camera}: PressMemory.observe median {np.median(ms):.2f} ms (tasks {min(ms):.2f}-{max(ms):.2f})")


if __name__ == "__main__":
    main()
