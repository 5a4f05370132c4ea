"""Compiled inner loop of the arm's kinematic fit (:class:`tracegen.act.kinematics.ArmKinematics`).

Why: a plan's fit takes hundreds to thousands of damped Gauss-Newton iterations (every trace step, warm-started),
each on a handful of bodies and a few dozen tracks: as array code, each iteration paid for a dozen small NumPy
temporaries and a LAPACK call, about five times the arithmetic. Here one call builds the normal equations of an
iteration (:func:`tracegen.small_systems.solve_into` solves them): the same sums as the array code it replaced (the
fitted paths agree to ~1e-15 m).

Shapes: ``J`` the arm's joints, ``K`` the attached points, ``B`` the distinct bodies they (and the effector) are on.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def normal_equations(
    xmat, xpos, body_jac, dofs, bodies, which, local, targets, weight, effector, R_goal, orientation_weight, damping
):  # pragma: no cover
    """The damped Gauss-Newton system of the stacked residual r (each point's error scaled by its weight, then the
    effector's orientation error scaled by ``orientation_weight``) at the arm's current pose.

    ``xmat (nbody, 9)``, ``xpos (nbody, 3)``: MuJoCo's body frames (world); ``body_jac (B, 6, nv)``: each body's
    origin velocity (rows 0-2) and angular velocity (rows 3-5) Jacobian; ``dofs (J,)``: the arm's columns in it;
    ``bodies (K,)``: each point's body; ``which (K + 1,)``: each point's row in ``body_jac``, then the effector's;
    ``local (K, 3)``: the points in their bodies' frames; ``targets (K, 3)`` world (m); ``weight (K,)``;
    ``effector``: its body id; ``R_goal (3, 3)``: the orientation it holds.
    Returns ``H (J, J)`` = JᵀJ + damping I, ``g (J,)`` = Jᵀr and the cost ½|r|²."""
    J = dofs.shape[0]
    H = damping * np.eye(J)
    g = np.zeros(J)
    rows = np.empty((3, J))  # three rows of the residual's Jacobian
    err = np.empty(3)  # ... and of the residual
    lever = np.empty(3)
    cost = 0.0
    for k in range(bodies.shape[0]):
        b, i, w = bodies[k], which[k], weight[k]
        for r in range(3):  # from the body's origin to the point, world axes: R local
            lever[r] = (
                xmat[b, 3 * r] * local[k, 0] + xmat[b, 3 * r + 1] * local[k, 1] + xmat[b, 3 * r + 2] * local[k, 2]
            )
            err[r] = w * (xpos[b, r] + lever[r] - targets[k, r])
        for j in range(J):  # the point's velocity: the origin's + angular velocity x lever
            lin, ang = body_jac[i, :3, dofs[j]], body_jac[i, 3:, dofs[j]]
            rows[0, j] = w * (lin[0] + ang[1] * lever[2] - ang[2] * lever[1])
            rows[1, j] = w * (lin[1] + ang[2] * lever[0] - ang[0] * lever[2])
            rows[2, j] = w * (lin[2] + ang[0] * lever[1] - ang[1] * lever[0])
        cost += _accumulate(H, g, rows, err)
    # the rotation vector from the goal orientation to the current one (small angles): the vee of M = R R_goal^T,
    # changing with the effector's angular velocity
    R, M = xmat[effector], np.empty((3, 3))  # (9,) row-major
    for r in range(3):
        for c in range(3):
            M[r, c] = R[3 * r] * R_goal[c, 0] + R[3 * r + 1] * R_goal[c, 1] + R[3 * r + 2] * R_goal[c, 2]
    w = orientation_weight
    err[0], err[1], err[2] = 0.5 * w * (M[2, 1] - M[1, 2]), 0.5 * w * (M[0, 2] - M[2, 0]), 0.5 * w * (M[1, 0] - M[0, 1])
    for j in range(J):
        for r in range(3):
            rows[r, j] = w * body_jac[which[-1], 3 + r, dofs[j]]
    cost += _accumulate(H, g, rows, err)
    return H, g, cost


@numba.njit(cache=True, nogil=True)
def _accumulate(H, g, rows, err):  # pragma: no cover
    """Add three residual rows ``rows (3, J)`` with values ``err (3,)`` to ``H`` and ``g``; returns their ½|r|²."""
    J = rows.shape[1]
    for a in range(J):
        g[a] += rows[0, a] * err[0] + rows[1, a] * err[1] + rows[2, a] * err[2]
        for c in range(J):
            H[a, c] += rows[0, a] * rows[0, c] + rows[1, a] * rows[1, c] + rows[2, a] * rows[2, c]
    return 0.5 * (err[0] * err[0] + err[1] * err[1] + err[2] * err[2])
