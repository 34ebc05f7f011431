"""One annotator working through one task: what they see now, and what a click does.

The web pages and the JSON endpoints both call :class:`TaskSession`, so a label saved
through either is the same event in the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vislens.errors import InputError
from vislens.human.kinds import Kind, kind_of
from vislens.store.annotations import AnnotationStore, Recorded, current_values, cursor
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

    @property
    def finished(self) -> bool:
        return self.position >= self.n_items

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "n_done": self.n_done,
            "n_items": self.n_items,
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
        done = {pos for pos, v in values.items() if self.kind.is_done(v)}
        pos = cursor(events, len(self.items), done, self.kind.advances)
        item = self.items[pos] if pos < len(self.items) else None
        last = max((e.id for e in events), default=0)
        return State(pos, len(done), len(self.items), values.get(pos), item, last)

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
