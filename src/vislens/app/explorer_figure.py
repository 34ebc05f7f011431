"""The explorer's scatter as a Plotly figure: WebGL points (at most a budget of them), a
density layer under them when the view holds more, colour by any column with a legend.

Plotly draws hover text and legend names as its own small HTML subset (``<b>``, ``<br>``,
``<a>``), so every value from the data is escaped here before it reaches the figure.
"""

from __future__ import annotations

import html
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
DENSITY_BINS = 200


def esc(value: Any, limit: int = 300) -> str:
    """Text for Plotly's HTML-ish labels: escaped, and cut at ``limit`` characters."""
    s = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return html.escape(s if len(s) <= limit else s[:limit] + "…")


def hover_text(data: ExplorerData, idx: np.ndarray) -> list[str]:
    if not data.hover:
        return [f"row {i}" for i in idx]
    cols = [data.meta[c].to_numpy()[idx] for c in data.hover]
    names = [esc(c) for c in data.hover]
    return [
        "<br>".join(f"{n}: {esc(v[k])}" for n, v in zip(names, cols, strict=True))
        for k in range(idx.shape[0])
    ]


def category_order(data: ExplorerData, column: str) -> list[str]:
    """The column's most frequent values over all points, the rest grouped as OTHER."""
    counts = data.meta[column].astype(str).value_counts(sort=True)
    top = [str(v) for v in counts.index[:MAX_CATEGORIES]]
    return top + ([OTHER] if len(counts) > MAX_CATEGORIES else [])


def build_figure(
    data: ExplorerData,
    idx: np.ndarray,
    total: int,
    color_by: str,
    density: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
) -> Any:
    import plotly.graph_objects as go

    traces: list[Any] = []
    if density is not None:
        z, xc, yc = density
        traces.append(
            go.Heatmap(
                z=np.log1p(z),
                x=xc,
                y=yc,
                colorscale=[[0, "rgba(255,255,255,0)"], [1, "rgba(40,40,90,0.85)"]],
                showscale=False,
                hoverinfo="skip",
                name="density",
            )
        )
    text = hover_text(data, idx)
    x, y = data.x[idx], data.y[idx]
    marker_size = 5 if idx.shape[0] < 20_000 else 3
    if color_by and color_by in data.meta.columns and data.is_categorical(color_by):
        order = category_order(data, color_by)
        values = data.meta[color_by].astype(str).to_numpy()[idx]
        known = set(order)
        values = np.where(np.isin(values, list(known)), values, OTHER)
        for k, cat in enumerate(order):
            sel = values == cat
            if not sel.any():
                continue
            traces.append(
                go.Scattergl(
                    x=x[sel],
                    y=y[sel],
                    mode="markers",
                    name=esc(cat, 60),
                    marker={"size": marker_size, "color": PALETTE[k % len(PALETTE)]},
                    customdata=idx[sel].tolist(),  # a typed array never reaches click events
                    hovertext=[t for t, s in zip(text, sel, strict=True) if s],
                    hoverinfo="text",
                )
            )
    else:
        marker: dict[str, Any] = {"size": marker_size, "color": "#4c78a8"}
        if color_by and color_by in data.meta.columns:
            vals = pd.to_numeric(data.meta[color_by], errors="coerce").to_numpy()[idx]
            marker = {
                "size": marker_size,
                "color": vals,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": esc(color_by, 40)}},
            }
        traces.append(
            go.Scattergl(
                x=x,
                y=y,
                mode="markers",
                name="points",
                marker=marker,
                customdata=idx.tolist(),
                hovertext=text,
                hoverinfo="text",
                showlegend=False,
            )
        )
    shown = f"{idx.shape[0]:,} of {total:,} points in view"
    if density is not None:
        shown += " (the shading is every point's density)"
    fig = go.Figure(traces)
    fig.update_layout(
        uirevision="explorer",
        margin={"l": 30, "r": 10, "t": 30, "b": 30},
        title={"text": esc(shown), "font": {"size": 12}, "x": 0.01},
        legend={"itemsizing": "constant", "title": {"text": esc(color_by, 40)}},
        plot_bgcolor="#fff",
        dragmode="zoom",
        hovermode="closest",
        xaxis={"showgrid": False, "zeroline": False},
        yaxis={"showgrid": False, "zeroline": False},
    )
    if x_range is not None and y_range is not None:
        fig.update_xaxes(range=list(x_range))
        fig.update_yaxes(range=list(y_range))
    return fig
