"""What cross-painting costs per observation, beside the plain render, and a picture of it.

    MUJOCO_GL=egl python benchmarks/painting_speed.py [--embodiment hand] [--repeats 5] \
        [--picture docs/sim/painting.png]

For the first observation of every AVDC task x camera (seed 0, the protocol's 240x320 renders): the robot's own
render (RGB, depth, segmentation), the painted view (:class:`tracegen.sim.painting.PaintedView`: the robot's render,
the variant's render, the fill-in and the composite), and the revealed view (the variant's render alone); printed:
median ms of each, one process. ``--picture``: the robot's view, the painted one and the revealed one side by side,
for one scene.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tracegen.bench.metaworld import PROTOCOLS
from tracegen.sim.env import make_env
from tracegen.sim.painting import PaintedView


def timed_ms(fn, repeats: int) -> float:
    """Median wall time (ms) of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embodiment", default="hand")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--picture", default=None, help="PNG: robot | painted | revealed, basketball on corner")
    args = parser.parse_args()
    protocol = PROTOCOLS["avdc"]
    height, width = protocol.render_hw
    rows = {"robot's own render": [], "painted (filled in)": [], "revealed": []}
    for task in protocol.tasks:
        with make_env("metaworld", task, height=height, width=width) as env:
            env.reset(0)
            painted, revealed = PaintedView(env, args.embodiment), PaintedView(env, args.embodiment, reveal=True)
            for camera in protocol.cameras:
                for name, view in zip(rows, (env, painted, revealed), strict=True):
                    observe = lambda v=view, c=camera: v.render(c, depth=True, seg=True)  # noqa: E731
                    rows[name].append(timed_ms(observe, args.repeats))
            if args.picture and task == "basketball":
                _picture(args.picture, [v.render("corner", depth=True).rgb for v in (env, painted, revealed)])
            painted.close()
            revealed.close()
    print(f"{len(rows['revealed'])} observations (11 tasks x 3 cameras, seed 0), {height}x{width}, {args.embodiment}:")
    for name, times in rows.items():
        print(f"  {name:20s} median {np.median(times):6.1f} ms   (max {np.max(times):6.1f})")


def _picture(path: str, images: list[np.ndarray]) -> None:
    import imageio.v3 as iio

    from tracegen.io.files import atomic_path

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.concatenate(images, axis=1), extension=".png")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
