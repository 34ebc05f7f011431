"""What an annotator's events mean now: current values and where they resume.

Every event names one item:

- ``label`` pushes a value for that item; ``undo`` pops the item's latest value, so the
  one before it (or none) is current again — nothing clicked is lost;
- ``back`` names the item moved *to* (the one before the item shown, or the last item
  when leaving the "all done" screen); ``next`` names the item moved *from*;
- after a ``label`` that completes the item (``advances(value)``), the annotator moves to
  the next item without a current value, wrapping to the first such item, and to
  ``n_items`` (the "all done" screen) when every item has one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EventView:
    """The part of an event that derivation needs, in the order events were written."""

    id: int
    kind: str
    position: int
    value: Any = None


def current_values(events: Iterable[EventView]) -> dict[int, Any]:
    """Item position → current value (items whose every label was undone are absent)."""
    stacks: dict[int, list[Any]] = {}
    for e in sorted(events, key=lambda e: e.id):
        if e.kind == "label":
            stacks.setdefault(e.position, []).append(e.value)
        elif e.kind == "undo" and stacks.get(e.position):
            stacks[e.position].pop()
    return {pos: stack[-1] for pos, stack in stacks.items() if stack}


def first_open(n_items: int, done: set[int], start: int = 0) -> int:
    """First position >= ``start`` not in ``done``, else the first anywhere, else ``n_items``."""
    for pos in range(start, n_items):
        if pos not in done:
            return pos
    for pos in range(0, min(start, n_items)):
        if pos not in done:
            return pos
    return n_items


def cursor(
    events: Iterable[EventView],
    n_items: int,
    done: set[int],
    advances: Callable[[Any], bool],
) -> int:
    """The position this annotator resumes at (``n_items`` means every item is done)."""
    ordered = sorted(events, key=lambda e: e.id)
    if not ordered:
        return first_open(n_items, done)
    last = ordered[-1]
    if last.kind == "back":
        return last.position
    if last.kind == "next":
        return min(last.position + 1, n_items)
    if last.kind == "label" and advances(last.value):
        return first_open(n_items, done, last.position + 1)
    return last.position
