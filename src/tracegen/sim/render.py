"""Headless MuJoCo rendering from any camera pose: RGB, metric planar depth, segmentation.

* **Backend.** MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when it is imported (``tracegen.sim``
  defaults it to ``egl``). :func:`check_gl_backend` creates a tiny context once and turns any failure into a
  :class:`RenderBackendError` that names ``MUJOCO_GL`` and the fix.
* **Fast look** (default): no shadows, no reflections, no multisampling. About 4x faster than MuJoCo's
  defaults on llvmpipe and visually fine. ``fast=False`` keeps the model's default look.
* **Any camera pose.** :meth:`SceneRenderer.render` updates the scene from the model, then overrides the
  scene's GL camera with a :class:`~tracegen.sim.cameras.CameraPose` (position, orientation, vertical fov).
  The near and far planes stay the model's, so the depth conversion stays exact: depth is metric planar z, and
  0 where no surface was hit (the sky box or the far plane; the episode format's "no measurement").
* **Buffer.** Images larger than the model's offscreen buffer raise the buffer (for this renderer only).
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass
from functools import cache

import mujoco
import numpy as np

from tracegen.sim import backend_error
from tracegen.sim.cameras import CameraPose

BACKGROUND_FRACTION = 0.5  # depth beyond this fraction of the far plane: sky box or nothing, stored as 0


@cache
def check_gl_backend() -> str:
    """The working ``MUJOCO_GL`` backend; raises :class:`RenderBackendError` (with the fix) if it fails."""
    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
    try:
        gl = mujoco.GLContext(8, 8)
        gl.make_current()
        mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150).free()
        gl.free()
    except Exception as e:  # noqa: BLE001 -- backends fail differently (FatalError, EGLError, GLFWError)
        raise backend_error(e) from None
    return os.environ.get("MUJOCO_GL", "")


@contextlib.contextmanager
def _no_garbage_collection():
    """A frame is drawn with no garbage collection: a finaliser may run at any allocation, and one of a forgotten
    renderer (or of MuJoCo's ``GLContext``, whose ``free`` releases the thread's current EGL context) would leave the
    frame drawn into no context: a garbage image and NaN depth (tests/sim/test_render.py reproduces it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Frame:
    """One rendered view. ``rgb (H, W, 3)`` uint8; ``depth (H, W)`` float32 metres of planar depth, 0 where no
    surface was hit; ``seg (H, W, 2)`` int32 ``[object id, mjtObj type]``, -1 for background."""

    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    seg: np.ndarray | None = None

    def geom_ids(self) -> np.ndarray:
        """``(H, W)`` int geom id per pixel, -1 where no geom was hit."""
        on_geom = self.seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
        return np.where(on_geom, self.seg[..., 0], -1)


class SceneRenderer:
    """An offscreen renderer for one model and one image size. Close it (or use ``with``) when done.

    RGB and depth come from one render pass (colour and z-buffer read together); segmentation needs its own
    pass.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        height: int,
        width: int,
        fast: bool = True,
        visible_geom_groups: tuple[int, ...] = (0, 1, 2),
        max_geom: int = 10000,
    ):
        check_gl_backend()
        self.model, self.height, self.width, self.fast = model, height, width, fast
        vis = model.vis
        saved = (vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples)
        vis.global_.offwidth, vis.global_.offheight = max(saved[0], width), max(saved[1], height)
        if fast:
            vis.quality.offsamples = 0  # no multisampling
        try:  # the context copies the buffer size and sample count now; the model is restored below
            self._gl = mujoco.GLContext(width, height)
            self._gl.make_current()
            self._ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx)
        finally:
            vis.global_.offwidth, vis.global_.offheight, vis.quality.offsamples = saved
        self._ctx.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=max_geom)
        self._camera = mujoco.MjvCamera()  # a free camera; its pose is overwritten per render
        mujoco.mjv_defaultFreeCamera(model, self._camera)
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self.option = mujoco.MjvOption()
        self.option.sitegroup[:] = 0  # hide goal markers and other sites
        self.option.geomgroup[:] = 0
        self.option.geomgroup[list(visible_geom_groups)] = 1
        extent = model.stat.extent
        self._near, self._far = model.vis.map.znear * extent, model.vis.map.zfar * extent

    def render(
        self, data: mujoco.MjData, pose: CameraPose, rgb: bool = True, depth: bool = True, seg: bool = False
    ) -> Frame:
        """Render the requested images of the current state from ``pose``."""
        out = Frame()
        with _no_garbage_collection():
            self._gl.make_current()
            self._update_scene(data, pose)
            if rgb or depth:
                out.rgb, out.depth = self._read(rgb, depth)
            if seg:
                out.seg = self._segmentation()
        return out

    def _read(self, rgb: bool, depth: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
        H, W = self.height, self.width
        color = np.empty((H, W, 3), np.uint8) if rgb else None
        zbuf = np.empty((H, W), np.float32) if depth else None
        mujoco.mjr_render(self._rect, self._scene, self._ctx)
        mujoco.mjr_readPixels(color, zbuf, self._rect, self._ctx)
        if zbuf is not None:  # reversed z-buffer (1 at near, 0 at far) -> metric planar depth
            near, far = self._near, self._far
            zbuf = (near * far / (near + zbuf.astype(np.float64) * (far - near))).astype(np.float32)
            zbuf[zbuf > BACKGROUND_FRACTION * far] = 0.0  # sky box or nothing: no surface
        return (color[::-1].copy() if rgb else None), (zbuf[::-1].copy() if depth else None)

    def _segmentation(self) -> np.ndarray:
        scene, flags = self._scene, self._scene.flags
        saved = flags.copy()
        flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = True
        color = np.empty((self.height, self.width, 3), np.uint8)
        mujoco.mjr_render(self._rect, scene, self._ctx)
        mujoco.mjr_readPixels(color, None, self._rect, self._ctx)
        np.copyto(flags, saved)
        segid = color[::-1].astype(np.int64) @ np.array([1, 1 << 8, 1 << 16])  # colour -> segid + 1, 0: none
        table = np.full((scene.ngeom + 1, 2), -1, np.int32)
        for g in scene.geoms[: scene.ngeom]:
            if g.segid >= 0:
                table[g.segid + 1] = (g.objid, g.objtype)
        return table[np.minimum(segid, scene.ngeom)]

    def _update_scene(self, data: mujoco.MjData, pose: CameraPose) -> None:
        scene = self._scene
        mujoco.mjv_updateScene(self.model, data, self.option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL, scene)
        if self.fast:
            scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
        for cam in scene.camera:  # the two stereo eyes; mono rendering averages them
            cam.pos[:] = pose.pos
            cam.forward[:] = pose.forward
            cam.up[:] = pose.up
            cam.frustum_center = 0.0
            cam.frustum_width = 0.0  # 0: width follows the viewport's aspect ratio
            half = cam.frustum_near * np.tan(np.radians(pose.fovy) / 2.0)
            cam.frustum_bottom, cam.frustum_top = -half, half
            cam.orthographic = 0
        for light in scene.lights[: scene.nlight]:
            if light.headlight:  # the headlight sits on the camera
                light.pos[:] = pose.pos
                light.dir[:] = pose.forward

    def close(self) -> None:
        """Free the GL resources (call explicitly: EGL complains when they are freed at interpreter exit)."""
        if self._gl is not None:
            self._gl.make_current()
            self._ctx.free()
            self._gl.free()
            self._gl = None

    def __del__(self) -> None:
        if getattr(self, "_gl", None) is not None:
            with contextlib.suppress(Exception):  # at interpreter shutdown GL may already be gone
                self.close()

    def __enter__(self) -> SceneRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
