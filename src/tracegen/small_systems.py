"""Compiled solve of a small dense linear system, for the Gauss-Newton loops that run it thousands of times per call
(the forge's surface fit, the executor's kinematic fit): at 6x6 or 7x7 a LAPACK call costs more in overhead than
the arithmetic, and a compiled loop can call this one without leaving machine code."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def solve_into(A, b, x):  # pragma: no cover
    """``x`` of ``A x = b`` for a small square system, written into ``x``: Gaussian elimination with partial
    pivoting (A is overwritten, b kept)."""
    n = len(b)
    M = A
    x[:] = b
    for k in range(n):
        piv = k + np.argmax(np.abs(M[k:, k]))
        if piv != k:
            for j in range(n):
                M[k, j], M[piv, j] = M[piv, j], M[k, j]
            x[k], x[piv] = x[piv], x[k]
        for r in range(k + 1, n):
            f = M[r, k] / M[k, k]
            for j in range(k, n):
                M[r, j] -= f * M[k, j]
            x[r] -= f * x[k]
    for k in range(n - 1, -1, -1):
        s = x[k]
        for j in range(k + 1, n):
            s -= M[k, j] * x[j]
        x[k] = s / M[k, k]
    return x
