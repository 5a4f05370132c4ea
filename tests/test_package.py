"""Importing any part of tracegen first makes MuJoCo render headless: the executor's planners import mujoco before
tracegen.sim does, and MuJoCo left to choose picks GLFW, which aborts the process on a machine without a display."""

import os
import subprocess
import sys


def test_mujoco_renders_headless_whichever_module_is_imported_first():
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    code = (
        "import tracegen.act.planners, os\n"
        "from tracegen.sim.env import make_env\n"
        "env = make_env('metaworld', 'button-press', height=48, width=64)\n"
        "env.reset(0)\n"
        "frame = env.render('corner', depth=True)\n"
        "print(os.environ['MUJOCO_GL'], frame.rgb.shape, float(frame.rgb.std()) > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["egl", "(48,", "64,", "3)", "True"]
