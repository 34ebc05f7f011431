"""The Probe page: per-case attention heatmaps over the image (layer/head, relative attention,
the target outlined), the head ranking linked to them, and the prompt-sensitivity table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vislens.app.context import AppContext
from vislens.app.pages import not_run
from vislens.app.tables import _read_parquet, grid


def _probe_dir(ctx: AppContext) -> Path:
    return Path(ctx.study.root) / "probe" / "reports"


def _probe(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    import dash_mantine_components as dmc
    from dash import dcc, html

    from vislens.app import ui

    rep = _probe_dir(ctx)
    if not (rep / "per_case.csv").is_file():
        return ui.page(
            "Probe", not_run("The visual-search probe", f"vislens probe run {ctx.study.root}")
        )
    cases = pd.read_csv(rep / "per_case.csv", dtype=str, keep_default_na=False)
    with_attn = [c for c in cases["case_id"] if (rep / "attn_cache" / f"{c}.npz").is_file()]
    # Open on the first case whose target is in the image, so the outline shows at once.
    ev = cases["evidence"] if "evidence" in cases.columns else pd.Series("", index=cases.index)
    has_target = set(cases.loc[~ev.isin(["", "[]"]), "case_id"])
    first = next((c for c in with_attn if c in has_target), with_attn[0] if with_attn else "")
    parts: list[Any] = []
    if with_attn:
        controls = dmc.Group(
            [
                dmc.Select(label="Case", data=with_attn, value=first, id="pr-case",
                           allowDeselect=False, searchable=True, w=240),
                dmc.Select(label="Layer", data=[], value=None, id="pr-layer", allowDeselect=False, w=110),
                dmc.Select(label="Head", data=[], value=None, id="pr-head", allowDeselect=False, w=110),
                dmc.Switch(label="relative attention", checked=False, id="pr-rel", mb=8),
            ],
            align="flex-end",
            gap="md",
        )  # fmt: skip
        parts.append(
            ui.section(
                "Attention over the image",
                controls,
                html.Div(
                    [
                        dcc.Graph(
                            id="pr-heat", style={"height": "440px", "flex": "1", "minWidth": 0}
                        ),
                        html.Div(id="pr-case-info", className="vl-side"),
                    ],
                    className="vl-row",
                ),
            )
        )
    else:
        parts.append(ui.note("No attention files (attn_cache/) — run the probe with attention on."))
    rank = rep / "stats" / "head_rankings.csv"
    parts.append(
        ui.section(
            "Head rankings (TP vs FN) · click a row to show that head",
            grid(pd.read_csv(rank), "pr-rank", height=300)
            if rank.is_file()
            else ui.muted("No head_rankings.csv yet."),
        )
    )
    sens = rep / "prompt_sensitivity.csv"
    parts.append(
        ui.section(
            "Prompt sensitivity",
            grid(pd.read_csv(sens), "pr-sens", height=260)
            if sens.is_file()
            else ui.muted("No prompt_sensitivity.csv yet."),
        )
    )
    parts.append(ui.section("Cases", grid(cases, "pr-cases", height=300)))
    return ui.page(
        "Probe",
        *parts,
        description="Where the model looks: attention of each layer and head over the image, "
        "the target outlined; heads ranked by how they separate found from missed targets.",
    )


def _register_probe(app: Any, ctx: AppContext) -> None:
    import dash
    import numpy as np
    from dash import Input, Output, State

    from vislens.app import ui

    def _load(case: str) -> Any:
        path = _probe_dir(ctx) / "attn_cache" / f"{case}.npz"
        if "/" in case or "\\" in case or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def _index(v: Any, n: int, default: int) -> str:
        """A Select's value (a string) kept when it still names a layer/head, else default."""
        try:
            return str(int(v)) if 0 <= int(v) < n else str(default)
        except (TypeError, ValueError):
            return str(default)

    @app.callback(
        Output("pr-layer", "data"),
        Output("pr-layer", "value"),
        Output("pr-head", "data"),
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
        return (
            [str(i) for i in range(n_layers)],
            _index(layer, n_layers, n_layers - 1),
            [str(i) for i in range(n_heads)],
            _index(head, n_heads, 0),
        )

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
        return str(int(rows[0]["layer"])), str(int(rows[0]["head"]))

    @app.callback(
        Output("pr-heat", "figure"),
        Output("pr-case-info", "children"),
        Input("pr-case", "value"),
        Input("pr-layer", "value"),
        Input("pr-head", "value"),
        Input("pr-rel", "checked"),
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
            ui.fields(
                (str(c), rec.iloc[0][c])
                for c in rec.columns
                if c != "attn_file" and str(rec.iloc[0][c]) != ""
            )
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
    fig.update_xaxes(range=[-0.5, n_cols - 0.5], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[n_rows - 0.5, -0.5], scaleanchor="x", showgrid=False, zeroline=False)
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        margin={"l": 30, "r": 10, "t": 40, "b": 30},
        shapes=shapes,
    )
    return fig
