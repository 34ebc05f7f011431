"""The study's overview, Features and Probe pages: what each stage wrote, as tables and
heatmaps; a stage that has not run shows the command that makes it. All values reach the
page as text (Dash escapes children), and tables are dash-ag-grid grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from vislens.app.context import AppContext
from vislens.app.pages import Page, not_run

MAX_ROWS = 5000


def grid(df: pd.DataFrame, id: str, *, height: int = 420, link: str = "") -> Any:
    """A sortable, filterable AG Grid of ``df`` (first MAX_ROWS rows)."""
    import dash_ag_grid as dag

    df = df.head(MAX_ROWS)
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    cols: list[dict[str, Any]] = [{"field": str(c), "headerName": str(c)} for c in df.columns]
    return dag.AgGrid(
        id=id,
        rowData=records,
        columnDefs=cols,
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True},
        dashGridOptions={"pagination": True, "paginationPageSize": 50, "quickFilterText": ""},
        style={"height": f"{height}px"},
    )


def _read_parquet(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return None


def _n_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows) if path.is_file() else 0
    except (OSError, ValueError):
        return 0


# -- overview ------------------------------------------------------------------------------
def stage_status(ctx: AppContext) -> list[tuple[str, str, str, str]]:
    """``(stage, what is there, link, command)`` per stage; link empty when not run."""
    root = Path(ctx.study.root)
    rows: list[tuple[str, str, str, str]] = []
    images = _read_parquet(root / "images.parquet")
    rows.append(
        (
            "Images",
            f"{len(images):,} images" if images is not None else "",
            "",
            f"vislens init {root} --images DIR",
        )
    )
    manifest = root / "activations" / "manifest.json"
    if manifest.is_file():
        import json

        m = json.loads(manifest.read_text(encoding="utf-8"))
        rows.append(
            ("Activations", f"layers {m.get('layers')}, {m.get('n_items', 0):,} items", "", "")
        )
    else:
        rows.append(("Activations", "", "", f"vislens extract {root}"))
    saes = sorted(p.parent.name for p in (root / "sae").glob("*/scores.parquet"))
    rows.append(
        ("SAE features", ", ".join(saes), "/features" if saes else "", f"vislens sae score {root}")
    )
    nb = root / "lens" / "neighbors.parquet"
    n_nb = _n_rows(nb)
    rows.append(
        (
            "LatentLens patches",
            f"{n_nb:,} neighbours" if n_nb else "",
            "/patches" if n_nb else "",
            f"vislens lens neighbors {root}",
        )
    )
    pc = root / "probe" / "reports" / "per_case.csv"
    n_pc = len(pd.read_csv(pc)) if pc.is_file() else 0
    rows.append(
        (
            "Probe",
            f"{n_pc:,} cases" if n_pc else "",
            "/probe" if n_pc else "",
            f"vislens probe run {root}",
        )
    )
    maps = sorted(p.name for p in (root / "map").glob("*_coords.npy"))
    rows.append(
        (
            "Map",
            ", ".join(maps),
            "/explorer" if maps else "",
            f"vislens map {root} --source activations --method umap",
        )
    )
    tasks = ctx.store.tasks()
    rows.append(
        (
            "Annotation tasks",
            f"{len(tasks)} task(s)" if tasks else "",
            "/annotate" if tasks else "",
            "vislens human task binary|patch|rating",
        )
    )
    return rows


def _overview(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import dcc, html

    cards = []
    for stage, what, link, command in stage_status(ctx):
        body: list[Any] = [html.B(stage)]
        if what:
            body.append(html.Span(what))
            if link:
                body.append(dcc.Link("open →", href=link))
        else:
            body += [html.Span("not run yet", className="vl-muted"), html.Code(command)]
        cards.append(html.Div(body, className="vl-stat"))
    name = ctx.study.config.name or Path(ctx.study.root).name
    desc = ctx.study.config.description
    return html.Div(
        [
            html.H2(f"Study {name}"),
            html.P(desc) if desc else None,
            html.Div(cards, className="vl-cards", id="ov-stages"),
        ]
    )


# -- features ------------------------------------------------------------------------------
def _features(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import dcc, html

    root = Path(ctx.study.root) / "sae"
    runs = sorted(p.parent.name for p in root.glob("*/scores.parquet"))
    if not runs:
        return html.Div(
            [html.H2("Features"), not_run("SAE scoring", f"vislens sae score {ctx.study.root}")]
        )
    parts = [p for p in sub.split("/") if p]
    run = parts[0] if parts and parts[0] in runs else runs[0]
    scores = pd.read_parquet(root / run / "scores.parquet")
    if len(parts) >= 2:
        return _feature_detail(ctx, run, parts[1], scores)
    labels = _labels(root / run)
    if labels:
        scores = scores.assign(label=scores["feature"].map(lambda f: labels.get(int(f), "")))
    nav = html.P(
        [
            "SAE runs: ",
            *(
                dcc.Link(r, href=f"/features/{quote(r)}", style={"marginRight": "10px"})
                for r in runs
            ),
        ]
    )
    links = html.P(
        [
            "Open a feature: ",
            *(
                dcc.Link(
                    str(int(f)),
                    href=f"/features/{quote(run)}/{int(f)}",
                    style={"marginRight": "6px"},
                )
                for f in scores["feature"].head(30)
            ),
        ],
        id="ft-links",
    )
    return html.Div([html.H2(f"Features · {run}"), nav, grid(scores, "ft-table"), links])


def _labels(run_dir: Path) -> dict[int, str]:
    import json

    p = run_dir / "labels.json"
    if not p.is_file():
        return {}
    try:
        return {
            int(f["feature"]): str(f.get("label", ""))
            for f in json.loads(p.read_text()).get("features", [])
        }
    except (ValueError, KeyError, TypeError):
        return {}


def _feature_detail(ctx: AppContext, run: str, feat: str, scores: pd.DataFrame) -> Any:
    from dash import dcc, html

    from vislens.app import feature_detail as fd
    from vislens.app.paths import image_source_root

    try:
        f = int(feat)
    except ValueError:
        return html.P(f"No feature {feat!r}.", className="vl-note")
    row = scores[scores["feature"] == f]
    if row.empty:
        return html.P(f"Feature {f} is not in {run}/scores.parquet.", className="vl-note")
    rec = row.iloc[0]
    run_dir = Path(ctx.study.root) / "sae" / run
    fields = [html.Div([html.B(f"{c}: "), html.Span(str(rec[c]))]) for c in row.columns]
    label = _labels(run_dir).get(f, "")
    corr = _read_parquet(run_dir / "correlations.parquet")
    top = _read_parquet(run_dir / "topk.parquet")
    store = fd.open_codes(run_dir / "codes")
    if store is not None and 0 <= f < store.info.d_sae:
        hist: Any = dcc.Graph(
            id="fd-hist",
            figure=fd.histogram_figure(fd.feature_item_values(store, f), f),
            style={"height": "280px"},
            config={"displayModeBar": False},
        )
    else:
        hist = html.P(
            f"No code store ({run}/codes) — `vislens sae encode` writes it.",
            className="vl-muted",
            id="fd-hist",
        )
    cal = fd.read_calibration(run_dir / "calibration.json")
    ms = float(rec["ms"]) if "ms" in row.columns and pd.notna(rec["ms"]) else float("nan")
    band: Any = (
        dcc.Graph(
            id="fd-band",
            figure=fd.band_figure(ms, cal),
            style={"height": "180px"},
            config={"displayModeBar": False},
        )
        if cal is not None
        else html.P("No calibration.json for this run.", className="vl-muted", id="fd-band")
    )
    imgs: list[Any] = []
    if top is not None:
        images = _read_parquet(Path(ctx.study.root) / "images.parquet")
        src = (
            dict(zip(images["item_id"].astype(str), images["source"].astype(str), strict=True))
            if images is not None
            else {}
        )
        root = image_source_root(ctx.study)
        recs = top[top["feature"] == f].sort_values("rank").head(12).to_dict("records")
        grids = [
            fd.patch_grid(store, int(r["item_index"]), f) if store is not None else None
            for r in recs
        ]
        vmax = max((float(g.max()) for g in grids if g is not None), default=0.0) or None
        for r, g in zip(recs, grids, strict=True):
            path = Path(src.get(str(r["item_id"]), ""))
            if g is not None and path.is_file():
                uri = fd.overlay_uri(path, g, vmax)
                if uri:
                    imgs.append(
                        html.Figure(
                            [
                                html.Img(src=uri, alt=str(r["item_id"]), className="fd-overlay"),
                                html.Figcaption(f"{r['item_id']} · {float(r['value']):.3g}"),
                            ],
                            className="vl-card",
                        )
                    )
                    continue
            rel = ""
            if root is not None and path.is_absolute():
                try:
                    rel = path.resolve().relative_to(root.resolve()).as_posix()
                except ValueError:
                    rel = ""
            img = (
                html.Img(src="/images/" + quote(rel), alt=str(r["item_id"]))
                if rel
                else html.Div("no image")
            )
            imgs.append(
                html.Figure(
                    [img, html.Figcaption(f"{r['item_id']} · {float(r['value']):.3g}")],
                    className="vl-card",
                )
            )
    return html.Div(
        [
            html.H2(f"Feature {f} · {run}"),
            html.P(
                ["Label: ", html.Span(label or "(none yet — `vislens judge label`)", id="fd-label")]
            ),
            html.Div(fields, className="vl-fields", id="fd-fields"),
            html.Div(
                [html.Div(band, style={"flex": "1"}), html.Div(hist, style={"flex": "1"})],
                className="vl-row",
            ),
            html.H4("Top images (the feature's patch heatmap in red)"),
            html.Div(
                imgs or [html.P("No top-k table.", className="vl-muted")],
                className="vl-grid",
                id="fd-top",
            ),
            html.H4("Correlations with ratings"),
            grid(corr[corr["feature"] == f], "fd-corr", height=200)
            if corr is not None
            else html.P("No correlations.", className="vl-muted"),
            dcc.Link("← all features", href=f"/features/{quote(run)}"),
        ]
    )


# -- probe ---------------------------------------------------------------------------------
def _probe_dir(ctx: AppContext) -> Path:
    return Path(ctx.study.root) / "probe" / "reports"


def _probe(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import dcc, html

    rep = _probe_dir(ctx)
    if not (rep / "per_case.csv").is_file():
        return html.Div(
            [
                html.H2("Probe"),
                not_run("The visual-search probe", f"vislens probe run {ctx.study.root}"),
            ]
        )
    cases = pd.read_csv(rep / "per_case.csv", dtype=str, keep_default_na=False)
    with_attn = [c for c in cases["case_id"] if (rep / "attn_cache" / f"{c}.npz").is_file()]
    # Open on the first case whose target is in the image, so the outline shows at once.
    ev = cases["evidence"] if "evidence" in cases.columns else pd.Series("", index=cases.index)
    has_target = set(cases.loc[~ev.isin(["", "[]"]), "case_id"])
    first = next((c for c in with_attn if c in has_target), with_attn[0] if with_attn else "")
    parts: list[Any] = [html.H2("Probe")]
    if with_attn:
        parts += [
            html.Div(
                [
                    html.Label(
                        [
                            "Case ",
                            dcc.Dropdown(
                                with_attn,
                                first,
                                id="pr-case",
                                clearable=False,
                                style={"width": "260px"},
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Layer ",
                            dcc.Dropdown(
                                [], None, id="pr-layer", clearable=False, style={"width": "100px"}
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Head ",
                            dcc.Dropdown(
                                [], None, id="pr-head", clearable=False, style={"width": "100px"}
                            ),
                        ]
                    ),
                    dcc.Checklist(["relative attention"], [], id="pr-rel", inline=True),
                ],
                className="vl-controls",
            ),
            html.Div(
                [
                    dcc.Graph(id="pr-heat", style={"height": "420px", "flex": "1"}),
                    html.Div(id="pr-case-info", className="vl-side vl-fields"),
                ],
                className="vl-row",
            ),
        ]
    else:
        parts.append(
            html.P(
                "No attention files (attn_cache/) — run the probe with attention on.",
                className="vl-note",
            )
        )
    rank = rep / "stats" / "head_rankings.csv"
    parts.append(html.H4("Head rankings (TP vs FN)"))
    parts.append(
        grid(pd.read_csv(rank), "pr-rank", height=300)
        if rank.is_file()
        else html.P("No head_rankings.csv yet.", className="vl-muted")
    )
    sens = rep / "prompt_sensitivity.csv"
    parts.append(html.H4("Prompt sensitivity"))
    parts.append(
        grid(pd.read_csv(sens), "pr-sens", height=260)
        if sens.is_file()
        else html.P("No prompt_sensitivity.csv yet.", className="vl-muted")
    )
    parts.append(html.H4("Cases"))
    parts.append(grid(cases, "pr-cases", height=300))
    return html.Div(parts)


def _register_probe(app: Any, ctx: AppContext) -> None:
    import dash
    import numpy as np
    from dash import Input, Output, State, html

    def _load(case: str) -> Any:
        path = _probe_dir(ctx) / "attn_cache" / f"{case}.npz"
        if "/" in case or "\\" in case or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    @app.callback(
        Output("pr-layer", "options"),
        Output("pr-layer", "value"),
        Output("pr-head", "options"),
        Output("pr-head", "value"),
        Input("pr-case", "value"),
        State("pr-layer", "value"),
        State("pr-head", "value"),
    )
    def _axes(case: str, layer: Any, head: Any) -> Any:
        z = _load(str(case or ""))
        if z is None:
            return [], None, [], None
        n_layers, n_heads = z["attention"].shape[:2]
        layer = layer if isinstance(layer, int) and layer < n_layers else n_layers - 1
        head = head if isinstance(head, int) and head < n_heads else 0
        return list(range(n_layers)), layer, list(range(n_heads)), head

    # A click on a ranking row picks its layer and head.
    @app.callback(
        Output("pr-layer", "value", allow_duplicate=True),
        Output("pr-head", "value", allow_duplicate=True),
        Input("pr-rank", "selectedRows"),
        prevent_initial_call=True,
    )
    def _from_rank(rows: Any) -> Any:
        if not rows:
            return dash.no_update, dash.no_update
        return int(rows[0]["layer"]), int(rows[0]["head"])

    @app.callback(
        Output("pr-heat", "figure"),
        Output("pr-case-info", "children"),
        Input("pr-case", "value"),
        Input("pr-layer", "value"),
        Input("pr-head", "value"),
        Input("pr-rel", "value"),
    )
    def _heat(case: str, layer: Any, head: Any, rel: Any) -> Any:
        import plotly.graph_objects as go

        z = _load(str(case or ""))
        if z is None or layer is None or head is None:
            return go.Figure(), ""
        cases = pd.read_csv(_probe_dir(ctx) / "per_case.csv", dtype=str, keep_default_na=False)
        rec = cases[cases["case_id"] == case]
        evidence = str(rec.iloc[0]["evidence"]) if "evidence" in rec and not rec.empty else ""
        cells = target_cells(evidence, _meta(z), int(z["attention"].shape[-1]))
        image = str(rec.iloc[0]["image"]) if "image" in rec and not rec.empty else ""
        fig = probe_figure(z, int(layer), int(head), bool(rel), cells, case_image_url(ctx, image))
        info = (
            [
                html.Div([html.B(f"{c}: "), html.Span(str(rec.iloc[0][c]))])
                for c in rec.columns
                if c != "attn_file"
            ]
            if not rec.empty
            else []
        )
        return fig, info


def _meta(z: dict[str, Any]) -> dict[str, Any]:
    """The case file's ``meta`` JSON as a dict; {} when absent or unreadable."""
    import json

    try:
        m = json.loads(str(z["meta"])) if "meta" in z else {}
    except ValueError:
        return {}
    return m if isinstance(m, dict) else {}


def target_cells(
    evidence: str, meta: dict[str, Any], n_cols: int | None = None
) -> list[tuple[int, int]]:
    """The target's ``(row, col)`` cells from per_case.csv's ``evidence`` (a JSON list of
    flat cells ``r * cols + c``, as the probe writes it; ``[row, col]`` pairs are read
    too), else from the case file's ``meta["evidence"]``. Columns come from
    ``meta["grid"] = [rows, cols]``, else ``n_cols`` (the heatmap's width). Malformed
    entries are skipped; [] when there is no target."""
    import json

    grid_rc = meta.get("grid")
    if isinstance(grid_rc, list) and len(grid_rc) == 2 and isinstance(grid_rc[1], int):
        n_cols = int(grid_rc[1])

    def parse(ev: Any) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        if not isinstance(ev, list):
            return out
        for e in ev:
            if isinstance(e, list) and len(e) == 2 and all(isinstance(v, int) for v in e):
                out.append((int(e[0]), int(e[1])))
            elif isinstance(e, int) and not isinstance(e, bool) and e >= 0 and n_cols:
                out.append(divmod(int(e), int(n_cols)))
        return out

    try:
        cells = parse(json.loads(evidence)) if evidence.strip() else []
    except ValueError:
        cells = []
    return cells or parse(meta.get("evidence"))


def case_image_url(ctx: AppContext, image: str) -> str:
    """The ``/images/`` URL of a case's image (per_case.csv's ``image``, relative to the
    world's annotations.jsonl), matched to the study's image table by path suffix; ''
    when it is not there."""
    from vislens.app.patches import _image_url

    image = str(image).replace("\\", "/").strip("/")
    t = _read_parquet(Path(ctx.study.root) / "images.parquet")
    if not image or t is None or "source" not in t.columns:
        return ""
    for item, src in zip(t["item_id"].astype(str), t["source"].astype(str), strict=True):
        s = Path(src).as_posix()
        if s == image or s.endswith("/" + image):
            return _image_url(ctx, item)
    return ""


def probe_figure(
    z: dict[str, Any],
    layer: int,
    head: int,
    relative: bool,
    cells: list[tuple[int, int]],
    image_url: str = "",
) -> Any:
    """The heatmap of one case at ``layer``/``head`` (or the layer's relative attention),
    with each target cell outlined by a rectangle; drawn translucent over the image when
    ``image_url`` is given."""
    import numpy as np
    import plotly.graph_objects as go

    if relative and "relative" in z:
        m, title = z["relative"][layer], f"relative attention · layer {layer} (head mean)"
    else:
        m, title = z["attention"][layer, head], f"attention · layer {layer} head {head}"
    m = np.asarray(m, dtype=np.float32)
    fig = go.Figure(go.Heatmap(z=m, colorscale="Viridis", opacity=0.6 if image_url else 1.0))
    n_rows, n_cols = m.shape
    if image_url:
        fig.add_layout_image(
            source=image_url, xref="x", yref="y", x=-0.5, y=-0.5, sizex=n_cols, sizey=n_rows,
            sizing="stretch", layer="below",
        )  # fmt: skip
    shapes = [
        {
            "type": "rect",
            "x0": c - 0.5,
            "x1": c + 0.5,
            "y0": r - 0.5,
            "y1": r + 0.5,
            "line": {"color": "#ff2d55", "width": 3},
            "fillcolor": "rgba(0,0,0,0)",
            "name": "target",
        }
        for r, c in cells
        if 0 <= r < n_rows and 0 <= c < n_cols
    ]
    if shapes:
        title += " · target outlined"
    fig.update_xaxes(range=[-0.5, n_cols - 0.5], showgrid=False, zeroline=False)
    fig.update_yaxes(range=[n_rows - 0.5, -0.5], scaleanchor="x", showgrid=False, zeroline=False)
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        margin={"l": 30, "r": 10, "t": 40, "b": 30},
        shapes=shapes,
    )
    return fig


def pages() -> list[Page]:
    from vislens.app.patches import pages as patch_pages

    return [
        Page("/", "Overview", _overview),
        Page("/features", "Features", _features),
        *patch_pages(),
        Page("/probe", "Probe", _probe, _register_probe),
    ]
