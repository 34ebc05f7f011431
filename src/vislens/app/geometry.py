"""Selections over 2-D points, computed on the server from the shape the user drew.

The browser sends only the lasso polygon (or the box); the indices of every point inside
are computed here over all points, not only the ones drawn, so a selection at a million
points never travels through a callback.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float


def points_in_polygon(
    x_n: Float[np.ndarray, " n"],
    y_n: Float[np.ndarray, " n"],
    poly_x: Float[np.ndarray, " m"],
    poly_y: Float[np.ndarray, " m"],
) -> Bool[np.ndarray, " n"]:
    """Even-odd rule (a ray cast to +x crosses the boundary an odd number of times), one
    vectorised pass per polygon edge over the points inside the polygon's bounding box.
    Written out because neither numpy nor scipy has it; matplotlib's Path would be a
    dependency for one function."""
    x_n = np.asarray(x_n, dtype=np.float64)
    y_n = np.asarray(y_n, dtype=np.float64)
    px = np.asarray(poly_x, dtype=np.float64)
    py = np.asarray(poly_y, dtype=np.float64)
    out = np.zeros(x_n.shape[0], dtype=bool)
    if px.shape[0] < 3:
        return out
    box = (x_n >= px.min()) & (x_n <= px.max()) & (y_n >= py.min()) & (y_n <= py.max())
    idx = np.flatnonzero(box)
    xs, ys = x_n[idx], y_n[idx]
    inside = np.zeros(idx.shape[0], dtype=bool)
    j = px.shape[0] - 1
    for i in range(px.shape[0]):
        xi, yi, xj, yj = px[i], py[i], px[j], py[j]
        crosses = (yi > ys) != (yj > ys)  # the edge spans the point's height (never flat)
        if crosses.any():
            x_at = (xj - xi) * (ys[crosses] - yi) / (yj - yi) + xi
            inside[crosses] ^= xs[crosses] < x_at
        j = i
    out[idx] = inside
    return out


def points_in_box(
    x_n: Float[np.ndarray, " n"],
    y_n: Float[np.ndarray, " n"],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
) -> Bool[np.ndarray, " n"]:
    """Points inside a box (edges included), whichever way the ranges are given."""
    x0, x1 = sorted(x_range)
    y0, y1 = sorted(y_range)
    return (x_n >= x0) & (x_n <= x1) & (y_n >= y0) & (y_n <= y1)
