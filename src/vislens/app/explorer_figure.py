"""The explorer's scatter as a Plotly figure: WebGL points (at most a budget of them), a
density layer under them when the view holds more (explorer_density.py), colour by any
column with a legend.

The figure is a plain dict, not ``plotly.graph_objects`` (whose validators cost more than
the rest of the figure at 20,000 points), and numeric arrays travel as Plotly's base64
typed arrays (``{"dtype", "bdata"}``), so a first draw at a million points sends about a
megabyte. Hover shows ``customdata`` through a ``hovertemplate``, column names in the
trace's ``meta``.

Plotly draws hover text and legend names as its own small HTML subset (``<b>``, ``<br>``,
``<a>``), so every value from the data is escaped here before it reaches the figure.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from vislens.app.explorer_data import MAX_CATEGORIES, ExplorerData

PALETTE = [
    "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
    "#9d755d", "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
]  # fmt: skip
OTHER = "(other)"
HOVER_LIMIT = 300
"""Characters of a value shown on hover."""

_DTYPES = {"float32": "f4", "float64": "f8", "uint8": "u1", "int32": "i4", "uint32": "u4"}

Layer = tuple[list[dict[str, Any]], list[dict[str, Any]]]
"""What a density layer adds to the figure: traces (drawn first) and layout images."""
DensityLayer = Callable[
    [ExplorerData, np.ndarray, tuple[float, float], tuple[float, float], str], Layer
]
"""``layer(data, mask, x_range, y_range, color_by)``: every masked point of the view, drawn
under the budgeted points when the view holds more than the budget."""


def typed_array(a: np.ndarray) -> dict[str, str]:
    """Plotly.js' base64 typed-array form of a numeric array (2-D arrays carry a shape)."""
    a = np.ascontiguousarray(a)
    out = {"dtype": _DTYPES[str(a.dtype)], "bdata": base64.b64encode(a.tobytes()).decode()}
    if a.ndim > 1:
        out["shape"] = ", ".join(str(s) for s in a.shape)
    return out


def esc(value: Any, limit: int = HOVER_LIMIT) -> str:
    """Text for Plotly's HTML-ish labels: escaped, and cut at ``limit`` characters."""
    s = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return html.escape(s if len(s) <= limit else s[:limit] + "…", quote=False)


def _cached(data: ExplorerData, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    with data.lock:
        hit = data.cache.get(key)
    if hit is None:
        hit = make()
        with data.lock:
            data.cache[key] = hit
    return hit


def escaped_column(data: ExplorerData, column: str) -> np.ndarray:
    """Every value of ``column`` as hover text (escaped, cut), computed once per column;
    only the values that need it go through :func:`esc`."""

    def make() -> np.ndarray:
        s = data.meta[column]
        text = s.astype(str).where(s.notna(), "")
        out = text.to_numpy(dtype=object)
        risky = (text.str.contains("[&<>]", regex=True) | (text.str.len() > HOVER_LIMIT)).to_numpy()
        for i in np.flatnonzero(risky):
            out[i] = esc(out[i])
        return out

    return _cached(data, ("hover", column), make)


def category_codes(data: ExplorerData, column: str) -> tuple[list[str], np.ndarray]:
    """The column's most frequent values over all points (the rest grouped as OTHER) and
    each point's index into that list, computed once per column."""

    def make() -> tuple[list[str], np.ndarray]:
        text = data.meta[column].astype(str)
        counts = text.value_counts(sort=True)
        order = [str(v) for v in counts.index[:MAX_CATEGORIES]]
        codes = pd.Categorical(text, categories=order).codes.astype(np.int32)
        if len(counts) > MAX_CATEGORIES:
            codes[codes < 0] = len(order)
            order.append(OTHER)
        return order, codes

    return _cached(data, ("codes", column), make)


def numeric_column(data: ExplorerData, column: str) -> np.ndarray:
    def make() -> np.ndarray:
        return pd.to_numeric(data.meta[column], errors="coerce").to_numpy(dtype=np.float32)

    return _cached(data, ("numeric", column), make)


def hover_parts(data: ExplorerData, idx: np.ndarray) -> tuple[list[list[Any]], str, list[str]]:
    """``(customdata, hovertemplate, meta)``: per point its row id then its hover values
    (escaped), and the template that shows them under the (escaped) column names."""
    cols = [escaped_column(data, c)[idx] for c in data.hover]
    rows = np.empty((idx.shape[0], 1 + len(cols)), dtype=object)
    rows[:, 0] = idx.tolist()
    for j, col in enumerate(cols):
        rows[:, j + 1] = col
    if not cols:
        return rows.tolist(), "row %{customdata[0]}<extra></extra>", []
    template = "<br>".join(f"%{{meta[{j}]}}: %{{customdata[{j + 1}]}}" for j in range(len(cols)))
    return rows.tolist(), template + "<extra></extra>", [esc(c) for c in data.hover]


def _points(
    x: np.ndarray, y: np.ndarray, custom: list[Any], template: str, meta: list[str]
) -> dict[str, Any]:
    return {
        "type": "scattergl",
        "mode": "markers",
        "x": typed_array(x.astype(np.float32)),
        "y": typed_array(y.astype(np.float32)),
        "customdata": custom,  # a plain list: click events carry it back
        "hovertemplate": template,
        "meta": meta,
    }


def build_figure(
    data: ExplorerData,
    idx: np.ndarray,
    total: int,
    color_by: str,
    density: Layer | None,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """The figure (a dict) for the points ``idx`` of a view holding ``total``."""
    traces: list[dict[str, Any]] = list(density[0]) if density else []
    custom, template, meta = hover_parts(data, idx)
    x, y = data.x[idx], data.y[idx]
    size = 5 if idx.shape[0] < 20_000 else 3
    if color_by and color_by in data.meta.columns and data.is_categorical(color_by):
        order, codes = category_codes(data, color_by)
        here = codes[idx]
        for k, cat in enumerate(order):
            sel = np.flatnonzero(here == k)
            if sel.size == 0:
                continue
            trace = _points(x[sel], y[sel], [custom[i] for i in sel], template, meta)
            trace.update(
                name=esc(cat, 60), marker={"size": size, "color": PALETTE[k % len(PALETTE)]}
            )
            traces.append(trace)
    else:
        marker: dict[str, Any] = {"size": size, "color": "#4c78a8"}
        if color_by and color_by in data.meta.columns:
            marker = {
                "size": size,
                "color": typed_array(numeric_column(data, color_by)[idx]),
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": esc(color_by, 40)}},
            }
        trace = _points(x, y, custom, template, meta)
        trace.update(name="points", marker=marker, showlegend=False)
        traces.append(trace)
    shown = f"{idx.shape[0]:,} of {total:,} points in view"
    if density is not None:
        shown += " · the layer underneath shows every point"
    layout: dict[str, Any] = {
        "uirevision": "explorer",
        "margin": {"l": 30, "r": 10, "t": 30, "b": 30},
        "title": {"text": esc(shown), "font": {"size": 12}, "x": 0.01},
        "legend": {"itemsizing": "constant", "title": {"text": esc(color_by, 40)}},
        "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff",
        "dragmode": "zoom",
        "hovermode": "closest",
        "xaxis": {"showgrid": False, "zeroline": False},
        "yaxis": {"showgrid": False, "zeroline": False},
        "images": list(density[1]) if density else [],
    }
    if x_range is not None and y_range is not None:
        layout["xaxis"]["range"] = list(x_range)
        layout["yaxis"]["range"] = list(y_range)
    return {"data": traces, "layout": layout}
