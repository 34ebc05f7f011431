"""The item part of an annotation page: the item (description, patch with its crop,
rating images), its answer buttons, Back / Undo / Skip, the comment box, the item list and
the finished view. Everything from data or users is passed to Dash as text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vislens.human.kinds import RATING_ANSWERS, RATING_QUESTIONS, RELATIONS
from vislens.human.session import State, TaskSession

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
SHORT_SENTENCE = 90
"""Source sentences longer than this are shown clamped, the full text one click away."""


@dataclass(frozen=True)
class PatchView:
    """How a patch item's crop is drawn: context in patches (None: automatic, crop.py)
    and the image's size in pixels when it is a local file."""

    context: int | None = None
    image_size: tuple[int, int] | None = None


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
    patch: PatchView | None = None,
) -> Any:
    """The item part of the page for the annotator's current state; ``missing`` names the
    item's images that cannot be shown, which blocks labelling it; ``patch`` says how a
    patch item's crop is drawn."""
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
    kind = session.task.kind
    if kind == "patch":
        body = _render_patch(session, state, patch or PatchView())
    else:
        body = {"binary": _render_binary, "rating": _render_rating}[kind](session, state)
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
            *body,
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


def _render_patch(session: TaskSession, state: State, view: PatchView) -> list[Any]:
    from dash import html

    from vislens.app.crop import (
        box_style,
        context_for,
        crop_size,
        crop_style,
        crop_window,
        patch_grid,
    )
    from vislens.app.media import image_src

    assert state.item is not None
    p = state.item.payload
    src = image_src(session.task.name, state.position, str(p.get("image", "")))
    row, col = int(p["patch_row"]), int(p["patch_col"])
    n_rows, n_cols = patch_grid(p)
    picture = html.Figure(
        [
            html.Div(
                [
                    html.Img(src=src, alt="the image", className="ann-full-img"),
                    html.Div(style=box_style(row, col, n_rows, n_cols), id="ann-box"),
                ],
                className="ann-full",
            ),
            html.Figcaption(f"Patch row {row}, column {col} of {n_rows} × {n_cols}"),
        ],
        className="ann-fig",
    )
    win = crop_window(row, col, n_rows, n_cols, context_for(view.context, n_rows, n_cols))
    size = crop_size(win, n_rows, n_cols, view.image_size)
    crop = html.Figure(
        [
            html.Div(
                html.Div(
                    style=box_style(row - win.top, col - win.left, win.rows, win.cols),
                    id="ann-crop-box",
                ),
                style=crop_style(src, win, n_rows, n_cols, size),
                id="ann-crop",
            ),
            html.Figcaption(f"Zoomed: {win.rows} × {win.cols} patches around the box"),
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
