"""What the explorer draws for a state of its controls, cached: the filter mask and the
figure with its "n of N points match" line.

A first visit draws the default state (the start-up colour, no filter, no zoom), which
:meth:`ExplorerViews.warm` computes once when the data are loaded, so the page's first
draw needs no callback at all: the figure arrives with the page layout. Later states are
computed on demand and the last few kept (least recently used out first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from vislens.app.explorer_data import ExplorerData
from vislens.app.explorer_density import datashader_density
from vislens.app.explorer_figure import DensityLayer, build_figure

DEFAULT_BUDGET = 20_000
"""Points drawn at most (bench/explorer.py measured the draw time against this)."""
KEEP = 8
"""Figures and masks kept per explorer."""

View = tuple[tuple[float, float] | None, tuple[float, float] | None]


def axis_ranges(view: dict[str, Any] | None) -> View:
    """``(x_range, y_range)`` from the page's view store (None for an axis showing all)."""

    def one(r: Any) -> tuple[float, float] | None:
        try:
            return (float(r[0]), float(r[1])) if r else None
        except (TypeError, ValueError, IndexError):
            return None

    view = view or {}
    return one(view.get("x")), one(view.get("y"))


class _LRU:
    def __init__(self, size: int) -> None:
        self._d: OrderedDict[Any, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)


class ExplorerViews:
    """The explorer's data and its cached masks and figures."""

    def __init__(
        self,
        data: ExplorerData,
        *,
        budget: int = DEFAULT_BUDGET,
        density_layer: DensityLayer = datashader_density,
    ) -> None:
        self.data = data
        self.budget = budget
        self.density_layer = density_layer
        self._masks = _LRU(KEEP)
        self._figures = _LRU(KEEP)

    @staticmethod
    def _filter_key(fcol: Any, fvals: Any, search: Any) -> tuple[Any, ...]:
        vals = tuple(sorted(str(v) for v in fvals or [])) if fcol else ()
        return (str(fcol or "") if vals else "", vals, str(search or "").strip().lower())

    def mask(self, fcol: Any = None, fvals: Any = None, search: Any = "") -> np.ndarray:
        """Points passing the filter (column values) and the text search."""
        key = self._filter_key(fcol, fvals, search)
        hit = self._masks.get(key)
        if hit is None:
            hit = self.data.filter_mask(key[0] or None, list(key[1]), key[2])
            self._masks.put(key, hit)
        return hit

    def figure(
        self,
        color: Any = None,
        fcol: Any = None,
        fvals: Any = None,
        search: Any = "",
        view: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """The figure for this state of the controls, and the line counting matches."""
        xr, yr = axis_ranges(view)
        key = (str(color or ""), self._filter_key(fcol, fvals, search), xr, yr)
        hit = self._figures.get(key)
        if hit is not None:
            return hit
        data = self.data
        mask = self.mask(fcol, fvals, search)
        idx, total = data.view(mask, xr, yr, self.budget)
        layer = None
        if total > idx.shape[0]:
            full_x = xr or (float(data.x.min()), float(data.x.max()))
            full_y = yr or (float(data.y.min()), float(data.y.max()))
            layer = self.density_layer(data, mask, full_x, full_y, key[0])
        fig = build_figure(data, idx, total, key[0], layer, xr, yr)
        out = (fig, f"{int(mask.sum()):,} of {data.n:,} points match")
        self._figures.put(key, out)
        return out

    def warm(self) -> None:
        """Compute the first visit's figure now (at load, not on the first request)."""
        self.figure(self.data.color_by)
