"""The compiled small-system solve against NumPy's."""

import numpy as np

from tracegen.small_systems import solve_into


def test_solve_into_matches_numpy_and_pivots():
    rng = np.random.default_rng(0)
    for n in (1, 3, 6, 7):
        A = rng.normal(size=(n, n)) + 1e-3 * np.eye(n)
        b = rng.normal(size=n)
        x = solve_into(A.copy(), b, np.empty(n))
        np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)
    A = np.array([[0.0, 1.0], [1.0, 0.0]])  # a zero pivot: needs the row swap
    np.testing.assert_allclose(solve_into(A.copy(), np.array([2.0, 3.0]), np.empty(2)), [3.0, 2.0])
