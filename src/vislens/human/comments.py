"""Free-text comments annotators leave on an item, kept beside their answers.

A table of the annotation store (``annotation_comments``, docs/formats/annotations-db.md)
added without changing the schema version: older vislens versions open the store and
ignore it. Like events, comments are append-only; an annotator's current comment on an
item is their latest row for it (an empty text clears it). ``event_id`` links a comment to
the event it was saved with (the answer, or the skip), when there was one.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from sqlalchemy import DateTime, ForeignKey, Index, Integer, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from vislens.errors import InputError
from vislens.store.annotations.schema import Annotator, Base, Item, utcnow

MAX_COMMENT = 2000
"""Characters a comment may have."""

COMMENT_COLUMNS = ("annotator", "item_id", "position", "comment", "event_id", "updated_at")
"""Columns of :func:`comments_table` (and of ``vislens human export comments``)."""


class Comment(Base):
    """One saved comment text: never updated, never deleted."""

    __tablename__ = "annotation_comments"
    __table_args__ = (Index("ix_comments_task_annotator", "task_name", "annotator_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(ForeignKey("tasks.name", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    event_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


_ready_lock = threading.Lock()


def _ensure_table(store: Any) -> None:
    """Create the table in a store opened before this module was imported (once per store)."""
    if getattr(store, "_comments_ready", False):
        return
    with _ready_lock:
        if not getattr(store, "_comments_ready", False):
            Base.metadata.create_all(
                store._write_engine, tables=[Base.metadata.tables[Comment.__tablename__]]
            )
            store._comments_ready = True


def clean_comment(text: Any) -> str:
    """The comment as stored: a string, stripped, at most MAX_COMMENT characters."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise InputError(f"a comment is text, got {type(text).__name__}")
    text = text.strip()
    if len(text) > MAX_COMMENT:
        raise InputError(f"a comment has at most {MAX_COMMENT} characters, got {len(text)}")
    return text


def add_comment(
    store: Any,
    task_name: str,
    item_id: int,
    annotator_id: int,
    text: Any,
    *,
    event_id: int | None = None,
) -> int:
    """Append a comment row (the annotator's new current comment on the item); its id."""
    text = clean_comment(text)
    _ensure_table(store)
    row = Comment(
        task_name=task_name,
        item_id=item_id,
        annotator_id=annotator_id,
        event_id=event_id,
        text=text,
        created_at=datetime.now(timezone.utc),
    )
    with store._write() as s:
        s.add(row)
        s.flush()
        return int(row.id)


def current_comments(store: Any, task_name: str, annotator_id: int) -> dict[int, str]:
    """Item position → the annotator's current, non-empty comment on it."""
    _ensure_table(store)
    q = (
        select(Comment.text, Item.position)
        .join(Item, Item.id == Comment.item_id)
        .where(Comment.task_name == task_name, Comment.annotator_id == annotator_id)
        .order_by(Comment.id)
    )
    latest: dict[int, str] = {}
    with store._read() as s:
        for text, pos in s.execute(q):
            latest[int(pos)] = str(text)
    return {pos: text for pos, text in latest.items() if text}


def comments_table(store: Any, task_name: str) -> pd.DataFrame:
    """Every annotator's current comments on a task, one row per (annotator, item)."""
    store.task(task_name)  # unknown task → InputError naming the known ones
    _ensure_table(store)
    q = (
        select(Comment, Item.position, Item.external_id, Annotator.name)
        .join(Item, Item.id == Comment.item_id)
        .join(Annotator, Annotator.id == Comment.annotator_id)
        .where(Comment.task_name == task_name)
        .order_by(Comment.id)
    )
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    with store._read() as s:
        for c, pos, ext, name in s.execute(q):
            created = (
                c.created_at if c.created_at.tzinfo else c.created_at.replace(tzinfo=timezone.utc)
            )
            latest[(name, int(pos))] = {
                "annotator": name,
                "item_id": ext,
                "position": int(pos),
                "comment": c.text,
                "event_id": c.event_id,
                "updated_at": created.isoformat(),
            }
    rows = [r for _, r in sorted(latest.items()) if r["comment"]]
    table = pd.DataFrame(rows, columns=list(COMMENT_COLUMNS))
    table["event_id"] = table["event_id"].astype("Int64")  # nullable: no "3.0" in the CSV
    return table
