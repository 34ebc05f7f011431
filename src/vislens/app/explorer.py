"""The explorer page (seed 003): a WebGL scatter of a 2-D map, colour by any column, hover,
click → image and LLM rationale, lasso/box → a paged image grid and a table (CSV download),
filter by column values and text search.

The data stay on the server (:class:`ExplorerData`). The browser gets at most ``budget``
points of the current view; a lasso or box is sent back as its shape only (a clientside
callback drops the points Plotly attaches), and the selection is computed here over every
point. Selections live in a small server-side cache keyed by an id the page holds.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from vislens.app.explorer_data import ExplorerData
from vislens.app.explorer_views import DEFAULT_BUDGET, ExplorerViews
from vislens.errors import VislensError

__all__ = ["DEFAULT_BUDGET", "ExplorerViews", "create_view_app", "layout", "register"]

from vislens.app.explorer_layout import _table, layout

PAGE_SIZE = 24
TABLE_ROWS = 500
MAX_FILTER_VALUES = 500

GetData = Callable[[], ExplorerData]

VIEW_JS = """
function (r) {
  // Only zooms and resets reach the server; a relayout that moves no axis (autosize,
  // dragmode, legend clicks) would otherwise race the first draw and win.
  var nu = window.dash_clientside.no_update;
  if (!r) { return nu; }
  var out = {x: null, y: null}, moved = false;
  // A zoom arrives as 'xaxis.range[0]'/'[1]', or as 'xaxis.range' when set as a whole.
  ['x', 'y'].forEach(function (a) {
    var k = a + 'axis.range';
    if ((k + '[0]') in r) { out[a] = [r[k + '[0]'], r[k + '[1]']]; moved = true; }
    else if (Array.isArray(r[k])) { out[a] = r[k].slice(0, 2); moved = true; }
  });
  if (r['xaxis.autorange'] || r['yaxis.autorange']) { moved = true; }
  return moved ? out : nu;
}
"""

SHAPE_JS = """
function (sel) {
  // Only the drawn shape goes to the server, never the points Plotly attaches to it.
  if (!sel) { return null; }
  if (sel.lassoPoints) { return {lasso: sel.lassoPoints}; }
  if (sel.range) { return {range: sel.range}; }
  return null;
}
"""


class _Selections:
    """The last few selections' indices, by id (LRU)."""

    def __init__(self, size: int = 32) -> None:
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, idx: np.ndarray) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._d[key] = idx
            while len(self._d) > self._size:
                self._d.popitem(last=False)
        return key

    def get(self, key: str | None) -> np.ndarray | None:
        with self._lock:
            return self._d.get(key or "")


def selection_indices(data: ExplorerData, shape: dict[str, Any], mask: np.ndarray) -> np.ndarray:
    """Indices of the (filtered) points inside a lasso polygon or a box."""
    from vislens.app.geometry import points_in_box, points_in_polygon

    if "lasso" in shape:
        px = np.asarray(shape["lasso"]["x"], dtype=np.float64)
        py = np.asarray(shape["lasso"]["y"], dtype=np.float64)
        inside = points_in_polygon(data.x, data.y, px, py)
    else:
        r = shape["range"]
        inside = points_in_box(data.x, data.y, tuple(r["x"][:2]), tuple(r["y"][:2]))
    return np.flatnonzero(inside & mask)


def csv_safe(df: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading quote."""
    import pandas as pd

    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            s = out[c].astype(str)
            risky = s.str.match(r"^[=+\-@\t\r]")
            out[c] = s.where(~risky, "'" + s)
    return out


def register(app: Any, get_views: Callable[[], ExplorerViews | None]) -> None:
    """The page's callbacks; ``get_views()`` returns the (cached) data and figures."""
    import dash
    from dash import Input, Output, State, dcc, html

    from vislens.app import ui

    selections = _Selections()

    def get_data() -> ExplorerData | None:
        views = get_views()
        return views.data if views is not None else None

    @app.callback(
        Output("ex-fvals", "data"),
        Output("ex-fvals", "value"),
        Input("ex-fcol", "value"),
        prevent_initial_call=True,
    )
    def _filter_values(fcol: str | None) -> tuple[list[str], list[str]]:
        data = get_data()
        if data is None or not fcol or fcol not in data.meta.columns:
            return [], []
        vals = data.meta[fcol].astype(str).value_counts().index[:MAX_FILTER_VALUES]
        return [str(v) for v in vals], []

    @app.callback(
        Output("ex-graph", "figure"),
        Output("ex-count", "children"),
        Input("ex-color", "value"),
        Input("ex-fvals", "value"),
        Input("ex-search", "value"),
        Input("ex-view", "data"),
        State("ex-fcol", "value"),
        prevent_initial_call=True,  # the layout carries the first figure
    )
    def _figure(color: Any, fvals: Any, search: Any, view: Any, fcol: Any) -> Any:
        views = get_views()
        if views is None:
            return dash.no_update, ""
        return views.figure(color, fcol, fvals, search, view)

    @app.callback(
        Output("ex-image", "src"),
        Output("ex-image-msg", "children"),
        Output("ex-details", "children"),
        Output("ex-rationale", "children"),
        Input("ex-graph", "clickData"),
        prevent_initial_call=True,
    )
    def _click(click: Any) -> Any:
        data = get_data()
        points = (click or {}).get("points") or []
        if data is None or not points or "customdata" not in points[0]:
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        custom = points[0]["customdata"]
        try:  # [row, hover values...]
            row = int(custom[0] if isinstance(custom, list) else custom)
        except (TypeError, ValueError, IndexError):
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        if not 0 <= row < data.n:
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        src = data.image_url(row)
        msg = ""
        if not src:
            msg = "No image source: start with --image_dir or --image_root."
        elif data.image_missing(row):
            msg = f"Image not found: {data.meta['file_name'].iloc[row]}"
            src = ""
        rec = data.meta.iloc[row]
        details = ui.fields((str(c), rec[c]) for c in (data.hover or list(data.meta.columns[:6])))
        r = data.rationale(row)
        rationale = html.Div(
            [
                html.Div(
                    [html.Span("prediction", className="vl-key"),
                     html.Span(r.prediction, id="ex-prediction", className="vl-val")],
                    className="vl-field",
                ),
                html.Div(
                    [html.Span("LLM score", className="vl-key"),
                     html.Span(r.score or "(missing)", id="ex-score", className="vl-val")],
                    className="vl-field",
                ),
                html.Div(r.rationale or "(missing)", id="ex-why", className="vl-why"),
            ]
        )  # fmt: skip
        return src, msg, details, rationale

    # Neither runs on the first load: a page drawn with the layout's figure has no zoom and
    # no selection yet, and makes no request before it is drawn.
    app.clientside_callback(
        VIEW_JS,
        Output("ex-view", "data"),
        Input("ex-graph", "relayoutData"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        SHAPE_JS,
        Output("ex-shape", "data"),
        Input("ex-graph", "selectedData"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("ex-sel", "data"),
        Output("ex-sel-info", "children"),
        Output("ex-grid", "children"),
        Output("ex-sel-id", "data"),
        Input("ex-shape", "data"),
        Input("ex-prev", "n_clicks"),
        Input("ex-next", "n_clicks"),
        State("ex-sel", "data"),
        State("ex-fcol", "value"),
        State("ex-fvals", "value"),
        State("ex-search", "value"),
        prevent_initial_call=True,
    )
    def _select(shape: Any, _p: Any, _n: Any, sel: Any, fcol: Any, fvals: Any, search: Any) -> Any:
        views = get_views()
        if views is None:
            return (dash.no_update,) * 4
        trig = dash.ctx.triggered_id
        sel = dict(sel or {})
        new_id: Any = dash.no_update
        if trig == "ex-shape":
            if not shape:
                return None, "Nothing selected.", [], None
            try:
                idx = selection_indices(views.data, shape, views.mask(fcol, fvals, search))
            except (KeyError, TypeError, ValueError, IndexError):
                return None, "Could not read the selection shape.", [], None
            sel = {"id": selections.put(idx), "page": 0, "n": int(idx.shape[0])}
            new_id = sel["id"]
        idx_or_none = selections.get(sel.get("id"))
        if idx_or_none is None:
            return None, "Selection expired — select again.", [], None
        idx, data = idx_or_none, views.data
        n_pages = max(1, -(-idx.shape[0] // PAGE_SIZE))
        page = int(sel.get("page", 0))
        if trig == "ex-prev":
            page = max(0, page - 1)
        elif trig == "ex-next":
            page = min(n_pages - 1, page + 1)
        sel["page"] = page
        chunk = idx[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        cards = []
        for row in chunk:
            label = str(data.meta[data.color_by].iloc[row]) if data.color_by else f"row {row}"
            src = data.image_url(int(row))
            cards.append(
                html.Figure(
                    [
                        html.Img(src=src, alt=label) if src else html.Div("no image"),
                        html.Figcaption(label),
                    ],
                    className="vl-card",
                )
            )
        info = f"{idx.shape[0]:,} selected · page {page + 1} / {n_pages}"
        if idx.shape[0] > TABLE_ROWS:
            info += f" · the table shows the first {TABLE_ROWS} (Download CSV has them all)"
        return sel, info, cards, new_id

    @app.callback(
        Output("ex-table-box", "children"),
        Input("ex-sel-id", "data"),
        prevent_initial_call=True,
    )
    def _table_rows(sel_id: Any) -> Any:
        """The table of a new selection, drawn after its image grid."""
        views = get_views()
        idx = selections.get(sel_id)
        if views is None or idx is None:
            return []
        rows = views.data.meta.iloc[idx[:TABLE_ROWS]].copy()
        rows.insert(0, "row", idx[:TABLE_ROWS])
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        return _table(records, [str(c) for c in rows.columns])

    @app.callback(
        Output("ex-dl", "data"),
        Input("ex-dl-btn", "n_clicks"),
        State("ex-sel", "data"),
        prevent_initial_call=True,
        running=[(Output("ex-dl-btn", "loading"), True, False)],
    )
    def _download(_n: Any, sel: Any) -> Any:
        data = get_data()
        idx = selections.get((sel or {}).get("id"))
        if data is None or idx is None:
            return dash.no_update
        out = data.meta.iloc[idx].copy()
        out.insert(0, "x", data.x[idx])
        out.insert(1, "y", data.y[idx])
        return dcc.send_data_frame(csv_safe(out).to_csv, "selection.csv", index=False)


def create_view_app(
    data: ExplorerData,
    *,
    host: str = "127.0.0.1",
    allowed_hosts: tuple[str, ...] = (),
    views: ExplorerViews | None = None,
) -> Any:
    """A Dash app with the explorer alone (``vislens view``, seed 003's viewer); its first
    figure is computed here, before the server answers anyone."""
    import dash
    import dash_ag_grid  # noqa: F401 - the table is made later; its library must load with the page
    import dash_mantine_components  # noqa: F401
    from dash import html

    from vislens.app import security, ui
    from vislens.app.files import register_image_route
    from vislens.app.style import index_html

    app = dash.Dash(__name__, title=f"vislens · {data.title}", update_title="")
    app.index_string = index_html()
    security.install(app.server, security.allowed_hosts(host, allowed_hosts))
    if data.image_dir is not None:
        register_image_route(app.server, data.image_dir)
    views = views or ExplorerViews(data)
    views.warm()
    app.layout = ui.provider(
        html.Div(
            [
                ui.header("vislens view", f"{data.n:,} points", []),
                html.Main(layout(views), className="vl-main vl-wide"),
            ]
        )
    )
    register(app, lambda: views)
    return app


def load_or_problem(loader: Callable[[], ExplorerData]) -> tuple[ExplorerData | None, str]:
    try:
        return loader(), ""
    except VislensError as e:
        return None, str(e)
