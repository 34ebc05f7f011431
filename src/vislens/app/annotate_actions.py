"""What a press on an annotation page does: one event (and the comment typed with it),
with the rule that an item whose image cannot be shown may be skipped and commented but
not answered — the same rule the HTTP API applies."""

from __future__ import annotations

from typing import Any

from vislens.errors import InputError
from vislens.human.session import SKIP_VALUE, TaskSession

BLOCKED = "this item's image cannot be shown, so it cannot be labelled"
EVENT_OF = {"label": "label", "none": "label", "word": "label", "rate": "label",
            "next": "next", "skip": "next", "undo": "undo", "comment": ""}  # fmt: skip
"""The event kind each page action makes (a comment alone makes none)."""


def answers_the_item(kind: str, value: Any = None) -> bool:
    """Whether an event answers its item: a label, or ``next`` that is not a skip. An item
    whose image cannot be shown refuses these; skip, undo, back and comments stay allowed."""
    return kind == "label" or (kind == "next" and value != SKIP_VALUE)


def save_comment(session: TaskSession, ann: Any, pos: int, text: str, event_id: int | None) -> bool:
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
            save_comment(session, ann, pos, text, None)
        if 0 <= target != pos:
            session.act(ann, "back", session.item(position=target))
        return ""
    if pos >= n:
        return ""
    skip_value = SKIP_VALUE if action == "skip" else None
    if blocked and answers_the_item(EVENT_OF.get(action, action), skip_value):
        raise InputError(BLOCKED)
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
    saved = text is not None and save_comment(
        session, ann, pos, text, rec.id if rec is not None else None
    )
    if action == "comment":
        return "Comment saved." if saved else "The comment is already saved."
    return ""
