"""tracegen: TraceGen world modelling in 3D trace space, and the TraceForge data engine.

Data flows sim -> forge -> traces/data -> model -> act -> bench; ``geometry`` and ``traces`` are the shared ground.

``MUJOCO_GL`` defaults to ``egl`` (headless rendering) as soon as any part of tracegen is imported: MuJoCo reads it
once, when it is first imported, and several modules (``tracegen.act``, ``tracegen.sim``) import it. Left unset,
MuJoCo picks GLFW, which aborts the whole process on a machine without a display. Set it yourself before Python
starts to choose another backend (``osmesa``, ``glfw``).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
