"""Simulation substrate: Meta-World and robosuite demonstrations with exact ground-truth 3D traces.

``MUJOCO_GL`` defaults to ``egl`` (headless; set in ``tracegen/__init__.py``, before anything imports mujoco).
MuJoCo reads it once, at import, and a backend that cannot load fails right there; that failure becomes a
:class:`RenderBackendError` naming ``MUJOCO_GL`` and the fix. Meta-World and robosuite are imported only by the
modules that need them.

Entry points: :func:`tracegen.sim.env.make_env`, :func:`tracegen.sim.recorder.record_group`,
:func:`tracegen.sim.recorder.build_corpus` and the ``tracegen sim`` CLI (:mod:`tracegen.sim.cli`).
"""

import os


class RenderBackendError(RuntimeError):
    """MuJoCo cannot render with the configured OpenGL backend (``MUJOCO_GL``)."""


def backend_error(cause: BaseException) -> RenderBackendError:
    """The error raised for any OpenGL failure: names ``MUJOCO_GL`` and the fix."""
    return RenderBackendError(
        f"MuJoCo cannot render with MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r} ({type(cause).__name__}: "
        f"{cause}). On a headless machine set MUJOCO_GL=egl (needs libegl1 libegl-mesa0 libgl1-mesa-dri) or "
        "MUJOCO_GL=osmesa (apt-get install libosmesa6) in the environment before Python starts; MuJoCo reads "
        "MUJOCO_GL only when it is first imported."
    )


try:
    import mujoco  # noqa: F401  (the first import selects the OpenGL backend)
except (ImportError, AttributeError, RuntimeError) as _e:  # bad MUJOCO_GL value, missing OSMesa / EGL library
    raise backend_error(_e) from None
