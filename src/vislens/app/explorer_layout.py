"""The explorer page's components: controls, the scatter beside the selected point's
image and rationale, and the selection (paged image grid, table, CSV). A spinner shows over
the scatter while a new view is computed, over the grid while a selection is, and on the
download button while the CSV is written (only past a short delay, so quick answers do not
flicker)."""

from __future__ import annotations

from typing import Any

from vislens.app.explorer_views import ExplorerViews


def layout(views: ExplorerViews | None, problem: str = "") -> Any:
    """The page's components (``problem``: a message shown instead, e.g. no map yet). The
    first figure comes with them (computed at load), so the first draw needs no callback."""
    import dash_mantine_components as dmc
    from dash import dcc, html

    from vislens.app import ui

    if views is None:
        return ui.page("Explorer", ui.note(problem, id="ex-problem"))
    data = views.data
    cols = data.columns()
    figure, count = views.figure(data.color_by)
    controls = dmc.Group(
        [
            dmc.Select(label="Colour by", data=cols, value=data.color_by or None, id="ex-color",
                       clearable=True, searchable=True, w=220),
            dmc.Select(label="Filter", data=cols, value=None, id="ex-fcol", placeholder="column",
                       clearable=True, searchable=True, w=190),
            dmc.MultiSelect(label="Values", data=[], value=[], id="ex-fvals", placeholder="any",
                            searchable=True, clearable=True, miw=220, maw=420),
            dmc.TextInput(label="Search", id="ex-search", placeholder="text in any column",
                          debounce=True, w=220),
            dmc.Text(count, id="ex-count", c="dimmed", size="sm", pb=8),
        ],
        align="flex-end",
        gap="md",
    )  # fmt: skip
    graph = ui.busy(
        dcc.Graph(
            id="ex-graph",
            figure=figure,
            config={"displaylogo": False, "scrollZoom": True},
            style={"height": "64vh"},
        ),
        {"ex-graph": "figure"},
        parent_style={"flex": "3", "minWidth": 0},
    )
    side = dmc.Paper(
        dmc.Stack(
            [
                dmc.Title("Selected point", order=5),
                html.Img(id="ex-image", className="vl-preview"),
                html.P(id="ex-image-msg", className="vl-note vl-muted"),
                html.Div(id="ex-details"),
                dmc.Title("LLM rationale", order=5, mt="xs"),
                html.Div(
                    ui.muted("Click a point to see its image and rationale."), id="ex-rationale"
                ),
            ],
            gap=6,
        ),
        withBorder=True,
        p="md",
        className="vl-side",
    )
    buttons = dmc.Group(
        [
            dmc.Button("← Previous", id="ex-prev", n_clicks=0, variant="default", size="xs"),
            dmc.Button("Next →", id="ex-next", n_clicks=0, variant="default", size="xs"),
            dmc.Button("Download CSV", id="ex-dl-btn", n_clicks=0, variant="light", size="xs"),
            dcc.Download(id="ex-dl"),
        ],
        gap="xs",
    )
    selection = ui.section(
        "Selection",
        dmc.Text(
            "Use the lasso or box tool (top right of the plot) to select points; the server "
            "selects among all of them.",
            id="ex-sel-info",
            size="sm",
        ),
        buttons,
        ui.busy(
            html.Div(id="ex-grid", className="vl-grid"),
            {"ex-grid": "children"},
            kind="dot",
            parent_style={"minHeight": "48px"},
        ),
        html.Div(id="ex-table-box"),
        id="ex-selection",
    )
    return ui.page(
        data.title,
        html.Div([ui.note(n) for n in data.notices], id="ex-notices"),
        controls,
        html.Div([graph, side], className="vl-row"),
        selection,
        dcc.Store(id="ex-shape"),
        dcc.Store(id="ex-view"),
        dcc.Store(id="ex-sel"),
        dcc.Store(id="ex-sel-id"),
        title_id="ex-title",
    )


def _table(rows: list[dict[Any, Any]], columns: list[str]) -> Any:
    """The selection's table. Made only once there is a selection: AG Grid's code then
    loads after the first draw instead of delaying it."""
    import dash_ag_grid as dag

    return dag.AgGrid(
        id="ex-table",
        rowData=rows,
        columnDefs=[{"field": c, "headerName": c} for c in columns],
        defaultColDef={"sortable": True, "filter": True, "resizable": True},
        style={"height": "320px"},
        dashGridOptions={"pagination": True, "paginationPageSize": 50},
    )
