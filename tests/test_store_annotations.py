"""The annotation store: append-only events, derived labels and cursor, idempotent retries."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from vislens.errors import ConfigError, InputError
from vislens.store.annotations import AnnotationStore, EventView, ItemSpec, current_values, cursor
from vislens.store.annotations.schema import SCHEMA_VERSION


@pytest.fixture()
def store(tmp_path: Path) -> AnnotationStore:
    s = AnnotationStore(f"sqlite:///{tmp_path / 'a.sqlite'}")
    s.create_task(
        "t",
        "binary",
        [ItemSpec(str(i), {"description": f"d{i}"}) for i in range(5)],
        labels=["related", "not-related"],
    )
    return s


def test_sqlite_uses_wal_and_records_schema_version(store: AnnotationStore) -> None:
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.execute(
            text("SELECT value FROM vislens_meta WHERE key='schema_version'")
        ).scalar() == str(SCHEMA_VERSION)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    s = AnnotationStore(url)
    with s._write() as sess:
        sess.execute(text("UPDATE vislens_meta SET value='99' WHERE key='schema_version'"))
    s.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        AnnotationStore(url)


def test_retry_with_same_event_id_is_stored_once(store: AnnotationStore) -> None:
    ann = store.add_annotator("ann")
    item = store.items("t")[0]
    first = store.record("t", item.id, ann.id, "label", "related", event_uuid="e1")
    again = store.record("t", item.id, ann.id, "label", "related", event_uuid="e1")
    assert not first.duplicate and again.duplicate and again.id == first.id
    assert store.count_events("t") == 1
    with pytest.raises(InputError, match="already used"):
        store.record("t", store.items("t")[1].id, ann.id, "label", "related", event_uuid="e1")


def test_events_are_append_only_and_undo_restores_previous(store: AnnotationStore) -> None:
    ann = store.add_annotator("ann")
    item = store.items("t")[2]
    store.record("t", item.id, ann.id, "label", "related")
    store.record("t", item.id, ann.id, "label", "not-related")
    store.record("t", item.id, ann.id, "undo")
    events = store.events("t", ann.id)
    assert [e.kind for e in events] == ["label", "label", "undo"]
    assert current_values(e.view() for e in events) == {2: "related"}


def test_unknown_task_and_duplicate_items_are_clear_errors(store: AnnotationStore) -> None:
    with pytest.raises(InputError, match=r"no annotation task 'nope'.*tasks: t"):
        store.task("nope")
    with pytest.raises(InputError, match="'x' appears twice"):
        store.create_task("u", "binary", [ItemSpec("x", {}), ItemSpec("x", {})])
    with pytest.raises(InputError, match="already exists"):
        store.create_task("t", "binary", [])


def test_annotator_tokens_are_unique_and_lookup_works(store: AnnotationStore) -> None:
    a, b = store.add_annotator("a"), store.add_annotator("b")
    assert a.token != b.token and len(a.token) >= 16
    assert store.annotator(token=a.token).name == "a"
    assert store.add_annotator("a").id == a.id
    with pytest.raises(InputError, match="link token"):
        store.annotator(token="wrong")


def _reference(events: list[tuple[str, int, str | None]], n: int) -> tuple[dict[int, str], int]:
    """A plainly written replay of the rules in derive.py's docstring."""
    stacks: dict[int, list[str]] = {i: [] for i in range(n)}
    pos = 0
    for kind, p, v in events:
        if kind == "label":
            stacks[p].append(v)  # type: ignore[arg-type]
            done = {i for i in range(n) if stacks[i]}
            after = [i for i in range(p + 1, n) if i not in done]
            before = [i for i in range(0, p + 1) if i not in done]
            pos = after[0] if after else (before[0] if before else n)
        elif kind == "undo":
            if stacks[p]:
                stacks[p].pop()
            pos = p
        elif kind == "back":
            pos = p
        else:
            pos = min(p + 1, n)
    if not events:
        pos = 0
    return {i: s[-1] for i, s in stacks.items() if s}, pos


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["label", "undo", "back", "next"]),
            st.integers(0, 5),
            st.sampled_from(["related", "not-related"]),
        ),
        max_size=30,
    )
)
def test_derivation_matches_a_plain_replay(raw: list[tuple[str, int, str]]) -> None:
    n = 6
    events = [(k, p, v if k == "label" else None) for k, p, v in raw]
    views = [EventView(i + 1, k, p, v) for i, (k, p, v) in enumerate(events)]
    values = current_values(views)
    expected_values, expected_pos = _reference(events, n)
    assert values == expected_values
    assert cursor(views, n, set(values), lambda v: v is not None) == expected_pos
