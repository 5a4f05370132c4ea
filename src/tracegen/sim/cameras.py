"""Camera poses for simulated rendering: named model cameras, upright re-aiming, look-at and jitter.

A :class:`CameraPose` is what the renderer needs and what the episode stores: position, orientation and
vertical field of view. Its orientation ``rot`` uses MuJoCo/OpenGL camera axes (columns = camera x right, y
up, z backwards in world coordinates, the camera looks along -z); :meth:`CameraPose.w2c` and
:meth:`CameraPose.K` convert to the project's OpenCV convention (:mod:`tracegen.geometry`: x right, y down, z
forward, integer pixel centres).

**Upright re-aim.** Meta-World's ``corner``, ``corner2``, ``corner3`` and ``corner4`` cameras are defined with
their image "up" pointing downwards, so they render upside down. :func:`upright` keeps the camera's position,
field of view and viewing direction and only rolls it about that direction so that world +z points up in the
image (the look-at rotation of the original viewing ray with ``up = +z``). The view therefore shows the same
part of the scene as the benchmark camera, the right way up.

**Jitter** (:func:`jitter`) perturbs position (metres) and orientation (degrees of yaw about world z, pitch
about the camera's x axis and roll about the viewing axis) for viewpoint diversity; it is seeded, hence
reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from tracegen.geometry import intrinsics_from_fovy, w2c_from_opengl_pose

WORLD_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True, eq=False)
class CameraPose:
    """A pinhole camera in the world.

    Attributes:
        pos: ``(3,)`` camera centre in world coordinates, metres.
        rot: ``(3, 3)`` camera -> world rotation in OpenGL/MuJoCo axes (columns: x right, y up, z backwards).
        fovy: vertical field of view, degrees.
    """

    pos: np.ndarray
    rot: np.ndarray
    fovy: float

    @property
    def forward(self) -> np.ndarray:
        """``(3,)`` unit viewing direction in world coordinates."""
        return -self.rot[:, 2]

    @property
    def up(self) -> np.ndarray:
        """``(3,)`` unit image-up direction in world coordinates."""
        return self.rot[:, 1]

    def w2c(self) -> np.ndarray:
        """``(4, 4)`` world -> camera extrinsics, OpenCV axes."""
        return w2c_from_opengl_pose(self.pos, self.rot)

    def K(self, height: int, width: int) -> np.ndarray:
        """``(3, 3)`` intrinsics for an ``height x width`` image (square pixels, integer pixel centres)."""
        return intrinsics_from_fovy(self.fovy, height, width)


@dataclass(frozen=True)
class CameraSpec:
    """Which camera to render: a model camera by name, optionally re-aimed upright and jittered.

    ``upright=None`` lets the environment decide (Meta-World's upside-down ``corner*`` cameras are re-aimed).
    Jitter draws are seeded by ``jitter_seed``: the same spec always gives the same pose.
    """

    name: str
    upright: bool | None = None
    jitter_pos: float = 0.0  # metres, standard deviation per axis
    jitter_deg: float = 0.0  # degrees, standard deviation of yaw, pitch and roll
    jitter_seed: int = 0

    @property
    def jittered(self) -> bool:
        return self.jitter_pos > 0 or self.jitter_deg > 0

    @classmethod
    def parse(cls, text: str) -> CameraSpec:
        """``"corner3"``; with jitter ``"corner3@0.05,5"`` (metres, degrees); a jitter variant ``"...#2"``."""
        name, _, jit = text.partition("@")
        if not jit:
            return cls(name)
        stds, _, variant = jit.partition("#")
        try:
            pos, deg = (float(x) for x in stds.split(","))
            return cls(name, jitter_pos=pos, jitter_deg=deg, jitter_seed=int(variant or 0))
        except ValueError:
            raise ValueError(f"bad camera {text!r}; use NAME or NAME@POS_STD,DEG_STD[#VARIANT]") from None

    @property
    def label(self) -> str:
        """Short name for file names: ``corner3``, or ``corner3-jit2`` for jitter variant 2."""
        return f"{self.name}-jit{self.jitter_seed}" if self.jittered else self.name

    def for_episode(self, seed: int) -> CameraSpec:
        """A jittered spec gets a different, reproducible pose per episode seed (and variant)."""
        if not self.jittered:
            return self
        state = np.random.SeedSequence([seed, self.jitter_seed]).generate_state(1)[0]
        return replace(self, jitter_seed=int(state))

    def describe(self) -> dict:
        """JSON-friendly description for episode metadata."""
        out: dict = {"name": self.name}
        if self.jittered:
            out.update(jitter_pos=self.jitter_pos, jitter_deg=self.jitter_deg, jitter_seed=self.jitter_seed)
        return out


def model_camera(model, data, name: str) -> CameraPose:
    """The current pose of the model camera ``name`` (needs ``mj_forward``/``mj_step`` to have run)."""
    import mujoco

    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    if cid < 0:
        valid = [model.camera(i).name for i in range(model.ncam)]
        raise ValueError(f"unknown camera {name!r}; valid cameras: {', '.join(valid)}")
    rot = data.cam_xmat[cid].reshape(3, 3).copy()
    return CameraPose(data.cam_xpos[cid].copy(), rot, float(model.cam_fovy[cid]))


def rotation_looking_along(forward: np.ndarray, up: np.ndarray = WORLD_UP) -> np.ndarray:
    """OpenGL camera -> world rotation ``(3, 3)`` looking along ``forward``, with ``up`` up in the image."""
    f = np.asarray(forward, dtype=np.float64) / np.linalg.norm(forward)
    x = np.cross(f, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("the viewing direction is parallel to 'up': an upright camera's roll is undefined")
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    return np.stack([x, y, -f], axis=1)


def upright(pose: CameraPose, up: np.ndarray = WORLD_UP) -> CameraPose:
    """Same position, field of view and viewing direction, rolled so that world ``up`` is up in the image."""
    return CameraPose(pose.pos.copy(), rotation_looking_along(pose.forward, up), pose.fovy)


def look_at(eye: np.ndarray, target: np.ndarray, fovy: float, up: np.ndarray = WORLD_UP) -> CameraPose:
    """A camera at ``eye`` looking at ``target``, upright with respect to ``up``."""
    eye = np.asarray(eye, dtype=np.float64)
    return CameraPose(eye, rotation_looking_along(np.asarray(target, np.float64) - eye, up), float(fovy))


def _axis_angle(axis: np.ndarray, deg: float) -> np.ndarray:
    """Rotation matrix ``(3, 3)`` of ``deg`` degrees about unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


def jitter(pose: CameraPose, rng: np.random.Generator, pos_std: float, deg_std: float) -> CameraPose:
    """A perturbed copy of ``pose``: position + N(0, pos_std) per axis; yaw, pitch, roll ~ N(0, deg_std)."""
    yaw, pitch, roll = rng.normal(0.0, deg_std, size=3) if deg_std > 0 else (0.0, 0.0, 0.0)
    offset = rng.normal(0.0, pos_std, size=3) if pos_std > 0 else np.zeros(3)
    R = pose.rot
    R = _axis_angle(WORLD_UP, yaw) @ R  # yaw about world z
    R = _axis_angle(R[:, 0], pitch) @ R  # pitch about the camera's x axis
    R = _axis_angle(-R[:, 2], roll) @ R  # roll about the viewing direction
    return CameraPose(pose.pos + offset, R, pose.fovy)


def resolve(spec: CameraSpec, base: CameraPose, upright_default: bool) -> CameraPose:
    """Apply a spec's upright re-aim and jitter to the model camera's pose ``base``."""
    pose = upright(base) if (upright_default if spec.upright is None else spec.upright) else base
    if spec.jittered:
        pose = jitter(pose, np.random.default_rng(spec.jitter_seed), spec.jitter_pos, spec.jitter_deg)
    return pose
