"""The study's overview and Features pages (and the page list; Probe is in probe_page.py): what each stage wrote, as tables and
heatmaps; a stage that has not run shows the command that makes it. All values reach the
page as text (Dash escapes children), and tables are dash-ag-grid grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from vislens.app.context import AppContext
from vislens.app.pages import Page, not_run
from vislens.app.tables import _read_parquet, grid


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
    import dash_mantine_components as dmc
    from dash import dcc, html

    from vislens.app import ui

    cards = []
    for stage, what, link, command in stage_status(ctx):
        done = bool(what)
        body: list[Any] = [
            dmc.Group(
                [
                    dmc.Text(stage, fw=650),
                    ui.badge("done" if done else "not run", "teal" if done else "gray"),
                ],
                justify="space-between",
                wrap="nowrap",
            )
        ]
        if done:
            body.append(dmc.Text(what, size="sm", className="vl-val"))
            if link:
                body.append(dcc.Link("Open →", href=link, className="vl-open"))
        else:
            body += [
                ui.muted("This stage has not run yet — make it with"),
                dmc.Code(command, block=True),
            ]
        cards.append(
            dmc.Card(dmc.Stack(body, gap=6), withBorder=True, padding="md", className="vl-stat")
        )
    name = ctx.study.config.name or Path(ctx.study.root).name
    return ui.page(
        f"Study {name}",
        dmc.SimpleGrid(cards, cols={"base": 1, "sm": 2, "lg": 4}, spacing="md", id="ov-stages"),
        html.P(str(Path(ctx.study.root)), className="vl-muted"),
        description=ctx.study.config.description or None,
    )


# -- features ------------------------------------------------------------------------------
def _features(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    import dash_mantine_components as dmc
    from dash import dcc

    from vislens.app import ui

    root = Path(ctx.study.root) / "sae"
    runs = sorted(p.parent.name for p in root.glob("*/scores.parquet"))
    if not runs:
        return ui.page("Features", not_run("SAE scoring", f"vislens sae score {ctx.study.root}"))
    parts = [p for p in sub.split("/") if p]
    run = parts[0] if parts and parts[0] in runs else runs[0]
    scores = pd.read_parquet(root / run / "scores.parquet")
    if len(parts) >= 2:
        return _feature_detail(ctx, run, parts[1], scores)
    labels = _labels(root / run)
    if labels:
        scores = scores.assign(label=scores["feature"].map(lambda f: labels.get(int(f), "")))
    runs_line = dmc.Group(
        [
            ui.muted("SAE runs"),
            *(
                dcc.Link(
                    r,
                    href=f"/features/{quote(r)}",
                    className="vl-chip" + (" vl-active" if r == run else ""),
                )
                for r in runs
            ),
        ],
        gap=4,
    )
    links = dmc.Group(
        [
            ui.muted("Open a feature"),
            *(
                dcc.Link(str(int(f)), href=f"/features/{quote(run)}/{int(f)}", className="vl-chip")
                for f in scores["feature"].head(30)
            ),
        ],
        gap=4,
        id="ft-links",
    )
    return ui.page(
        f"Features · {run}",
        runs_line,
        ui.section(
            f"{len(scores):,} features",
            ui.muted(
                "Sort and filter any column; MS band, tier and best correlation come from `vislens sae score`."
            ),
            grid(scores, "ft-table"),
            links,
        ),
        description="Monosemanticity (MS) with its band, tier, best correlation with the ratings, frequency and label.",
    )


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
    import dash_mantine_components as dmc
    from dash import dcc, html

    from vislens.app import feature_detail as fd
    from vislens.app import ui
    from vislens.app.paths import image_source_root

    try:
        f = int(feat)
    except ValueError:
        return ui.page("Feature", ui.note(f"No feature {feat!r}."))
    row = scores[scores["feature"] == f]
    if row.empty:
        return ui.page("Feature", ui.note(f"Feature {f} is not in {run}/scores.parquet."))
    rec = row.iloc[0]
    run_dir = Path(ctx.study.root) / "sae" / run
    fields = ui.fields(((str(c), rec[c]) for c in row.columns), id="fd-fields", cols=2)
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
        hist = ui.muted(
            f"No code store ({run}/codes) — `vislens sae encode` writes it.", id="fd-hist"
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
        else ui.muted("No calibration.json for this run.", id="fd-band")
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
    tags = [
        ui.badge(f"MS band: {rec['ms_band']}", "indigo") if "ms_band" in row.columns else None,
        ui.badge(f"tier {rec['tier']}", "teal") if "tier" in row.columns else None,
    ]
    return ui.page(
        f"Feature {f} · {run}",
        dmc.Group(
            [
                dmc.Text(
                    [
                        "Label: ",
                        html.Span(label or "(none yet — `vislens judge label`)", id="fd-label"),
                    ],
                    fw=600,
                ),
                *[t for t in tags if t is not None],
            ],
            gap="sm",
        ),
        dmc.SimpleGrid(
            [
                ui.section("Monosemanticity beside the calibration band", band, fields),
                ui.section("Activation over items (CLS or max over patches)", hist),
            ],
            cols={"base": 1, "md": 2},
        ),
        ui.section(
            "Top images · the feature's patch heatmap in red",
            html.Div(
                imgs or [ui.muted("No top-k table.")],
                className="vl-grid",
                id="fd-top",
            ),
        ),
        ui.section(
            "Correlations with ratings",
            grid(corr[corr["feature"] == f], "fd-corr", height=200)
            if corr is not None
            else ui.muted("No correlations."),
        ),
        dcc.Link("← all features", href=f"/features/{quote(run)}", className="vl-open"),
    )


# -- probe ---------------------------------------------------------------------------------
def pages() -> list[Page]:
    from vislens.app.patches import pages as patch_pages
    from vislens.app.probe_page import _probe, _register_probe

    return [
        Page("/", "Overview", _overview),
        Page("/features", "Features", _features),
        *patch_pages(),
        Page("/probe", "Probe", _probe, _register_probe),
    ]
