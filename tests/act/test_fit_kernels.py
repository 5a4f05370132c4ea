"""The fit's compiled linear algebra against NumPy's."""

import numpy as np

from tracegen.act.fit_kernels import cholesky_solve


def test_cholesky_solve_matches_numpy_on_positive_definite_systems():
    rng = np.random.default_rng(0)
    for n in (1, 3, 7):
        A = rng.normal(size=(n + 2, n))
        H = A.T @ A + 1e-3 * np.eye(n)
        b = rng.normal(size=n)
        np.testing.assert_allclose(cholesky_solve(H, b), np.linalg.solve(H, b), rtol=1e-10, atol=1e-12)
