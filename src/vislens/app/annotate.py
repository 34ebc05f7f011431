"""Annotation pages: a task list, and one page per task that saves every click.

``/annotate/<task>?annotator=<name>`` or ``?token=<token>``. Everything a user or a data
file provided is passed to Dash as text (children strings, title attributes), which React
escapes, so a description containing ``<script>`` shows as those characters.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from vislens.app.context import AppContext
from vislens.app.pages import Page
from vislens.errors import InputError, VislensError
from vislens.human.kinds import RATING_ANSWERS, RATING_QUESTIONS, RELATIONS
from vislens.human.session import State, TaskSession

WORD_KEYS = {"concrete": "12345", "abstract": "qwert", "global": "asdfg"}
"""Keys per relation column: the n-th candidate's key is the n-th character."""
RATING_KEYS = {"coherent": "123", "label": "456"}
BINARY_KEYS = "12"


def _btn(text: str, key: str, action: str, value: str = "", *, on: bool = False) -> Any:
    from dash import html

    label = f"{text} [{key.upper() if len(key) == 1 else key}]" if key else text
    return html.Button(
        label,
        id={"type": "ann-act", "action": action, "value": value},
        n_clicks=0,
        className="vl-on" if on else "",
        **{"data-key": key},  # type: ignore[arg-type]
    )


def _task_list(ctx: AppContext) -> Any:
    from dash import html

    from vislens.human.transfer import current_table

    rows = []
    for t in ctx.store.tasks():
        table = current_table(ctx.store, t.name)
        rows.append(
            html.Tr(
                [
                    html.Td(html.A(t.title, href=f"/annotate/{quote(t.name, safe='')}")),
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
    return html.Table([html.Thead(head), html.Tbody(rows)])


def _home(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import html

    return html.Div(
        [html.H2(f"Study {ctx.study.config.name}"), html.H3("Annotation tasks"), _task_list(ctx)]
    )


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


def _annotate(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from dash import dcc, html

    if not sub:
        return html.Div([html.H2("Annotation tasks"), _task_list(ctx)])
    task = unquote(sub)
    try:
        session = ctx.session(task)
        if not query.get("token") and not query.get("annotator"):
            return html.Div([html.H2(session.task.title), _identity_form(task)])
        ann = ctx.identify(name=query.get("annotator"), token=query.get("token"))
    except VislensError as e:
        return html.Div([html.H2("Cannot open this task"), html.P(str(e), id="ann-error")])
    return html.Div(
        [
            dcc.Store(id="ann-ctx", data={"task": task, "token": ann.token}),
            dcc.Store(id="ann-pos"),
            html.H2(session.task.title),
            html.P(f"Annotator: {ann.name}", id="ann-who"),
            html.P(session.task.question, id="ann-question", style={"fontWeight": "bold"}),
            html.Div(
                [
                    html.Progress(id="ann-progress", value="0", max=str(len(session.items))),
                    html.Span(id="ann-count", style={"marginLeft": "8px"}),
                ]
            ),
            html.Div(id="ann-body"),
            html.Div(_static_buttons(session), id="ann-buttons"),
            html.Div(id="ann-status", style={"color": "#a33"}),
        ]
    )


def _static_buttons(session: TaskSession) -> list[Any]:
    nav = [_btn("← Back", "b", "back"), _btn("Undo", "u", "undo")]
    if session.task.kind == "binary":
        texts = {"related": "Related", "not-related": "Not related"}
        return [
            *nav,
            *(
                _btn(texts.get(lab, lab), BINARY_KEYS[i] if i < 2 else "", "label", lab)
                for i, lab in enumerate(session.task.labels)
            ),
        ]
    if session.task.kind == "patch":
        return [*nav, _btn("None of these", "0", "none"), _btn("Next →", "Enter", "next")]
    return nav


def _render(session: TaskSession, state: State, missing: list[str] | None = None) -> Any:
    """The item part of the page for the annotator's current state; ``missing`` names the
    item's images that cannot be shown, which blocks labelling it."""
    from dash import html

    if state.finished:
        return html.Div(
            [
                html.H3("All done — thank you!"),
                html.P(f"{state.n_done} of {state.n_items} items annotated. Use Back to revise."),
            ],
            id="ann-done",
        )
    head = html.P(f"Item {state.position + 1} / {state.n_items}", id="ann-item-no")
    render = {"binary": _render_binary, "patch": _render_patch, "rating": _render_rating}[
        session.task.kind
    ]
    blocked = []
    if missing:
        shown = ", ".join(m if len(m) <= 120 else m[:120] + "…" for m in missing[:3])
        blocked = [
            html.P(
                f"This item's image cannot be shown ({shown}), so it cannot be labelled: "
                "use Back, or ask the study owner to fix the file.",
                id="ann-blocked",
                className="vl-blocked",
            )
        ]
    return html.Div([head, *blocked, *render(session, state)])


def _render_binary(session: TaskSession, state: State) -> list[Any]:
    from dash import html

    assert state.item is not None
    current = f"Current label: {state.value}" if state.value else ""
    return [
        html.Div(
            str(state.item.payload.get("description", "")), id="ann-text", className="vl-item"
        ),
        html.P(current, id="ann-current"),
    ]


def _render_patch(session: TaskSession, state: State) -> list[Any]:
    from dash import html

    from vislens.app.media import crop_style, image_src, patch_box_style

    assert state.item is not None
    p = state.item.payload
    src = image_src(session.task.name, state.position, str(p.get("image", "")))
    row, col, grid = int(p["patch_row"]), int(p["patch_col"]), int(p.get("grid", 24))
    picture = html.Div(
        [
            html.Img(src=src, style={"width": "100%", "display": "block"}),
            html.Div(style=patch_box_style(row, col, grid), id="ann-box"),
        ],
        style={"position": "relative", "width": "420px", "display": "inline-block"},
    )
    crop = html.Div(style=crop_style(src, row, col, grid), id="ann-crop")
    chosen = {w["word"]: w["relation"] for w in (state.value or {}).get("words", [])}
    rows = []
    for i, c in enumerate(p.get("candidates_view", [])):
        word = html.Td(
            html.Span(
                c["token"] or c["word"], title=c["sentence"] or c["word"], className="ann-word"
            )
        )
        buttons = [
            _btn(
                rel,
                WORD_KEYS[rel][i] if i < 5 else "",
                "word",
                f"{i}|{rel}",
                on=chosen.get(c["word"]) == rel,
            )
            for rel in RELATIONS
        ]
        sentence = html.Td(c["sentence"], style={"color": "#555", "fontSize": "13px"})
        rows.append(html.Tr([word, html.Td(buttons), sentence]))
    none = (state.value or {}).get("none")
    return [
        html.Div(
            [picture, crop], style={"display": "flex", "gap": "16px", "alignItems": "flex-start"}
        ),
        html.Table(rows, id="ann-candidates"),
        html.P("Marked: none of these" if none else "", id="ann-current"),
    ]


def _render_rating(session: TaskSession, state: State) -> list[Any]:
    from dash import html

    from vislens.app.media import image_src

    assert state.item is not None
    p = state.item.payload
    images = []
    for i, image in enumerate(p.get("images", [])):
        layers = [
            html.Img(
                src=image_src(session.task.name, state.position, image, f"img{i}"),
                style={"width": "160px", "display": "block"},
            )
        ]
        if p.get("heatmaps"):
            layers.append(
                html.Img(
                    src=image_src(session.task.name, state.position, p["heatmaps"][i], f"heat{i}"),
                    style={
                        "width": "160px",
                        "position": "absolute",
                        "left": 0,
                        "top": 0,
                        "opacity": 0.5,
                    },
                )
            )
        images.append(html.Div(layers, style={"position": "relative", "margin": "4px"}))
    value = state.value or {}
    questions = []
    for q in RATING_QUESTIONS:
        text = "Is the feature coherent?" if q == "coherent" else "Is the label right?"
        questions.append(
            html.Div(
                [
                    html.Span(text + " "),
                    *(
                        _btn(a, RATING_KEYS[q][j], "rate", f"{q}|{a}", on=value.get(q) == a)
                        for j, a in enumerate(RATING_ANSWERS)
                    ),
                ]
            )
        )
    return [
        html.P(["Label: ", html.Span(str(p.get("label", "")), id="ann-text")]),
        html.Div(images, style={"display": "flex", "flexWrap": "wrap"}),
        *questions,
    ]


def _apply(
    session: TaskSession, ann: Any, action: str, value: str, pos: int, *, blocked: bool = False
) -> None:
    """Turn one button press on the item at ``pos`` into an event (only Back and Undo when
    the item is ``blocked``: its image cannot be shown)."""
    n = len(session.items)
    if action == "back":
        if pos > 0:
            session.act(ann, "back", session.item(position=pos - 1))
        return
    if pos >= n:
        return
    if blocked and action != "undo":
        raise InputError("this item's image cannot be shown, so it cannot be labelled")
    from vislens.store.annotations import current_values

    item = session.item(position=pos)
    cur = current_values(e.view() for e in session.store.events(session.task.name, ann.id)).get(pos)
    if action == "undo":
        session.act(ann, "undo", item)
    elif action == "next":
        session.act(ann, "next", item)
    elif action == "label":
        session.act(ann, "label", item, value)
    elif action == "none":
        session.act(ann, "label", item, {"words": [], "none": True})
    elif action == "word":
        idx, rel = value.split("|")
        word = item.payload["candidates_view"][int(idx)]["word"]
        words = [w for w in (cur or {}).get("words", []) if w["word"] != word]
        if not any(
            w["word"] == word and w["relation"] == rel for w in (cur or {}).get("words", [])
        ):
            words.append({"word": word, "relation": rel})
        session.act(ann, "label", item, {"words": words, "none": False})
    elif action == "rate":
        q, a = value.split("|")
        session.act(ann, "label", item, {**(cur or {}), q: a})


def register(app: Any, ctx: AppContext) -> None:
    """Callbacks of the annotation page: one for every button, one for the name form."""
    import dash
    from dash import ALL, Input, Output, State

    from vislens.app.media import missing_images

    @app.callback(
        Output("ann-body", "children"),
        Output("ann-progress", "value"),
        Output("ann-count", "children"),
        Output("ann-pos", "data"),
        Output("ann-status", "children"),
        Input("ann-ctx", "data"),
        Input({"type": "ann-act", "action": ALL, "value": ALL}, "n_clicks"),
        State("ann-pos", "data"),
    )
    def _act(
        data: dict[str, Any], _clicks: list[Any], shown: dict[str, int] | None
    ) -> tuple[Any, ...]:
        session = ctx.session(data["task"])
        ann = ctx.identify(token=data["token"])
        status = ""
        trig = dash.ctx.triggered_id
        clicked = any(t.get("value") for t in dash.ctx.triggered)
        if isinstance(trig, dict) and clicked and shown is not None:
            if session.state(ann).last_event_id != shown["last"]:
                # Saved from another tab since this page was drawn: acting on it could
                # label the wrong item, so show the current state instead.
                status = "This page was out of date (another tab?); nothing was saved — please look again."
            else:
                pos = int(shown["pos"])
                blocked = pos < len(session.items) and bool(missing_images(ctx, data["task"], pos))
                try:
                    _apply(session, ann, trig["action"], trig["value"], pos, blocked=blocked)
                except VislensError as e:
                    status = str(e)
        state = session.state(ann)
        missing = missing_images(ctx, data["task"], state.position) if not state.finished else []
        return (
            _render(session, state, missing),
            str(state.n_done),
            f"{state.n_done} / {state.n_items}",
            {"pos": state.position, "last": state.last_event_id},
            status,
        )

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
