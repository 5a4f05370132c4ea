import os
import subprocess
import sys

import mujoco
import numpy as np
import pytest

from tracegen.geometry import pixels_to_world, project, transform_points
from tracegen.sim.cameras import model_camera
from tracegen.sim.render import SceneRenderer

SIZE = 64  # the drawer_env fixture's image size


def test_depth_and_segmentation_match_mujoco_renderer(drawer_env):
    """Overriding the scene camera with a model camera's pose reproduces MuJoCo's own depth and
    segmentation."""
    env = drawer_env
    env.reset(0)
    pose = model_camera(env.model, env.data, "corner3")
    frame = env.render("corner3", seg=True, pose=pose)
    with mujoco.Renderer(env.model, SIZE, SIZE) as ref:
        ref.update_scene(env.data, "corner3", env._renderer.option)
        ref.enable_depth_rendering()
        depth = ref.render()
        ref.enable_segmentation_rendering()
        seg = ref.render()
    assert np.allclose(frame.depth, depth, atol=1e-4)
    assert (frame.seg == seg).mean() > 0.999


def test_depth_is_metric_planar_z(drawer_env):
    """Pixels of boxes, lifted with K, w2c and the rendered depth, lie on those boxes' surfaces."""
    env = drawer_env
    env.reset(0)
    frame = env.render("corner3", seg=True)
    K, w2c = env.intrinsics("corner3"), env.extrinsics("corner3")
    geoms = frame.geom_ids()
    inner = geoms.copy()  # drop pixels at silhouette edges
    inner[1:-1, 1:-1] = np.where(
        (geoms[1:-1, 1:-1] == geoms[:-2, 1:-1])
        & (geoms[1:-1, 1:-1] == geoms[2:, 1:-1])
        & (geoms[1:-1, 1:-1] == geoms[1:-1, :-2])
        & (geoms[1:-1, 1:-1] == geoms[1:-1, 2:]),
        geoms[1:-1, 1:-1],
        -1,
    )
    boxes = inner >= 0
    boxes[boxes] = env.model.geom_type[inner[boxes]] == mujoco.mjtGeom.mjGEOM_BOX
    rows, cols = np.nonzero(boxes)
    assert len(rows) > 100
    uv = np.stack([cols, rows], 1).astype(float)
    X = pixels_to_world(np.concatenate([uv, frame.depth[rows, cols, None].astype(float)], 1), K, w2c)
    g = inner[rows, cols]
    local = np.einsum("nji,nj->ni", env.data.geom_xmat[g].reshape(-1, 3, 3), X - env.data.geom_xpos[g])
    to_surface = (np.abs(local) - env.model.geom_size[g]).max(1)  # 0 on the surface of a box
    assert np.mean(np.abs(to_surface) < 2e-3) > 0.99
    assert (frame.depth >= 0).all() and frame.depth.dtype == np.float32


def test_upright_corner_cameras_show_world_up_as_image_up(drawer_env):
    env = drawer_env
    env.reset(0)
    K, w2c = env.intrinsics("corner"), env.extrinsics("corner")
    centre = np.array([[0.0, 0.7, 0.0], [0.0, 0.7, 0.3]])
    uv, _ = project(transform_points(w2c, centre), K)
    assert uv[1, 1] < uv[0, 1]  # the higher point is higher in the image
    original = model_camera(env.model, env.data, "corner")
    assert np.allclose(env.camera("corner").pos, original.pos) and env.camera("corner").fovy == original.fovy


def test_render_larger_than_the_offscreen_buffer(drawer_env):
    env = drawer_env
    assert env.model.vis.global_.offwidth < 700
    with SceneRenderer(env.model, 500, 700) as r:
        frame = r.render(env.data, env.camera("corner3"))
    assert frame.rgb.shape == (500, 700, 3) and frame.rgb.std() > 0
    assert env.model.vis.global_.offwidth < 700  # the model is left as it was


def test_default_look_renders_too(drawer_env):
    env = drawer_env
    with SceneRenderer(env.model, SIZE, SIZE, fast=False) as r:
        slow = r.render(env.data, env.camera("corner3"), depth=False)
    fast = env.render("corner3", depth=False)
    assert slow.rgb.shape == fast.rgb.shape and np.abs(slow.rgb.astype(int) - fast.rgb).mean() > 0.5


@pytest.mark.parametrize("backend", ["bogus", "glfw"])
def test_missing_gl_backend_names_mujoco_gl_and_the_fix(backend):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {"MUJOCO_GL": backend}
    code = "from tracegen.sim.render import check_gl_backend; check_gl_backend()"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "RenderBackendError" in out.stderr and f"MUJOCO_GL={backend!r}" in out.stderr
    assert "MUJOCO_GL=egl" in out.stderr


def test_a_forgotten_renderer_is_not_collected_in_the_middle_of_a_frame(drawer_env):
    """The cyclic garbage collector runs at any allocation when it is enabled: a forgotten renderer finalised in the
    middle of another renderer's frame would switch (and free) the GL context that frame is drawn in."""
    import gc

    env = drawer_env
    env.reset(0)
    pose = env.camera("corner3")
    with SceneRenderer(env.model, SIZE, SIZE) as r:
        reference = r.render(env.data, pose)
        forgotten = SceneRenderer(env.model, SIZE, SIZE)
        forgotten.cycle = forgotten  # only the cyclic collector can free it
        del forgotten
        update = r._update_scene

        def update_then_collect_as_an_allocation_would(data, p):
            update(data, p)
            if gc.isenabled():  # what an allocation does when the collector's threshold is reached
                gc.collect()

        r._update_scene = update_then_collect_as_an_allocation_would
        frame = r.render(env.data, pose)
    gc.collect()
    assert np.array_equal(frame.rgb, reference.rgb) and np.array_equal(frame.depth, reference.depth)
