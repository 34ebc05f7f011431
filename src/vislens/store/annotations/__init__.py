"""The annotation/judgment database: tasks, items, annotators, append-only events."""

from __future__ import annotations

from vislens.store.annotations.derive import EventView, current_values, cursor, first_open
from vislens.store.annotations.schema import EVENT_KINDS, SCHEMA_VERSION
from vislens.store.annotations.store import (
    AnnotationStore,
    EventRow,
    ItemSpec,
    Recorded,
    stable_event_id,
)

__all__ = [
    "EVENT_KINDS",
    "SCHEMA_VERSION",
    "AnnotationStore",
    "EventRow",
    "EventView",
    "ItemSpec",
    "Recorded",
    "current_values",
    "cursor",
    "first_open",
    "stable_event_id",
]
