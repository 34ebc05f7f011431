"""One annotator working through one task: what they see now, and what a click does.

The web pages and the JSON endpoints both call :class:`TaskSession`, so a label saved
through either is the same event in the store.

Skipping an item is a ``next`` event whose value is ``{"skipped": true}`` (older readers
see a plain "next"). A skipped item stays without an answer and can be revisited; until it
is answered it counts as skipped, not pending, so the annotator is not sent back to it and
the task is finished once every item is answered or skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vislens.errors import InputError
from vislens.human.kinds import Kind, kind_of
from vislens.store.annotations import (
    AnnotationStore,
    EventView,
    Recorded,
    current_values,
    cursor,
    first_open,
)
from vislens.store.annotations.schema import Annotator, Item, Task


@dataclass(frozen=True)
class State:
    """Where an annotator is: ``position`` == ``n_items`` means every item is done."""

    position: int
    n_done: int
    n_items: int
    value: Any
    item: Item | None
    last_event_id: int = 0
    """Id of the annotator's latest event: a page built before it is out of date."""
    statuses: tuple[str, ...] = ()
    """Per position: ``done``, ``skipped``, ``started`` (an incomplete answer) or ``pending``."""

    @property
    def finished(self) -> bool:
        return self.position >= self.n_items

    @property
    def n_skipped(self) -> int:
        return self.statuses.count("skipped")

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "n_done": self.n_done,
            "n_items": self.n_items,
            "n_skipped": self.n_skipped,
            "finished": self.finished,
            "value": self.value,
            "item_id": self.item.external_id if self.item else None,
        }


class TaskSession:
    """A task's fixed items, cached, plus the derivation of each annotator's state."""

    def __init__(self, store: AnnotationStore, task_name: str) -> None:
        self.store = store
        self.task: Task = store.task(task_name)
        self.kind: Kind = kind_of(self.task.kind, self.task.labels)
        self.items: list[Item] = store.items(task_name)
        self._by_external = {it.external_id: it for it in self.items}

    def item(self, *, position: int | None = None, external_id: str | None = None) -> Item:
        """An item by position or by its external id; unknown ones are an InputError."""
        if external_id is not None:
            found = self._by_external.get(str(external_id))
            if found is None:
                raise InputError(f"task {self.task.name!r} has no item {external_id!r}")
            return found
        if position is None or not 0 <= position < len(self.items):
            raise InputError(
                f"task {self.task.name!r}: position {position!r} is outside 0..{len(self.items) - 1}"
            )
        return self.items[position]

    def state(self, annotator: Annotator) -> State:
        """The annotator's current position, progress and the value of the item shown."""
        events = [e.view() for e in self.store.events(self.task.name, annotator.id)]
        values = current_values(events)
        n = len(self.items)
        done = {pos for pos, v in values.items() if self.kind.is_done(v)}
        skipped = skipped_positions(events) - done
        closed = done | skipped
        if events and is_skip(events[-1]):
            pos = first_open(n, closed, events[-1].position + 1)
        else:
            pos = cursor(events, n, closed, self.kind.advances)
        item = self.items[pos] if pos < n else None
        last = max((e.id for e in events), default=0)
        statuses = tuple(
            "done"
            if p in done
            else "skipped"
            if p in skipped
            else "started"
            if values.get(p) is not None
            else "pending"
            for p in range(n)
        )
        return State(pos, len(done), n, values.get(pos), item, last, statuses)

    def act(
        self,
        annotator: Annotator,
        kind: str,
        item: Item,
        value: Any = None,
        *,
        event_uuid: str | None = None,
        session_id: str = "",
    ) -> Recorded:
        """Validate and append one event (label, undo, back, next) for ``item``."""
        if kind == "label":
            where = f"task {self.task.name!r}, item {item.external_id!r}"
            value = self.kind.validate(value, item.payload, where)
        elif kind == "next" and value is not None:
            if not _is_skip_value(value):
                raise InputError(f"a 'next' event carries no value, or {SKIP_VALUE} to skip")
        elif value is not None:
            raise InputError(f"a {kind!r} event carries no value")
        return self.store.record(
            self.task.name,
            item.id,
            annotator.id,
            kind,
            value,
            event_uuid=event_uuid,
            session_id=session_id,
        )


SKIP_VALUE = {"skipped": True}
"""Value of the ``next`` event that skips an item."""


def _is_skip_value(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {"skipped"} and value["skipped"] is True


def is_skip(event: EventView) -> bool:
    """Whether an event is a skip: ``next`` with the value ``{"skipped": true}``."""
    return event.kind == "next" and _is_skip_value(event.value)


def skipped_positions(events: list[EventView]) -> set[int]:
    """Items whose latest label, undo or skip event is a skip."""
    latest: dict[int, bool] = {}
    for e in sorted(events, key=lambda e: e.id):
        if e.kind in ("label", "undo") or is_skip(e):
            latest[e.position] = is_skip(e)
    return {pos for pos, skip in latest.items() if skip}
