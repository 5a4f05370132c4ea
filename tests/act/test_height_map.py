"""The remembered height map and the press's tool choice it informs (plain numpy, no simulator)."""

import numpy as np
import pytest

from synthetic import floor_with
from tracegen.act.height_map import HeightMap, straddled_protrusion

FINGERS = np.array([[0.0, -0.047], [0.0, 0.047]])  # the Sawyer's pads, either side of the tool centre (m)


def test_each_cell_holds_the_highest_point_its_latest_observation_saw():
    heights = HeightMap(cell_m=0.01)
    heights.update(floor_with((0.0, 0.0)))
    assert heights.top(np.zeros(2), 0.005) == pytest.approx(0.1)  # the block
    assert heights.top(np.array([0.08, 0.0]), 0.005) == pytest.approx(0.0)  # the floor beside it
    assert heights.top(np.array([0.0, 0.04]), 0.03) == pytest.approx(0.1)  # the block's edge within reach
    heights.update(floor_with()[np.abs(floor_with()[:, 1]) < 0.03])  # the block is gone where seen again ...
    assert heights.top(np.zeros(2), 0.005) == pytest.approx(0.0)
    assert np.isnan(heights.top(np.array([5.0, 5.0]), 0.01))  # never seen, outside the map
    assert np.isnan(HeightMap().top(np.zeros(2), 0.01))  # an empty map knows nothing


def test_a_hidden_cell_keeps_what_was_last_seen_there():
    heights = HeightMap(cell_m=0.01)
    heights.update(floor_with((0.0, 0.0)))
    visible = floor_with()
    heights.update(visible[np.linalg.norm(visible[:, :2], axis=1) > 0.05])  # the arm now hides the block
    assert heights.top(np.zeros(2), 0.005) == pytest.approx(0.1)


def test_a_press_on_a_narrow_cap_is_straddled_a_press_beside_a_lever_is_not():
    cap = HeightMap(cell_m=0.01)
    cap.update(floor_with((0.0, 0.0), half_width=0.02))  # a 4 cm cap, the fingers 9.4 cm apart
    assert straddled_protrusion(cap, np.zeros(2), FINGERS, 0.02)
    lever = HeightMap(cell_m=0.01)
    lever.update(floor_with((0.0, 0.047), half_width=0.02))  # the target is under a finger, not the centre
    assert not straddled_protrusion(lever, np.zeros(2), FINGERS, 0.02)
    wide = HeightMap(cell_m=0.01)
    wide.update(floor_with((0.0, 0.0), half_width=0.08))  # a box wider than the hand: the fingers land on it too
    assert not straddled_protrusion(wide, np.zeros(2), FINGERS, 0.02)
    assert not straddled_protrusion(cap, np.zeros(2), FINGERS, 0.2)  # a 10 cm cap is not 20 cm proud


def test_a_finger_over_an_unseen_surface_does_not_count_and_an_unseen_centre_decides_nothing():
    points = floor_with((0.0, 0.0))
    one_side = HeightMap(cell_m=0.01)
    one_side.update(points[points[:, 1] < 0.03])  # the far side of the cap hidden from the camera
    assert straddled_protrusion(one_side, np.zeros(2), FINGERS, 0.02)
    assert not straddled_protrusion(one_side, np.zeros(2), FINGERS[1:], 0.02)  # no finger over a seen surface
    blind = HeightMap(cell_m=0.01)
    blind.update(points[np.linalg.norm(points[:, :2], axis=1) > 0.03])
    assert not straddled_protrusion(blind, np.zeros(2), FINGERS, 0.02)
    assert not straddled_protrusion(one_side, np.zeros(2), np.zeros((0, 2)), 0.02)  # no fingers: no straddle


def test_a_height_map_needs_positive_cells():
    with pytest.raises(ValueError, match="cell_m"):
        HeightMap(cell_m=0.0)
