"""Annotation pages: a task list, and one page per task that saves every click.

``/annotate/<task>?annotator=<name>`` or ``?token=<token>``. A task page has a heading made
from the task's kind and metadata, the question and a collapsible instructions panel, the
item with its answer buttons, Back / Undo / Skip, a comment box, and a list of every item
(answered, skipped, open) to jump to. When every item is answered or skipped it shows a
summary whose every button does something.

Everything a user or a data file provided is passed to Dash as text (children strings,
title attributes), which React escapes, so a description containing ``<script>`` shows as
those characters.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from vislens.app.annotate_actions import _apply
from vislens.app.annotate_items import PatchView, _list_frame, _render, _render_list
from vislens.app.context import AppContext
from vislens.app.pages import Page
from vislens.errors import VislensError
from vislens.human.session import TaskSession

__all__ = ["_apply", "_render", "pages", "register"]

KEY_HELP = {
    "binary": "Keys: 1 Related · 2 Not related · B back · U undo · K skip.",
    "patch": "Keys: 1–5 concrete · Q–T abstract · A–G global (n-th word) · 0 none of these · "
    "Enter next · B back · U undo · K skip.",
    "rating": "Keys: 1–3 coherent yes/partly/no · 4–6 label yes/partly/no · B back · U undo · "
    "K skip.",
}
SCROLL_JS = """
function (_children) {
  if (!window.__vlAnnKeys) {
    // Esc leaves the comment box, and choosing an item in the list does not keep the focus
    // in the list: either way the next key press is a shortcut again.
    window.__vlAnnKeys = true;
    document.addEventListener('keydown', function (ev) {
      var t = ev.target;
      if (ev.key === 'Escape' && t && t.classList && t.classList.contains('ann-comment')) t.blur();
    });
    document.addEventListener('change', function (ev) {
      var t = ev.target;
      if (t && t.classList && t.classList.contains('ann-jump-radio')) t.blur();
    });
  }
  setTimeout(function () {
    var here = document.querySelector('#ann-list .ann-here');
    var list = here && here.closest('.ann-items');
    if (!list) return;
    var top = here.getBoundingClientRect().top - list.getBoundingClientRect().top + list.scrollTop;
    if (top < list.scrollTop || top + here.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = Math.max(0, top - list.clientHeight / 2);
    }
  }, 0);
  return null;
}
"""


def _title(session: TaskSession) -> str:
    from vislens.human.describe import task_title

    return task_title(session.task, [it.payload for it in session.items])


def _task_list(ctx: AppContext) -> Any:
    from dash import html

    from vislens.human.describe import task_title
    from vislens.human.transfer import current_table

    rows = []
    for t in ctx.store.tasks():
        table = current_table(ctx.store, t.name)
        title = task_title(t, [it.payload for it in ctx.session(t.name).items])
        rows.append(
            html.Tr(
                [
                    html.Td(
                        [
                            html.A(title, href=f"/annotate/{quote(t.name, safe='')}"),
                            html.Div(t.name, className="vl-muted"),
                        ]
                    ),
                    html.Td(t.kind),
                    html.Td(str(t.n_items)),
                    html.Td(str(table["annotator"].nunique())),
                    html.Td(str(len(table))),
                ]
            )
        )
    if not rows:
        return html.P(
            "No annotation tasks yet — create one with `vislens human task binary|patch|rating`."
        )
    head = html.Tr([html.Th(h) for h in ("task", "kind", "items", "annotators", "labels")])
    return html.Table([html.Thead(head), html.Tbody(rows)], className="vl-table ann-tasks")


def _identity_form(task: str) -> Any:
    from dash import dcc, html

    return html.Div(
        [
            html.P(
                "Who is annotating? Your name keeps your labels apart from others' and lets you resume."
            ),
            dcc.Input(id="ann-name", type="text", placeholder="your name", debounce=False),
            html.Button("Start", id="ann-start", n_clicks=0),
            dcc.Store(id="ann-task-name", data=task),
        ]
    )


def _instructions(session: TaskSession, *, open_: bool) -> Any:
    from dash import html

    return html.Details(
        [
            html.Summary("Instructions"),
            html.Ul([html.Li(line) for line in session.kind.instructions]),
            html.P(KEY_HELP.get(session.task.kind, ""), className="vl-muted"),
        ],
        id="ann-instructions",
        open=open_,
        className="ann-instructions",
    )


def _annotate(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import dcc, html

    if not sub:
        return html.Div([html.H2("Annotation tasks"), _task_list(ctx)], className="ann-page")
    task = unquote(sub)
    try:
        session = ctx.session(task)
        if not query.get("token") and not query.get("annotator"):
            return html.Div(
                [html.H2(_title(session), id="ann-title"), _identity_form(task)],
                className="ann-page",
            )
        ann = ctx.identify(name=query.get("annotator"), token=query.get("token"))
    except VislensError as e:
        return html.Div([html.H2("Cannot open this task"), html.P(str(e), id="ann-error")])
    first_visit = session.state(ann).last_event_id == 0
    return html.Div(
        [
            dcc.Store(id="ann-ctx", data={"task": task, "token": ann.token}),
            dcc.Store(id="ann-pos"),
            dcc.Store(id="ann-scroll"),
            html.Div(
                [
                    html.H2(_title(session), id="ann-title"),
                    html.Div(
                        [
                            html.Span(f"Annotator: {ann.name}", id="ann-who"),
                            html.Progress(
                                id="ann-progress", value="0", max=str(len(session.items))
                            ),
                            html.Span(id="ann-count"),
                            html.Span(id="ann-skipped", className="vl-muted"),
                        ],
                        className="ann-meta",
                    ),
                ],
                className="ann-head",
            ),
            html.P(session.task.question, id="ann-question"),
            _instructions(session, open_=first_visit),
            html.Div(id="ann-status", className="ann-status"),
            html.Div(
                [
                    html.Div(id="ann-body", className="ann-main"),
                    html.Aside(_list_frame(), id="ann-list", className="ann-side"),
                ],
                className="ann-layout",
            ),
        ],
        className="ann-page",
    )


def register(app: Any, ctx: AppContext) -> None:
    """Callbacks of the annotation page: one for every button, one for the name form."""
    import dash
    from dash import ALL, Input, Output, State

    from vislens.app.media import local_image_size, missing_images
    from vislens.human.comments import current_comments

    @app.callback(
        Output("ann-body", "children"),
        Output("ann-legend", "children"),
        Output("ann-jump", "options"),
        Output("ann-jump", "value"),
        Output("ann-progress", "value"),
        Output("ann-count", "children"),
        Output("ann-skipped", "children"),
        Output("ann-pos", "data"),
        Output("ann-status", "children"),
        Input("ann-ctx", "data"),
        Input({"type": "ann-act", "action": ALL, "value": ALL}, "n_clicks"),
        Input("ann-jump", "value"),
        State("ann-pos", "data"),
        State({"type": "ann-comment", "pos": ALL}, "value"),
    )
    def _act(
        data: dict[str, Any],
        _clicks: list[Any],
        jump: int | None,
        shown: dict[str, int] | None,
        comments: list[str | None],
    ) -> tuple[Any, ...]:
        session = ctx.session(data["task"])
        ann = ctx.identify(token=data["token"])
        status = ""
        trig = dash.ctx.triggered_id
        clicked = any(t.get("value") for t in dash.ctx.triggered)
        if trig == "ann-jump":  # an item chosen in the list
            trig = {"action": "jump", "value": str(jump)}
            clicked = jump is not None and shown is not None and jump != shown["pos"]
        if isinstance(trig, dict) and clicked and shown is not None:
            if session.state(ann).last_event_id != shown["last"]:
                # Saved from another tab since this page was drawn: acting on it could
                # label the wrong item, so show the current state instead.
                status = "This page was out of date (another tab?); nothing was saved — please look again."
            else:
                pos = int(shown["pos"])
                blocked = pos < len(session.items) and bool(missing_images(ctx, data["task"], pos))
                try:
                    status = _apply(
                        session,
                        ann,
                        trig["action"],
                        trig["value"],
                        pos,
                        blocked=blocked,
                        comment=comments[0] if comments else None,
                    )
                except VislensError as e:
                    status = str(e)
        state = session.state(ann)
        missing = missing_images(ctx, data["task"], state.position) if not state.finished else []
        notes = current_comments(session.store, session.task.name, ann.id)
        patch = None
        if session.task.kind == "patch" and not state.finished:
            size = local_image_size(ctx, data["task"], state.position) if not missing else None
            patch = PatchView(ctx.crop_context, size)
        body = _render(
            session,
            state,
            missing,
            comment=notes.get(state.position, ""),
            n_comments=len(notes),
            patch=patch,
        )
        skipped = f"· {state.n_skipped} skipped" if state.n_skipped else ""
        legend, options = _render_list(session, state)
        return (
            body,
            legend,
            options,
            state.position if not state.finished else None,
            str(state.n_done),
            f"{state.n_done} / {state.n_items}",
            skipped,
            {"pos": state.position, "last": state.last_event_id},
            status,
        )

    # Keep the current item visible in a long item list (only the list scrolls, not the
    # page), and let Esc leave the comment box.
    app.clientside_callback(SCROLL_JS, Output("ann-scroll", "data"), Input("ann-jump", "options"))

    @app.callback(
        Output("vl-url", "search"),
        Input("ann-start", "n_clicks"),
        State("ann-name", "value"),
        prevent_initial_call=True,
    )
    def _start(n: int, name: str | None) -> Any:
        if not n or not name or not name.strip():
            return dash.no_update
        return "?annotator=" + quote(name.strip())


def pages() -> list[Page]:
    return [
        Page("/annotate", "Annotate", _annotate, register),
    ]
