"""The trace evaluator's per-sample scores, on a hand-made example (plain numpy)."""

import numpy as np
import pytest

from tracegen.model.data import Example
from tracegen.model.evaluate import displacement_metrics
from tracegen.traces import encode_deltas


def four_point_example() -> Example:
    """Four points, four steps, 100 x 100 px: point 0 moves 3 px right per step, the others stay."""
    traj = np.zeros((4, 5, 3), np.float32)
    traj[:, :, :2] = np.array([[10, 10], [50, 10], [10, 50], [50, 50]])[:, None]
    traj[:, :, 2] = 1.0
    traj[0, :, 0] += 3.0 * np.arange(5)
    x0, mask = encode_deltas(traj, np.ones(5, bool), 100, 100, horizon=4)
    rgb, depth = np.zeros((3, 8, 8), np.uint8), np.ones((1, 8, 8), np.float32)
    return Example(rgb, depth, True, x0, mask, ["push"], traj, (100, 100), "ep", np.eye(3), True)


def test_false_motion_is_the_share_of_still_points_the_prediction_moves():
    ex = four_point_example()
    exact = displacement_metrics(ex.x0, ex)
    assert exact["ade_px"] == pytest.approx(0, abs=1e-5) and exact["false_motion"] == 0
    assert exact["ade_px_moving"] == pytest.approx(0, abs=1e-5)
    made_up = ex.x0.copy()
    made_up[1, :, 1] = 1.0  # point 1 (still) goes down 5 px per step: one of the three still points moves
    assert displacement_metrics(made_up, ex)["false_motion"] == pytest.approx(1 / 3)
    static = displacement_metrics(np.zeros_like(ex.x0), ex)
    assert static["false_motion"] == 0 and static["ade_px_moving"] == pytest.approx(np.mean([3, 6, 9, 12]))
