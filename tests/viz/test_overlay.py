import numpy as np

from tracegen.viz.overlay import draw_traces, point_colors, side_by_side


def test_tails_are_drawn_where_points_move_and_dots_where_they_end():
    rgb = np.zeros((20, 30, 3), np.uint8)
    traj = np.zeros((2, 5, 3))
    traj[0, :, 0] = np.linspace(2, 20, 5)  # moves right along row 4
    traj[0, :, 1] = 4
    traj[1, :, :2] = [25, 15]  # static
    out = draw_traces(rgb, traj, min_size=60, min_motion_px=1.0)
    assert out.shape == (40, 60, 3)  # upscaled x2 so the longer side reaches min_size
    row = out[4 * 2 + 1]
    assert (row[10 * 2 : 18 * 2].max(axis=1) > 0).all()  # the tail covers the path
    assert out[15 * 2 + 1, 25 * 2 + 1].max() > 0  # the static point still gets its dot
    assert out[15 * 2 + 1, 5 * 2 + 1].max() == 0  # nothing where no trace went


def test_colors_and_side_by_side():
    c = point_colors(400)
    assert c.shape == (400, 3) and len({tuple(x) for x in c}) > 100
    a, b = np.zeros((10, 4, 3), np.uint8), np.zeros((8, 6, 3), np.uint8)
    assert side_by_side(a, b, gap=2).shape == (10, 12, 3)
