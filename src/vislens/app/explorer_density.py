"""The explorer's density layer: every point of the view (not only the budget drawn as
WebGL markers) aggregated per pixel by datashader and sent as one PNG under the markers.

Coloured as the markers are: by category (each pixel mixes its categories' colours, more
points more opaque, histogram-equalised so sparse regions stay visible), by the mean of a
numeric column (Viridis over the column's range, as the colour bar), or as counts in the
page's blue when there is no colour. bench/explorer.py chose it over a 200 × 200 log-count
heatmap: the same first draw and lasso time at a million points, a quicker zoom, and every
point shown in its colour (docs/app.md, "The renderer").
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from vislens.app.explorer_data import ExplorerData
from vislens.app.explorer_figure import PALETTE, Layer, category_codes, numeric_column

WIDTH, HEIGHT = 1000, 620
"""Pixels of the density image (about the scatter's plot area); Plotly stretches it over
the view's axes."""
VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
COUNT_RAMP = ["#c6cce8", "#28285a"]


def density_image(
    data: ExplorerData,
    mask: np.ndarray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    color_by: str,
) -> Any:
    """The RGBA image (a datashader ``Image``, rows from the top) of the masked points."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    canvas = ds.Canvas(
        plot_width=WIDTH,
        plot_height=HEIGHT,
        x_range=tuple(sorted(x_range)),
        y_range=tuple(sorted(y_range)),
    )
    df = pd.DataFrame({"x": data.x[mask], "y": data.y[mask]})
    if color_by and color_by in data.meta.columns and data.is_categorical(color_by):
        order, codes = category_codes(data, color_by)
        df["c"] = pd.Categorical.from_codes(codes[mask], dtype=pd.CategoricalDtype(order))
        agg = canvas.points(df, "x", "y", agg=ds.count_cat("c"))
        key = {cat: PALETTE[k % len(PALETTE)] for k, cat in enumerate(order)}
        return tf.shade(agg, color_key=key, how="eq_hist", min_alpha=60)
    if color_by and color_by in data.meta.columns:
        values = numeric_column(data, color_by)
        df["v"] = values[mask]
        agg = canvas.points(df, "x", "y", agg=ds.mean("v"))
        finite = values[np.isfinite(values)]
        span = (float(finite.min()), float(finite.max())) if finite.size else None
        return tf.shade(agg, cmap=VIRIDIS, how="linear", span=span)
    return tf.shade(canvas.points(df, "x", "y", agg=ds.count()), cmap=COUNT_RAMP, how="eq_hist")


def datashader_density(
    data: ExplorerData,
    mask: np.ndarray,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    color_by: str,
) -> Layer:
    """The layer for ExplorerViews: no traces, one layout image over the view's axes."""
    image = density_image(data, mask, x_range, y_range, color_by)
    buf = io.BytesIO()
    image.to_pil().save(buf, format="PNG")
    (x0, x1), (y0, y1) = sorted(x_range), sorted(y_range)
    layout_image = {
        "source": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "xref": "x",
        "yref": "y",
        "x": x0,
        "y": y1,
        "sizex": x1 - x0,
        "sizey": y1 - y0,
        "sizing": "stretch",
        "layer": "below",
    }
    return [], [layout_image]
