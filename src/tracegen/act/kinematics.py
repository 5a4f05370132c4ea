"""The arm's own tracks, read through its kinematics: where the effector goes when the trace does not show it.

Seen from far (the protocol's ``corner2``), a 20x20 grid often has no point on the gripper, only a few on the arm's
links — and a link's motion is not the effector's: an elbow swings sideways while the hand moves forwards. But the
links' future positions pin down the arm's future joint angles, and those give the effector by forward kinematics.

:class:`ArmKinematics` does that with the robot's own model (MuJoCo's, here; a URDF on a real robot):

1. **Attach**: a track whose start pixel shows a body moved by the arm's joints alone (not a finger) is attached to
   that body, at its lifted start point expressed in the body's frame (:meth:`ArmKinematics.attach`). Which body a
   pixel shows is the robot's own rendered mask at its measured joint angles — on a real robot, its model rendered
   from the calibrated camera; no scene object is identified.
2. **Fit**: for every trace step, damped Gauss-Newton on the arm's joints makes the attached points land on their
   tracks' positions, warm-started from the previous step (:meth:`ArmKinematics.effector_path`). The executor
   commands no rotation (Meta-World's mocap holds the orientation; robosuite's operational-space controller is sent
   none, so it only drifts), so the fit keeps the effector's orientation too, with weight ``orientation_weight_m``
   (metres of point error per radian).
3. **Check**: exact tracks are ones the arm can make (a quick fit of every fourth step leaves them under half a
   centimetre off at the last); a predicted trace often is not (2-10 cm, most of it on the big, far links). Such a
   trace is fitted with each track's error weighted by its closeness to the tool (:meth:`ArmKinematics.track_weights`),
   the others with every track alike.
4. **Read** the tool centre point at each step's fitted angles.

All in world coordinates (metres), on a scratch copy of the simulator's data: the episode is not touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from tracegen.act import fit_kernels
from tracegen.small_systems import solve_into


@dataclass(frozen=True)
class KinematicFitConfig:
    iterations: int = 64  # Gauss-Newton iterations per trace step at most (warm-started from the previous step)
    damping: float = 1e-3  # Levenberg damping (m^2): keeps poorly observed joints where they are
    orientation_weight_m: float = 0.05  # the effector's orientation error counts as this many metres per radian
    tolerance_rad: float = 1e-5  # ... or until no joint moves more than this in one iteration
    min_tracks: int = 3  # fewer attached tracks than this: no fit (the caller falls back)
    consistent_rms_m: float = 0.01  # a trace the arm can make: fitted with every track alike, the attached points
    # land within this (RMS, at the last step) of their tracks -- then that fit is the path (exact traces: < 0.5 cm)
    near_effector_m: float = 0.1  # ... a trace it cannot (a prediction's errors: 2-10 cm) is fitted again with each
    # track's error weighing exp(-d / this), d its start's distance (m) to the tool centre point: links near the hand
    # decide, errors on the far links do not swing it. When only far tracks move, their small weights against the
    # damping make each iteration's step short, so the fitted motion after `iterations` is a part of the optimum's:
    # a cautious step, longer with more iterations (with 8, the default until 2026-12-07, the scratch model solved
    # 344 of 825 AVDC episodes instead of 377; BENCHMARKS). 0: never refit; consistent_rms_m < 0: refit every trace
    check_stride: int = 4  # the check fits every this many steps (and the last): a fifth of a full fit's time,
    # and on 198 plans (oracle, model and neighbour traces) the same verdict as a fit of every step (1)

    def __post_init__(self) -> None:
        if self.check_stride < 1 or self.iterations < 0 or self.min_tracks < 1:
            raise ValueError(
                f"kinematics needs check_stride >= 1, iterations >= 0 and min_tracks >= 1 (got {self.check_stride}, "
                f"{self.iterations}, {self.min_tracks})"
            )


def arm_joints(model: mujoco.MjModel, body: int) -> np.ndarray:
    """``(J,)`` ids of the 1-DOF (hinge or slide) joints on the chain from the world to ``body``, root first."""
    chain = []
    while body > 0:
        chain.append(body)
        body = model.body_parentid[body]
    one_dof = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    joints = [j for b in reversed(chain) for j in _body_joints(model, b)]
    return np.array([j for j in joints if model.jnt_type[j] in one_dof], dtype=int)


def _body_joints(model: mujoco.MjModel, body: int) -> range:
    """Ids of the joints of ``body`` itself."""
    return range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body])


def arm_bodies(model: mujoco.MjModel, joints: np.ndarray) -> np.ndarray:
    """``(nbody,)`` bool: bodies moved by ``joints`` and by no other joint (arm links and the hand, not fingers)."""
    return _moved_bodies(model, joints, others=False)


def robot_bodies(model: mujoco.MjModel, joints: np.ndarray) -> np.ndarray:
    """``(nbody,)`` bool: bodies moved by ``joints`` (arm links, hand and fingers: the robot as a camera sees it)."""
    return _moved_bodies(model, joints, others=True)


def _moved_bodies(model: mujoco.MjModel, joints: np.ndarray, others: bool) -> np.ndarray:
    """Bodies moved by ``joints``; unless ``others``, not those that some other joint on their chain moves too."""
    own = np.zeros(model.nbody, bool)  # moved by an arm joint
    other = np.zeros(model.nbody, bool)  # ... or by some other joint on its chain
    arm = set(int(j) for j in joints)
    for b in range(1, model.nbody):  # parents precede children in MuJoCo's body order
        p = model.body_parentid[b]
        mine = _body_joints(model, b)
        own[b] = own[p] or any(j in arm for j in mine)
        other[b] = other[p] or any(j not in arm for j in mine)
    return own if others else own & ~other


class BodyJacobians:
    """Velocity Jacobians of the bodies of ``bodies (n,)`` (repeats allowed) at the data's current pose: calling it
    returns ``(B, 6, nv)``, B the distinct bodies, each its origin's (rows 0-2) and its angular velocity's (3-5)
    Jacobian; ``which (n,)``: each entry's row in it."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, bodies: np.ndarray):
        used, self.which = np.unique(bodies, return_inverse=True)
        self.model, self.data = model, data
        self.jac = np.empty((len(used), 6, model.nv))
        self._rows = [(int(b), self.jac[i, :3], self.jac[i, 3:]) for i, b in enumerate(used)]

    def __call__(self) -> np.ndarray:
        for body, linear, angular in self._rows:
            mujoco.mj_jacBody(self.model, self.data, linear, angular, body)
        return self.jac


class ArmKinematics:
    """Forward kinematics and point fitting for the arm that carries ``effector_body``, at planning time.

    ``qpos``: the simulator's current ``(nq,)`` positions; ``ee_position (3,)``: the tool centre point now (world, m),
    fixed in the effector body's frame; ``point_body (N,)``: the body each trace point starts on (the robot's
    rendered mask at the observation; -1 where it shows no body)."""

    def __init__(
        self,
        model: mujoco.MjModel,
        qpos: np.ndarray,
        effector_body: int,
        ee_position: np.ndarray,
        point_body: np.ndarray,
        cfg: KinematicFitConfig = KinematicFitConfig(),
    ):
        self.model, self.cfg, self.effector_body = model, cfg, int(effector_body)
        self.point_body = np.asarray(point_body, int)
        self.data = mujoco.MjData(model)
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(model, self.data)
        self.joints = arm_joints(model, self.effector_body)
        self.qadr = model.jnt_qposadr[self.joints]  # (J,)
        self.dadr = model.jnt_dofadr[self.joints]  # (J,)
        self.movable = arm_bodies(model, self.joints)  # (nbody,)
        limited = model.jnt_limited[self.joints].astype(bool)  # (J,)
        self.lower = np.where(limited, model.jnt_range[self.joints, 0], -np.inf)  # (J,) the joints' limits (rad, m)
        self.upper = np.where(limited, model.jnt_range[self.joints, 1], np.inf)
        self.q0 = self.data.qpos[self.qadr].copy()
        R, p = self._pose(self.effector_body)
        self.tcp_local = R.T @ (np.asarray(ee_position, np.float64) - p)  # (3,) tool centre point in the body frame
        self.R_goal = R.copy()  # the orientation the controller holds

    def _pose(self, body: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.xmat[body].reshape(3, 3).copy(), self.data.xpos[body].copy()

    def attach(self, start_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tracks on the arm: ``start_points (N, 3)`` world -> ``(K,)`` indices of the tracks that start on a body
        the arm alone moves, and their ``(K, 3)`` points in that body's frame."""
        self._set(self.q0)  # the bodies' frames at planning time (a fit leaves the arm at its last pose)
        point_body = self.point_body
        if len(point_body) != len(start_points):
            raise ValueError(
                f"the trace has {len(start_points)} points but the robot's mask gave bodies for {len(point_body)} "
                "grid points: build ArmKinematics with the trace's own grid"
            )
        ok = (point_body >= 0) & np.isfinite(start_points).all(1)
        idx = np.flatnonzero(ok)
        idx = idx[self.movable[point_body[idx]]]
        bodies = point_body[idx]
        R, origin = self.data.xmat[bodies].reshape(-1, 3, 3), self.data.xpos[bodies]  # (K, 3, 3), (K, 3)
        return idx, np.einsum("kji,kj->ki", R, start_points[idx] - origin)  # R^T (x - origin) per track

    def _set(self, q: np.ndarray, jacobians: bool = False) -> np.ndarray:
        """Pose the arm at joint positions ``q (J,)`` (clipped to the joints' limits); returns them clipped.
        ``jacobians``: also the bodies' centres, which the Jacobians need (the frames alone do not)."""
        q = np.minimum(np.maximum(q, self.lower), self.upper)
        self.data.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.data)
        if jacobians:
            mujoco.mj_comPos(self.model, self.data)
        return q

    def _attached_points(self, bodies: np.ndarray, local: np.ndarray) -> np.ndarray:
        """``(K, 3)`` where points ``local (K, 3)`` fixed on ``bodies (K,)`` are at the arm's current pose (world,
        m)."""
        R, origin = self.data.xmat[bodies].reshape(-1, 3, 3), self.data.xpos[bodies]  # (K, 3, 3), (K, 3)
        return origin + np.einsum("kij,kj->ki", R, local)

    def _normal_equations(
        self,
        bodies: np.ndarray,
        local: np.ndarray,
        targets: np.ndarray,
        weight: np.ndarray,
        jacobians: BodyJacobians,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The damped Gauss-Newton system at the arm's current pose for points ``local (K, 3)`` on ``bodies (K,)``
        to land on ``targets (K, 3)`` (world, m), each error scaled by ``weight (K,)``, the effector holding its
        orientation: ``H (J, J)`` = JᵀJ + damping I, ``g (J,)`` = Jᵀr and the cost ½|r|² of the stacked residual r
        (:func:`fit_kernels.normal_equations`); ``jacobians``: those of ``bodies`` and the effector's."""
        return fit_kernels.normal_equations(
            self.data.xmat, self.data.xpos, jacobians(), self.dadr, bodies, jacobians.which, local, targets, weight,
            self.effector_body, self.R_goal, self.cfg.orientation_weight_m, self.cfg.damping,
        )  # fmt: skip

    def attached_tracks(
        self, world: np.ndarray, min_motion_m: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The tracks of ``world (N, S, 3)`` a fit follows: ``(K,)`` their indices, ``(K, S, 3)`` their points, the
        ``(K,)`` bodies they start on and ``(K, 3)`` their points in those bodies' frames; ``None`` when fewer than
        ``min_tracks`` tracks start on the arm or none of them moves more than ``min_motion_m``."""
        if len(self.joints) == 0:  # a floating effector: nothing to fit
            return None
        idx, local = self.attach(world[:, 0])
        idx_ok = np.isfinite(world[idx]).all((1, 2))
        idx, local = idx[idx_ok], local[idx_ok]
        moves = np.linalg.norm(world[idx] - world[idx, :1], axis=2).max(1, initial=0.0) > min_motion_m
        if len(idx) < self.cfg.min_tracks or not moves.any():
            return None
        return idx, world[idx], self.point_body[idx], local

    def fit(self, world: np.ndarray, min_motion_m: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The effector path ``(S, 3)`` (world, m; step 0 is now) that makes the arm follow the trace ``world
        (N, S, 3)``, and ``(K,)`` the tracks it was fitted to (:meth:`attached_tracks`; ``None`` without them)."""
        found = self.attached_tracks(world, min_motion_m)
        if found is None:
            return None
        idx, tracks, bodies, local = found
        ones = np.ones(len(idx))
        if self.cfg.near_effector_m <= 0:
            return self.effector_path(tracks, bodies, local, ones)[0], idx
        rms, checked_path = self._check(tracks, bodies, local)
        if rms > self.cfg.consistent_rms_m:  # the plain fit would leave the trace unexplained: refit
            return self.effector_path(tracks, bodies, local, self.track_weights(tracks[:, 0]))[0], idx
        if checked_path is None:  # the check fitted every check_stride-th step only: fit them all
            checked_path = self.effector_path(tracks, bodies, local, ones)[0]
        return checked_path, idx

    def consistent(self, tracks: np.ndarray, point_body: np.ndarray, local: np.ndarray) -> bool:
        """Whether the arm can make ``tracks (K, S, 3)``: fitted with every track alike, on every ``check_stride``-th
        step and the last, its attached points land within ``consistent_rms_m`` (RMS) of the last step's."""
        return self._check(tracks, point_body, local)[0] <= self.cfg.consistent_rms_m

    def _check(self, tracks: np.ndarray, point_body: np.ndarray, local: np.ndarray) -> tuple[float, np.ndarray | None]:
        """:meth:`consistent`'s RMS (m; inf when ``consistent_rms_m`` < 0: always refit) and, when the check fitted
        every step (``check_stride`` 1), its path ``(S, 3)``: the plain fit itself, not computed twice."""
        if self.cfg.consistent_rms_m < 0:
            return np.inf, None
        S = tracks.shape[1]
        steps = np.unique(np.append(np.arange(0, S, self.cfg.check_stride), S - 1))
        path, q_last = self.effector_path(tracks[:, steps], point_body, local, np.ones(len(tracks)))
        rms = self.residual_rms(q_last, tracks[:, -1], point_body, local)
        return rms, path if len(steps) == S else None

    def residual_rms(self, q: np.ndarray, targets: np.ndarray, point_body: np.ndarray, local: np.ndarray) -> float:
        """RMS distance (m) between the attached points ``local (K, 3)`` on bodies ``point_body (K,)``, with the
        arm at joint positions ``q (J,)``, and ``targets (K, 3)``."""
        self._set(q)
        points = self._attached_points(point_body, local)
        return float(np.sqrt(np.mean(np.sum((points - targets) ** 2, axis=1))))

    def track_weights(self, start_points: np.ndarray) -> np.ndarray:
        """``(K,)`` how much each attached track's error counts in the refit, from its start ``(K, 3)`` (world, m):
        ``exp(-d / near_effector_m)`` (absolute, not normalised to the nearest track: with no track near the tool,
        the damping slows every iteration and the motion fitted within ``iterations`` stays short)."""
        self._set(self.q0)
        R, p = self._pose(self.effector_body)
        distance = np.linalg.norm(start_points - (p + R @ self.tcp_local), axis=1)
        return np.exp(-distance / self.cfg.near_effector_m)

    def effector_path(
        self, tracks: np.ndarray, point_body: np.ndarray, local: np.ndarray, weight: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(S, 3)`` tool centre point (world, m) at every step of ``tracks (K, S, 3)``, the world positions of the
        attached points ``local (K, 3)`` on bodies ``point_body (K,)``, each track's error scaled by ``weight (K,)``;
        and ``(J,)`` the joint positions fitted to the last step. Step 0 is the current position."""
        q = self._set(self.q0.copy(), jacobians=True)  # the arm is posed at q throughout
        path = np.empty((tracks.shape[1], 3))
        jacobians = BodyJacobians(self.model, self.data, np.append(point_body, self.effector_body))
        step = np.empty(len(q))
        for s in range(tracks.shape[1]):
            for _ in range(self.cfg.iterations if s else 0):
                H, g, _ = self._normal_equations(point_body, local, tracks[:, s], weight, jacobians)
                moved = self._set(q - solve_into(H, g, step), jacobians=True)  # within the joints' limits
                q, change = moved, np.abs(moved - q).max()
                if change < self.cfg.tolerance_rad:  # the step as taken: a joint held at its limit has stopped
                    break
            R, p = self._pose(self.effector_body)
            path[s] = p + R @ self.tcp_local
        return path, q
