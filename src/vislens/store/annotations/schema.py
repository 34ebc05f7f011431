"""Tables of the annotation store (see docs/formats/annotations-db.md).

Annotations are append-only *events*: a person's click is a row that is never updated
or deleted. What an annotator's current label is, and where they stopped, is derived
from their events (``vislens.store.annotations.derive``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1
"""Version of the table layout; stored in ``vislens_meta`` under ``schema_version``."""

EVENT_KINDS = ("label", "undo", "back", "next")
"""``label`` sets a value, ``undo`` retracts the item's latest label, ``back``/``next`` move."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the database itself (schema version)."""

    __tablename__ = "vislens_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Task(Base):
    """One annotation task: a kind, a question, a label set and a fixed list of items."""

    __tablename__ = "tasks"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[Any] = mapped_column(JSON, default=list)
    settings: Mapped[Any] = mapped_column(JSON, default=dict)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    n_items: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Item(Base):
    """One thing to annotate, at a fixed position in its task's order."""

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("task_name", "position", name="uq_items_task_position"),
        UniqueConstraint("task_name", "external_id", name="uq_items_task_external"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(ForeignKey("tasks.name", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(500))
    payload: Mapped[Any] = mapped_column(JSON, default=dict)


class Annotator(Base):
    """A person (or an imported rater); ``token`` is the secret in their personal link."""

    __tablename__ = "annotators"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Event(Base):
    """One click: never updated, never deleted."""

    __tablename__ = "annotation_events"
    __table_args__ = (Index("ix_events_task_annotator", "task_name", "annotator_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_uuid: Mapped[str] = mapped_column(String(64), unique=True)
    task_name: Mapped[str] = mapped_column(ForeignKey("tasks.name", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    annotator_id: Mapped[int] = mapped_column(ForeignKey("annotators.id"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    session_id: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JudgeVerdict(Base):
    """An LLM/VLM judge's answer for one item of a task (the latest per judge wins)."""

    __tablename__ = "judge_verdicts"
    __table_args__ = (UniqueConstraint("task_name", "item_id", "judge", name="uq_verdict"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_name: Mapped[str] = mapped_column(ForeignKey("tasks.name", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    judge: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    raw: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
