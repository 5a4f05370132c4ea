"""What lies under the tool: a height map of the scene, remembered across observations.

When the effector hovers over what it is about to press, the arm hides it from the camera; an earlier observation
saw it. :class:`HeightMap` fuses every observation's scene points (the robot's own pixels left out) into a grid of
``cell_m`` cells over the table, each holding the highest surface its latest observation saw there: a cell seen
again is overwritten (a pressed button, a moved object), a hidden one keeps what was last seen.

:func:`straddled_protrusion` uses it to choose the tool for a press: a gripper's open fingers straddle a narrow
protrusion under the tool centre (a button's cap jams between them), so a press aimed at something that stands proud
of what lies under a finger is made with the fingers closed; a press whose target the open fingers would land on (a
lever under a finger, the centre over the floor) stays open.
"""

from __future__ import annotations

import numpy as np


class HeightMap:
    """Highest surface (world z, m) per ``cell_m`` × ``cell_m`` cell of the world's xy plane, over the extent of
    the first observation's points plus ``margin_m``; NaN where nothing was seen."""

    def __init__(self, cell_m: float = 0.01, margin_m: float = 0.5):
        if cell_m <= 0 or margin_m < 0:
            raise ValueError(f"a height map needs cell_m > 0 and margin_m >= 0, got {cell_m}, {margin_m}")
        self.cell_m, self.margin_m = cell_m, margin_m
        self.origin: np.ndarray | None = None  # (2,) world xy of cell (0, 0)'s corner, m
        self.heights: np.ndarray | None = None  # (X, Y) m, NaN: never seen

    def update(self, points: np.ndarray) -> None:
        """Fuse one observation's scene points ``(P, 3)`` (world, m): each cell they fall in now holds their highest
        z; the others keep theirs."""
        points = points[np.isfinite(points).all(1)]
        if len(points) == 0:
            return
        if self.heights is None:
            self.origin = points[:, :2].min(0) - self.margin_m
            size = np.ceil((points[:, :2].max(0) + self.margin_m - self.origin) / self.cell_m).astype(int) + 1
            self.heights = np.full(tuple(size), np.nan)
        cells = np.floor((points[:, :2] - self.origin) / self.cell_m).astype(int)  # (P, 2)
        inside = ((cells >= 0) & (cells < self.heights.shape)).all(1)
        cells, z = cells[inside], points[inside, 2]
        seen = np.full(self.heights.shape, -np.inf)
        np.maximum.at(seen, (cells[:, 0], cells[:, 1]), z)
        fresh = np.isfinite(seen)
        self.heights[fresh] = seen[fresh]

    @property
    def empty(self) -> bool:
        """Whether nothing was seen yet."""
        return self.heights is None

    def top(self, xy: np.ndarray, radius_m: float) -> float:
        """Highest remembered surface (m) of the cell ``xy (2,)`` lies in and of those whose centres lie within
        ``radius_m`` of it; NaN if none of them was seen."""
        if self.heights is None:
            return float("nan")
        position = (np.asarray(xy, float) - self.origin) / self.cell_m  # in cells
        own = np.floor(position).astype(int)
        reach = int(np.ceil(radius_m / self.cell_m))
        lo, hi = np.maximum(own - reach, 0), np.minimum(own + reach + 1, self.heights.shape)
        if (hi <= lo).any():
            return float("nan")
        ii, jj = np.mgrid[lo[0] : hi[0], lo[1] : hi[1]]
        near = np.hypot(ii + 0.5 - position[0], jj + 0.5 - position[1]) * self.cell_m <= radius_m
        near |= (ii == own[0]) & (jj == own[1])
        values = self.heights[ii[near], jj[near]]
        values = values[np.isfinite(values)]
        return float(values.max()) if len(values) else float("nan")


def straddled_protrusion(
    heights: HeightMap,
    tool_xy: np.ndarray,
    finger_offsets: np.ndarray,
    min_height_m: float,
    centre_radius_m: float = 0.015,
    finger_radius_m: float = 0.005,
) -> bool:
    """Whether a press at ``tool_xy (2,)`` (world, m) aims at something narrower than the open hand: the highest
    surface within ``centre_radius_m`` of the tool centre stands at least ``min_height_m`` above the highest within
    ``finger_radius_m`` of some finger, the fingers at ``finger_offsets (F, 2)`` (m) from the centre (only fingers
    over surfaces the map has seen count: the far side of a tall object is often hidden from the camera). False
    when the centre's surface is unknown or no finger's is."""
    centre = heights.top(tool_xy, centre_radius_m)
    fingers = np.array([heights.top(tool_xy + offset, finger_radius_m) for offset in np.asarray(finger_offsets)])
    seen = fingers[np.isfinite(fingers)]
    if not np.isfinite(centre) or len(seen) == 0:
        return False
    return bool(centre - seen.min() >= min_height_m)
