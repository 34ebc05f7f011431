"""The annotation store: SQLite (WAL) in the study directory, or PostgreSQL by URL.

Writes are single short transactions. On SQLite they start with ``BEGIN IMMEDIATE`` so
concurrent writers queue on the database lock (``busy_timeout``) instead of failing with
"database is locked" when a read transaction tries to become a write one.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from vislens.errors import ConfigError, InputError
from vislens.store.annotations.derive import EventView
from vislens.store.annotations.schema import (
    EVENT_KINDS,
    SCHEMA_VERSION,
    Annotator,
    Base,
    Event,
    Item,
    JudgeVerdict,
    Meta,
    Task,
)


@dataclass(frozen=True)
class ItemSpec:
    """An item to put in a new task: its id in the source data and what to show."""

    external_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """The stored event: its row id, its uuid, and whether it was already there."""

    id: int
    event_uuid: str
    duplicate: bool


@dataclass(frozen=True)
class EventRow:
    """An event joined with its item and annotator, for exports and derivation."""

    id: int
    event_uuid: str
    kind: str
    position: int
    external_id: str
    annotator: str
    value: Any
    session_id: str
    created_at: datetime

    def view(self) -> EventView:
        return EventView(self.id, self.kind, self.position, self.value)


def stable_event_id(*parts: object) -> str:
    """A deterministic event id for imports, so importing the same file twice stores once."""
    return uuid.uuid5(uuid.NAMESPACE_URL, "\x1f".join(map(str, parts))).hex


def _as_utc(ts: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were written in UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _sqlite_engine(url: str, *, immediate: bool, synchronous: str) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=10, max_overflow=30
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below decide how transactions start.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class AnnotationStore:
    """Tasks, items, annotators, append-only annotation events and judge verdicts."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        if sqlite_synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(
                f"sqlite_synchronous must be NORMAL or FULL, got {sqlite_synchronous!r}"
            )
        try:
            if url.startswith("sqlite"):
                self.engine = _sqlite_engine(url, immediate=False, synchronous=sqlite_synchronous)
                self._write_engine = _sqlite_engine(
                    url, immediate=True, synchronous=sqlite_synchronous
                )
            else:
                self.engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)
                self._write_engine = self.engine
        except Exception as e:  # bad URL / missing driver
            raise ConfigError(f"annotations database_url {url!r}: {e}") from None
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing writers of this process on a lock keeps
        # them out of SQLite's busy handler, whose sleep-and-retry gives long latency tails.
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        self._create_schema()

    @classmethod
    def for_study(cls, study: Any) -> AnnotationStore:
        """The store a study's config points at (study.toml ``[annotations]``)."""
        cfg = study.config.annotations
        return cls(study.annotations_url, sqlite_synchronous=cfg.sqlite_synchronous)

    def close(self) -> None:
        self.engine.dispose()
        if self._write_engine is not self.engine:
            self._write_engine.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction, committed on success (serialised in-process on SQLite)."""
        lock: contextlib.AbstractContextManager[Any] = self._write_lock or contextlib.nullcontext()
        with lock, self._write_sessions.begin() as s:
            yield s

    def _create_schema(self) -> None:
        try:
            Base.metadata.create_all(self._write_engine)
        except Exception as e:
            raise ConfigError(
                f"annotation store {self.url!r}: cannot open or create tables ({e})"
            ) from None
        with self._write() as s:
            row = s.get(Meta, "schema_version")
            if row is None:
                s.merge(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row.value) > SCHEMA_VERSION:
                raise ConfigError(
                    f"annotation store {self.url!r} has schema version {row.value}; this vislens "
                    f"reads up to {SCHEMA_VERSION} — upgrade vislens"
                )

    # -- tasks and items --------------------------------------------------------------
    def create_task(
        self,
        name: str,
        kind: str,
        items: Sequence[ItemSpec],
        *,
        title: str = "",
        question: str = "",
        labels: Sequence[Any] = (),
        settings: dict[str, Any] | None = None,
        seed: int | None = None,
    ) -> Task:
        """Create a task with its items in the given order; an existing name is an error."""
        ids = [it.external_id for it in items]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise InputError(
                f"task {name!r}: item id {dup!r} appears twice — item ids must be unique"
            )
        task = Task(
            name=name,
            kind=kind,
            title=title or name,
            question=question,
            labels=list(labels),
            settings=settings or {},
            seed=seed,
            n_items=len(items),
        )
        try:
            with self._write() as s:
                s.add(task)
                s.flush()
                s.add_all(
                    Item(task_name=name, position=i, external_id=it.external_id, payload=it.payload)
                    for i, it in enumerate(items)
                )
        except IntegrityError:
            raise InputError(
                f"task {name!r} already exists — pick another --name or delete it"
            ) from None
        return task

    def tasks(self) -> list[Task]:
        with self._read() as s:
            return list(s.scalars(select(Task).order_by(Task.created_at, Task.name)))

    def task(self, name: str) -> Task:
        with self._read() as s:
            task = s.get(Task, name)
        if task is None:
            known = ", ".join(t.name for t in self.tasks()) or "none yet"
            raise InputError(f"no annotation task {name!r} (tasks: {known})")
        return task

    def items(self, task_name: str) -> list[Item]:
        with self._read() as s:
            return list(
                s.scalars(select(Item).where(Item.task_name == task_name).order_by(Item.position))
            )

    # -- annotators -------------------------------------------------------------------
    def add_annotator(self, name: str) -> Annotator:
        """Create an annotator with a fresh link token; an existing name is returned as is."""
        name = name.strip()
        if not name:
            raise InputError("annotator name is empty — give a name")
        with self._read() as s:
            found = s.scalars(select(Annotator).where(Annotator.name == name)).first()
        if found is not None:
            return found
        try:
            with self._write() as s:
                ann = Annotator(name=name, token=secrets.token_urlsafe(16))
                s.add(ann)
            return ann
        except IntegrityError:  # created by a concurrent request
            return self.annotator(name=name)

    def annotator(self, *, name: str | None = None, token: str | None = None) -> Annotator:
        """Look up an annotator by name or by link token."""
        with self._read() as s:
            if token is not None:
                found = s.scalars(select(Annotator).where(Annotator.token == token)).first()
                what = "link token"
            else:
                found = s.scalars(select(Annotator).where(Annotator.name == name)).first()
                what = f"name {name!r}"
        if found is None:
            raise InputError(
                f"no annotator with this {what} — ask for a new link or add the annotator"
            )
        return found

    def annotators(self) -> list[Annotator]:
        with self._read() as s:
            return list(s.scalars(select(Annotator).order_by(Annotator.id)))

    # -- events -----------------------------------------------------------------------
    def record(
        self,
        task_name: str,
        item_id: int,
        annotator_id: int,
        kind: str,
        value: Any = None,
        *,
        event_uuid: str | None = None,
        session_id: str = "",
        created_at: datetime | None = None,
    ) -> Recorded:
        """Append one event. A repeated ``event_uuid`` (a client retry) is stored once."""
        if kind not in EVENT_KINDS:
            raise InputError(f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        event_uuid = event_uuid or uuid.uuid4().hex
        if not isinstance(event_uuid, str) or not 0 < len(event_uuid) <= 64:
            raise InputError(f"event id {event_uuid!r} must be a string of 1 to 64 characters")
        row = Event(
            event_uuid=event_uuid,
            task_name=task_name,
            item_id=item_id,
            annotator_id=annotator_id,
            kind=kind,
            value=value,
            session_id=session_id,
            created_at=created_at or datetime.now(timezone.utc),
        )
        try:
            with self._write() as s:
                s.add(row)
                s.flush()
                return Recorded(row.id, event_uuid, duplicate=False)
        except IntegrityError:
            pass
        with self._read() as s:
            old = s.scalars(select(Event).where(Event.event_uuid == event_uuid)).first()
        if old is None:
            raise InputError(f"event for task {task_name!r} refers to an unknown item or annotator")
        if (old.task_name, old.item_id, old.annotator_id, old.kind) != (
            task_name,
            item_id,
            annotator_id,
            kind,
        ):
            raise InputError(
                f"event id {event_uuid!r} was already used for a different event — send a new id"
            )
        return Recorded(old.id, event_uuid, duplicate=True)

    def events(self, task_name: str, annotator_id: int | None = None) -> list[EventRow]:
        """Events of a task (of one annotator if given), in the order they were written."""
        q = (
            select(Event, Item.position, Item.external_id, Annotator.name)
            .join(Item, Item.id == Event.item_id)
            .join(Annotator, Annotator.id == Event.annotator_id)
            .where(Event.task_name == task_name)
            .order_by(Event.id)
        )
        if annotator_id is not None:
            q = q.where(Event.annotator_id == annotator_id)
        with self._read() as s:
            return [
                EventRow(
                    e.id,
                    e.event_uuid,
                    e.kind,
                    pos,
                    ext,
                    name,
                    e.value,
                    e.session_id,
                    _as_utc(e.created_at),
                )
                for e, pos, ext, name in s.execute(q)
            ]

    def count_events(self, task_name: str | None = None) -> int:
        q = select(func.count(Event.id))
        if task_name is not None:
            q = q.where(Event.task_name == task_name)
        with self._read() as s:
            return int(s.scalar(q) or 0)

    # -- judge verdicts ---------------------------------------------------------------
    def set_verdict(
        self, task_name: str, item_id: int, judge: str, value: Any, raw: str = ""
    ) -> None:
        """Store a judge's answer for an item, replacing that judge's earlier one."""
        with self._write() as s:
            old = s.scalars(
                select(JudgeVerdict).where(
                    JudgeVerdict.task_name == task_name,
                    JudgeVerdict.item_id == item_id,
                    JudgeVerdict.judge == judge,
                )
            ).first()
            if old is None:
                s.add(
                    JudgeVerdict(
                        task_name=task_name, item_id=item_id, judge=judge, value=value, raw=raw
                    )
                )
            else:
                old.value, old.raw, old.created_at = value, raw, datetime.now(timezone.utc)

    def verdicts(self, task_name: str, judge: str | None = None) -> list[tuple[str, str, Any]]:
        """(item external id, judge, value) for a task, in item order."""
        q = (
            select(Item.external_id, JudgeVerdict.judge, JudgeVerdict.value)
            .join(Item, Item.id == JudgeVerdict.item_id)
            .where(JudgeVerdict.task_name == task_name)
            .order_by(Item.position, JudgeVerdict.judge)
        )
        if judge is not None:
            q = q.where(JudgeVerdict.judge == judge)
        with self._read() as s:
            return [(ext, j, v) for ext, j, v in s.execute(q)]
