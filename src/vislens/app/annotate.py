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

from vislens.app.context import AppContext
from vislens.app.pages import Page
from vislens.errors import InputError, VislensError
from vislens.human.kinds import RATING_ANSWERS, RATING_QUESTIONS, RELATIONS
from vislens.human.session import SKIP_VALUE, State, TaskSession

WORD_KEYS = {"concrete": "12345", "abstract": "qwert", "global": "asdfg"}
"""Keys per relation column: the n-th candidate's key is the n-th character."""
RATING_KEYS = {"coherent": "123", "label": "456"}
BINARY_KEYS = "12"
SKIP_KEY = "k"
STATUS_MARKS = {"done": "✓", "skipped": "↷", "started": "…", "pending": "○"}
STATUS_WORDS = {
    "done": "answered",
    "skipped": "skipped",
    "started": "started",
    "pending": "open",
}
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
SHORT_SENTENCE = 90
"""Source sentences longer than this are shown clamped, the full text one click away."""
CROP_PX = 200
"""Side of the zoomed crop in CSS pixels."""


def _btn(
    text: str,
    key: str,
    action: str,
    value: str = "",
    *,
    on: bool = False,
    cls: str = "",
    inert: bool = False,
) -> Any:
    """A page button; ``inert`` marks one that would do nothing here (greyed out and
    announced as disabled, but not the ``disabled`` attribute: a key pressed ahead of the
    page, while an earlier press is still being saved, must still reach it)."""
    from dash import html

    label = f"{text} [{key.upper() if len(key) == 1 else key}]" if key else text
    attrs: dict[str, Any] = {"data-key": key}
    if inert:
        attrs["aria-disabled"] = "true"
    return html.Button(
        label,
        id={"type": "ann-act", "action": action, "value": value},
        n_clicks=0,
        className=" ".join(c for c in ("vl-on" if on else "", cls) if c),
        **attrs,
    )


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


def _nav_buttons(state: State) -> list[Any]:
    """Back, Undo and Skip; one that could do nothing here is marked inert."""
    return [
        _btn("← Back", "b", "back", inert=state.position == 0),
        _btn("Undo", "u", "undo", inert=state.value is None),
        _btn("Skip", SKIP_KEY, "skip", cls="ann-skip"),
    ]


def _comment_box(state: State, comment: str) -> Any:
    from dash import dcc, html

    return html.Div(
        [
            dcc.Textarea(
                id={"type": "ann-comment", "pos": state.position},
                value=comment,
                placeholder="Comment (optional): saved with your answer, your skip, or Save comment",
                maxLength=2000,
                className="ann-comment",
            ),
            html.Div(
                [
                    _btn("Save comment", "", "comment", cls="ann-save-comment"),
                    html.Span(
                        "comment saved" if comment else "",
                        id="ann-comment-saved",
                        className="vl-muted",
                    ),
                ]
            ),
        ],
        className="ann-commentbox",
    )


def _render(
    session: TaskSession,
    state: State,
    missing: list[str] | None = None,
    *,
    comment: str = "",
    n_comments: int = 0,
) -> Any:
    """The item part of the page for the annotator's current state; ``missing`` names the
    item's images that cannot be shown, which blocks labelling it."""
    from dash import html

    from vislens.human.describe import item_label

    if state.finished:
        return _render_finished(state, n_comments)
    assert state.item is not None
    status = state.statuses[state.position] if state.statuses else "pending"
    head = html.Div(
        [
            html.Span(f"Item {state.position + 1} / {state.n_items}", id="ann-item-no"),
            html.Span(
                item_label(session.task.kind, state.item.external_id, state.item.payload),
                id="ann-item-label",
                className="vl-muted",
            ),
            html.Span(
                STATUS_WORDS[status], id="ann-item-status", className=f"ann-badge ann-st-{status}"
            ),
        ],
        className="ann-itemhead",
    )
    render = {"binary": _render_binary, "patch": _render_patch, "rating": _render_rating}[
        session.task.kind
    ]
    blocked = []
    if missing:
        shown = ", ".join(m if len(m) <= 120 else m[:120] + "…" for m in missing[:3])
        blocked = [
            html.P(
                f"This item's image cannot be shown ({shown}), so it cannot be labelled: "
                "skip it, use Back, or ask the study owner to fix the file.",
                id="ann-blocked",
                className="vl-blocked",
            )
        ]
    return html.Div(
        [
            head,
            *blocked,
            *render(session, state),
            html.Div(_nav_buttons(state), id="ann-nav", className="ann-bar"),
            _comment_box(state, comment),
        ],
        id="ann-item",
    )


def _render_finished(state: State, n_comments: int) -> Any:
    """The summary once every item is answered or skipped: only buttons that act."""
    from dash import dcc, html

    skipped = [p for p, s in enumerate(state.statuses) if s == "skipped"]
    parts = [f"{state.n_done} of {state.n_items} items answered"]
    if skipped:
        parts.append(f"{len(skipped)} skipped")
    if n_comments:
        parts.append(f"{n_comments} with a comment")
    actions = []
    if skipped:
        actions.append(
            _btn(f"Review skipped items ({len(skipped)})", "", "jump", f"{skipped[0]}|review")
        )
    if state.n_items > 1:
        actions.append(_btn("Revise from item 1", "", "jump", "0|revise"))
    actions.append(_btn("← Back to the last item", "b", "back"))
    return html.Div(
        [
            html.H3("All done — thank you!"),
            html.P(", ".join(parts) + ".", id="ann-summary"),
            html.P(
                "Your answers are saved. Pick any item in the list to change it.",
                className="vl-muted",
            ),
            html.Div(
                [*actions, dcc.Link("All annotation tasks", href="/annotate", id="ann-tasks-link")],
                className="ann-bar",
                id="ann-done-actions",
            ),
        ],
        id="ann-done",
    )


def _list_frame() -> Any:
    """The item list: one radio group (a single component however many items, so a page
    of hundreds of items stays quick), filled in by the page's callback."""
    from dash import dcc, html

    return html.Details(
        [
            html.Summary("Items"),
            html.P(className="vl-muted", id="ann-legend"),
            dcc.RadioItems(
                id="ann-jump",
                options=[],
                value=None,
                className="ann-items",
                labelClassName="ann-jump-label",
                inputClassName="ann-jump-radio",
            ),
        ],
        open=True,
        id="ann-items",
    )


def _render_list(session: TaskSession, state: State) -> tuple[str, list[dict[str, Any]]]:
    """The list's legend and options: every item with its status; choosing one jumps to it."""
    from dash import html

    from vislens.human.describe import item_label

    counts = {s: state.statuses.count(s) for s in STATUS_MARKS}
    legend = " · ".join(
        f"{STATUS_MARKS[s]} {counts[s]} {STATUS_WORDS[s]}" for s in STATUS_MARKS if counts[s]
    )
    options = []
    for pos, (it, status) in enumerate(zip(session.items, state.statuses, strict=True)):
        cls = f"ann-jump ann-st-{status}" + (" ann-here" if pos == state.position else "")
        text = f"{STATUS_MARKS[status]} {pos + 1}. " + item_label(
            session.task.kind, it.external_id, it.payload
        )
        data: dict[str, Any] = {"data-status": status}
        label = html.Span(text, className=cls, title=STATUS_WORDS[status], **data)
        options.append({"label": label, "value": pos})
    return legend, options


def _render_binary(session: TaskSession, state: State) -> list[Any]:
    from dash import html

    assert state.item is not None
    current = f"Current label: {state.value}" if state.value else ""
    texts = {"related": "Related", "not-related": "Not related"}
    buttons = [
        _btn(
            texts.get(lab, lab),
            BINARY_KEYS[i] if i < 2 else "",
            "label",
            lab,
            on=state.value == lab,
        )
        for i, lab in enumerate(session.task.labels)
    ]
    return [
        html.Div(
            str(state.item.payload.get("description", "")),
            id="ann-text",
            className="vl-item ann-text",
        ),
        html.Div(buttons, id="ann-buttons", className="ann-bar ann-answers"),
        html.P(current, id="ann-current"),
    ]


def _crop_window(row: int, col: int, grid: int) -> tuple[int, int, int]:
    """(top, left, k): the k × k patch window media.crop_style shows around (row, col)."""
    from vislens.app.media import CROP_PATCHES

    k = min(CROP_PATCHES, grid)
    top = min(max(row - k // 2, 0), grid - k)
    left = min(max(col - k // 2, 0), grid - k)
    return top, left, k


def _sentence(text: str) -> Any:
    """A candidate's source sentence: in full when short, else its first lines with the
    rest behind a click (so a long caption cannot push the buttons out of view)."""
    from dash import html

    if not text:
        return None
    if len(text) <= SHORT_SENTENCE:
        return html.Div(text, className="ann-sentence")
    return html.Details(
        [
            html.Summary(
                [
                    html.Span(text, className="ann-clamp"),
                    html.Span("show all", className="ann-toggle ann-show"),
                    html.Span("show less", className="ann-toggle ann-less"),
                ],
                className="ann-sentence",
            ),
            html.Div(text, className="ann-sentence"),
        ],
        className="ann-more",
    )


def _render_patch(session: TaskSession, state: State) -> list[Any]:
    from dash import html

    from vislens.app.media import crop_style, image_src, patch_box_style

    assert state.item is not None
    p = state.item.payload
    src = image_src(session.task.name, state.position, str(p.get("image", "")))
    row, col, grid = int(p["patch_row"]), int(p["patch_col"]), int(p.get("grid", 24))
    picture = html.Figure(
        [
            html.Div(
                [
                    html.Img(src=src, alt="the image", className="ann-full-img"),
                    html.Div(style=patch_box_style(row, col, grid), id="ann-box"),
                ],
                className="ann-full",
            ),
            html.Figcaption(f"Patch row {row}, column {col} of {grid} × {grid}"),
        ],
        className="ann-fig",
    )
    top, left, k = _crop_window(row, col, grid)
    crop = html.Figure(
        [
            html.Div(
                html.Div(style=patch_box_style(row - top, col - left, k), id="ann-crop-box"),
                style=crop_style(src, row, col, grid, px=CROP_PX),
                id="ann-crop",
            ),
            html.Figcaption(f"Zoomed: {k} × {k} patches around the box"),
        ],
        className="ann-fig",
    )
    chosen = {w["word"]: w["relation"] for w in (state.value or {}).get("words", [])}
    rows = []
    for i, c in enumerate(p.get("candidates_view", [])):
        word = html.Td(
            [
                html.Span(
                    c["token"] or c["word"], title=c["sentence"] or c["word"], className="ann-word"
                ),
                _sentence(c["sentence"]),
            ],
            className="ann-wordcell",
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
        rows.append(html.Tr([word, html.Td(buttons, className="ann-relcell")]))
    none = (state.value or {}).get("none")
    answers = html.Div(
        [
            html.Table(html.Tbody(rows), id="ann-candidates", className="ann-candidates"),
            html.Div(
                [
                    _btn("None of these", "0", "none", on=bool(none)),
                    _btn("Next →", "Enter", "next"),
                ],
                className="ann-bar",
            ),
            html.P("Marked: none of these" if none else "", id="ann-current"),
        ],
        id="ann-buttons",
        className="ann-answers",
    )
    return [
        html.Div([html.Div([picture, crop], className="ann-figs"), answers], className="ann-patch")
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
                className="ann-thumb",
            )
        ]
        if p.get("heatmaps"):
            layers.append(
                html.Img(
                    src=image_src(session.task.name, state.position, p["heatmaps"][i], f"heat{i}"),
                    className="ann-thumb ann-heat",
                )
            )
        images.append(html.Div(layers, className="ann-thumbbox"))
    value = state.value or {}
    questions = []
    for q in RATING_QUESTIONS:
        text = "Is the feature coherent?" if q == "coherent" else "Is the label right?"
        questions.append(
            html.Div(
                [
                    html.Span(text, className="ann-q"),
                    *(
                        _btn(a, RATING_KEYS[q][j], "rate", f"{q}|{a}", on=value.get(q) == a)
                        for j, a in enumerate(RATING_ANSWERS)
                    ),
                ],
                className="ann-bar",
            )
        )
    return [
        html.P(
            ["Label: ", html.Span(str(p.get("label", "")), id="ann-text")], className="ann-text"
        ),
        html.Div(questions, id="ann-buttons", className="ann-answers"),
        html.Div(images, className="ann-thumbs"),
    ]


def _save_comment(
    session: TaskSession, ann: Any, pos: int, text: str, event_id: int | None
) -> bool:
    """Store ``text`` as the annotator's comment on item ``pos`` if it changed."""
    from vislens.human.comments import add_comment, current_comments

    if text == current_comments(session.store, session.task.name, ann.id).get(pos, ""):
        return False
    item = session.item(position=pos)
    add_comment(session.store, session.task.name, item.id, ann.id, text, event_id=event_id)
    return True


def _apply(
    session: TaskSession,
    ann: Any,
    action: str,
    value: str,
    pos: int,
    *,
    blocked: bool = False,
    comment: str | None = None,
) -> str:
    """Turn one button press on the item at ``pos`` into an event (when the item is
    ``blocked`` — its image cannot be shown — only moving, undo, skip and comments), and
    save ``comment`` on that item when it changed: linked to the answer or skip it came
    with, if any. Returns a message for the page, if any."""
    from vislens.human.comments import clean_comment
    from vislens.store.annotations import current_values

    n = len(session.items)
    text = clean_comment(comment) if comment is not None and pos < n else None
    if action in ("back", "jump"):
        target = pos - 1 if action == "back" else int(value.split("|")[0])  # "<pos>[|<which>]"
        if text is not None:
            _save_comment(session, ann, pos, text, None)
        if 0 <= target != pos:
            session.act(ann, "back", session.item(position=target))
        return ""
    if pos >= n:
        return ""
    if blocked and action not in ("undo", "skip", "comment"):
        raise InputError("this item's image cannot be shown, so it cannot be labelled")
    item = session.item(position=pos)
    cur = current_values(e.view() for e in session.store.events(session.task.name, ann.id)).get(pos)
    rec = None
    if action == "undo":
        session.act(ann, "undo", item)
    elif action == "next":
        rec = session.act(ann, "next", item)
    elif action == "skip":
        rec = session.act(ann, "next", item, SKIP_VALUE)
    elif action == "label":
        rec = session.act(ann, "label", item, value)
    elif action == "none":
        rec = session.act(ann, "label", item, {"words": [], "none": True})
    elif action == "word":
        idx, rel = value.split("|")
        word = item.payload["candidates_view"][int(idx)]["word"]
        words = [w for w in (cur or {}).get("words", []) if w["word"] != word]
        if not any(
            w["word"] == word and w["relation"] == rel for w in (cur or {}).get("words", [])
        ):
            words.append({"word": word, "relation": rel})
        rec = session.act(ann, "label", item, {"words": words, "none": False})
    elif action == "rate":
        q, a = value.split("|")
        rec = session.act(ann, "label", item, {**(cur or {}), q: a})
    saved = text is not None and _save_comment(
        session, ann, pos, text, rec.id if rec is not None else None
    )
    if action == "comment":
        return "Comment saved." if saved else "The comment is already saved."
    return ""


def register(app: Any, ctx: AppContext) -> None:
    """Callbacks of the annotation page: one for every button, one for the name form."""
    import dash
    from dash import ALL, Input, Output, State

    from vislens.app.media import missing_images
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
        body = _render(
            session,
            state,
            missing,
            comment=notes.get(state.position, ""),
            n_comments=len(notes),
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
