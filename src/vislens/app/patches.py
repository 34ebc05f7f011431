"""The Patches page (LatentLens): an image with its token grid; hover or click a cell for
its top neighbours per method at the chosen visual layer — LatentLens' contextual
neighbours (word, source caption with the word marked, similarity, contextual layer)
beside EmbeddingLens and LogitLens. Reads ``STUDY/lens/neighbors.parquet``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from vislens.app.context import AppContext
from vislens.app.pages import Page

NEIGHBOR_FILE = Path("lens") / "neighbors.parquet"
METHOD_ORDER = ("latentlens", "embeddinglens", "logitlens")
METHOD_NAMES = {
    "latentlens": "LatentLens · contextual neighbours",
    "embeddinglens": "EmbeddingLens · input embeddings",
    "logitlens": "LogitLens · unembedding",
}
TOP = 5

_cache: dict[tuple[str, float], pd.DataFrame] = {}
_lock = threading.Lock()


def read_neighbors(ctx: AppContext) -> pd.DataFrame | None:
    path = Path(ctx.study.root) / NEIGHBOR_FILE
    if not path.is_file():
        return None
    key = (str(path), path.stat().st_mtime)
    with _lock:
        hit = _cache.get(key)
    if hit is None:
        hit = pd.read_parquet(path)
        with _lock:
            _cache.clear()
            _cache[key] = hit
    return hit


def marked_caption(caption: str, word: str) -> list[Any]:
    """The caption as text with the first occurrence of ``word`` in a <mark>."""
    from dash import html

    caption, w = str(caption), str(word).strip()
    i = caption.lower().find(w.lower()) if w else -1
    if i < 0:
        return [caption]
    return [caption[:i], html.Mark(caption[i : i + len(w)]), caption[i + len(w) :]]


def cell_table(nb: pd.DataFrame, item: str, layer: int, row: int, col: int) -> list[Any]:
    """One block per method: the top neighbours of patch (row, col) at ``layer``."""
    from dash import html

    sel = nb[
        (nb["item_id"].astype(str) == item)
        & (nb["visual_layer"] == layer)
        & (nb["patch_row"] == row)
        & (nb["patch_col"] == col)
    ]
    blocks = []
    for method in [m for m in METHOD_ORDER if m in set(sel["method"])]:
        part = sel[sel["method"] == method].sort_values("rank").head(TOP)
        # LatentLens' neighbours come from captions at a contextual layer; the input and
        # output lenses have neither, so their tables are narrow and sit side by side.
        contextual = method == "latentlens"
        names = (
            ("#", "word", "similarity", "ctx layer", "caption")
            if contextual
            else ("#", "word", "similarity")
        )
        head = html.Tr([html.Th(h) for h in names])
        body = []
        for r in part.to_dict("records"):
            cells = [
                html.Td(str(int(r["rank"]))),
                html.Td(str(r["token_str"]), className="pt-word"),
                html.Td(f"{float(r['score']):.3f}"),
            ]
            if contextual:
                ctx_layer = int(r["contextual_layer"])
                cells += [
                    html.Td("—" if ctx_layer < 0 else str(ctx_layer)),
                    html.Td(marked_caption(str(r["caption"] or ""), str(r["token_str"]))),
                ]
            body.append(html.Tr(cells))
        blocks.append(
            html.Div(
                [
                    html.H4(METHOD_NAMES.get(method, method), className="vl-method"),
                    html.Table([html.Thead(head), html.Tbody(body)], className="vl-table"),
                ],
                id=f"pt-{method}",
            )
        )
    if len(blocks) == 3:  # EmbeddingLens beside LogitLens, under LatentLens
        blocks = [blocks[0], html.Div(blocks[1:], className="vl-pair")]
    if not blocks:
        return [
            html.P(
                f"No neighbours for patch ({row}, {col}) at layer {layer}.", className="vl-muted"
            )
        ]
    cell = html.P(
        f"Patch row {row}, column {col} · visual layer {layer}",
        id="pt-cell",
        className="vl-cellhead",
    )
    return [cell, *blocks]


def cell_truth(objects: Any, row: int, col: int) -> str | None:
    """The toy world's ground truth for cell (row, col) from an ``objects`` value (JSON list
    of ``{shape, color, r, c}``): ``"ground truth: red circle"`` (several joined by ``;``),
    ``"empty cell"``, or None when the value is missing or unreadable."""
    import json

    if objects is None or (isinstance(objects, float) and objects != objects):
        return None
    try:
        objs = json.loads(objects) if isinstance(objects, str) else objects
    except ValueError:
        return None
    if not isinstance(objs, list):
        return None
    here = []
    for o in objs:
        if not isinstance(o, dict):
            continue
        try:
            if int(o["r"]) == row and int(o["c"]) == col:
                here.append(f"{o.get('color', '')} {o.get('shape', '')}".strip())
        except (KeyError, TypeError, ValueError):
            continue
    return "ground truth: " + "; ".join(here) if here else "empty cell"


def item_objects(ctx: AppContext, item: str) -> Any:
    """The ``objects`` value of ``item`` in the study's images.parquet; None when the table
    or its ``objects`` column is absent."""
    import pyarrow.parquet as pq

    path = Path(ctx.study.root) / "images.parquet"
    try:
        if not path.is_file() or "objects" not in pq.ParquetFile(path).schema_arrow.names:
            return None
        t = pd.read_parquet(path, columns=["item_id", "objects"])
    except (OSError, ValueError):
        return None
    hit = t.loc[t["item_id"].astype(str) == item, "objects"]
    return None if hit.empty else hit.iloc[0]


def cell_view(
    ctx: AppContext, nb: pd.DataFrame, item: str, layer: int, row: int, col: int
) -> list[Any]:
    """The side panel for one cell: the toy world's ground truth (when images.parquet has
    ``objects``) above the neighbour tables."""
    from dash import html

    blocks = cell_table(nb, item, layer, row, col)
    truth = cell_truth(item_objects(ctx, item), row, col)
    if truth is not None:
        blocks.insert(0, html.P(truth, id="pt-truth", className="vl-truth"))
    return blocks


def _image_url(ctx: AppContext, item: str) -> str:
    from vislens.app.paths import image_source_root

    images_path = Path(ctx.study.root) / "images.parquet"
    root = image_source_root(ctx.study)
    if not images_path.is_file() or root is None:
        return ""
    t = pd.read_parquet(images_path, columns=["item_id", "source"])
    src = t.loc[t["item_id"].astype(str) == item, "source"]
    if src.empty:
        return ""
    p = Path(str(src.iloc[0]))
    p = p if p.is_absolute() else Path(ctx.study.root) / p
    try:
        return "/images/" + quote(p.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        return ""


def _figure(ctx: AppContext, nb: pd.DataFrame, item: str) -> Any:
    import numpy as np
    import plotly.graph_objects as go

    n_rows = int(nb["patch_row"].max()) + 1
    n_cols = int(nb["patch_col"].max()) + 1
    fig = go.Figure(
        go.Heatmap(
            z=np.zeros((n_rows, n_cols)),
            x=list(range(n_cols)),
            y=list(range(n_rows)),
            opacity=0.01,
            showscale=False,
            colorscale=[[0, "#fff"], [1, "#fff"]],
            hovertemplate="row %{y}, col %{x}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    url = _image_url(ctx, item)
    if url:
        fig.add_layout_image(
            source=url,
            xref="x",
            yref="y",
            x=-0.5,
            y=-0.5,
            sizex=n_cols,
            sizey=n_rows,
            sizing="stretch",
            layer="below",
        )
    shapes = [
        {
            "type": "line",
            "x0": k - 0.5,
            "x1": k - 0.5,
            "y0": -0.5,
            "y1": n_rows - 0.5,
            "line": {"color": "rgba(255,255,255,0.6)", "width": 1},
        }
        for k in range(1, n_cols)
    ] + [
        {
            "type": "line",
            "y0": k - 0.5,
            "y1": k - 0.5,
            "x0": -0.5,
            "x1": n_cols - 0.5,
            "line": {"color": "rgba(255,255,255,0.6)", "width": 1},
        }
        for k in range(1, n_rows)
    ]
    fig.update_layout(
        shapes=shapes, margin={"l": 10, "r": 10, "t": 10, "b": 10}, plot_bgcolor="#eee"
    )
    fig.update_xaxes(
        range=[-0.5, n_cols - 0.5], showgrid=False, zeroline=False, showticklabels=False
    )
    fig.update_yaxes(
        range=[n_rows - 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        showticklabels=False,
        scaleanchor="x",
    )
    return fig


def _layout(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    import dash_mantine_components as dmc
    from dash import dcc, html

    from vislens.app import ui
    from vislens.app.pages import not_run

    nb = read_neighbors(ctx)
    if nb is None:
        return ui.page("Patches", not_run("LatentLens", f"vislens lens neighbors {ctx.study.root}"))
    items = sorted(nb["item_id"].astype(str).unique())
    layers = sorted(int(v) for v in nb["visual_layer"].unique())
    item = str(query["item"]) if query.get("item") in items else items[0]
    controls = dmc.Group(
        [
            dmc.Select(
                label="Image", data=items, value=item, id="pt-item", allowDeselect=False,
                searchable=True, w=240,
            ),
            dmc.Stack(
                [
                    dmc.Text("Visual layer", size="sm", fw=500),
                    dmc.Slider(
                        min=0, max=len(layers) - 1, step=1, value=len(layers) - 1,
                        marks=[{"value": i, "label": str(v)} for i, v in enumerate(layers)],
                        id="pt-layer", w=320, restrictToMarks=True, label=None,
                    ),
                ],
                gap=4,
                pb="md",
            ),
        ],
        align="flex-end",
        gap="xl",
    )  # fmt: skip
    return ui.page(
        "Patches",
        controls,
        dcc.Store(id="pt-layers", data=layers),
        html.Div(
            [
                dmc.Paper(
                    dcc.Graph(
                        id="pt-image",
                        figure=_figure(ctx, nb, item),
                        style={"width": "440px", "height": "440px"},
                        config={"displayModeBar": False},
                    ),
                    withBorder=True,
                    p="xs",
                ),
                dmc.Paper(
                    html.Div(
                        ui.muted("Hover or click a patch to see its neighbours."),
                        id="pt-neighbors",
                    ),
                    withBorder=True,
                    p="md",
                    className="vl-side",
                    style={"maxWidth": "none"},
                ),
            ],
            className="vl-row vl-top",
        ),
        description="Hover or click a cell of the image's token grid: its nearest words at the "
        "chosen visual layer — LatentLens beside EmbeddingLens and LogitLens.",
    )


def _register(app: Any, ctx: AppContext) -> None:
    import dash
    from dash import Input, Output, State

    @app.callback(
        Output("pt-image", "figure"), Input("pt-item", "value"), prevent_initial_call=True
    )
    def _item(item: str) -> Any:
        nb = read_neighbors(ctx)
        return dash.no_update if nb is None else _figure(ctx, nb, str(item))

    @app.callback(
        Output("pt-neighbors", "children"),
        Input("pt-image", "hoverData"),
        Input("pt-image", "clickData"),
        Input("pt-layer", "value"),
        State("pt-item", "value"),
        State("pt-layers", "data"),
        prevent_initial_call=True,
    )
    def _cell(hover: Any, click: Any, layer_i: Any, item: Any, layers: Any) -> Any:
        nb = read_neighbors(ctx)
        data = (
            click if dash.ctx.triggered_id == "pt-image" and click and not hover else hover or click
        )
        pts = (data or {}).get("points") or []
        if nb is None or not pts:
            return dash.no_update
        try:
            row, col = int(pts[0]["y"]), int(pts[0]["x"])
            layer = int(layers[int(layer_i)])
        except (KeyError, TypeError, ValueError, IndexError):
            return dash.no_update
        return cell_view(ctx, nb, str(item), layer, row, col)


def pages() -> list[Page]:
    return [Page("/patches", "Patches", _layout, _register)]
