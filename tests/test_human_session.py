"""Skipping, item statuses, comments and task titles, below the browser: the session, the
comment table, the HTTP API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from helpers_human import make_study, write_export, write_latentlens_files
from vislens.errors import InputError
from vislens.human.comments import COMMENT_COLUMNS, add_comment, comments_table, current_comments
from vislens.human.describe import item_label, task_title
from vislens.human.session import SKIP_VALUE, TaskSession
from vislens.human.tasks import create_binary_task, create_patch_task, create_rating_task
from vislens.human.transfer import current_table
from vislens.store.annotations import AnnotationStore, cursor
from vislens.study import Study


@pytest.fixture()
def study(tmp_path: Path) -> Study:
    st = make_study(tmp_path / "st")
    store = AnnotationStore.for_study(st)
    create_binary_task(store, write_export(tmp_path / "gemma-res.json", 12), n=4, name="t")
    store.close()
    return st


def _session(study: Study) -> tuple[AnnotationStore, TaskSession]:
    store = AnnotationStore.for_study(study)
    return store, TaskSession(store, "t")


def test_skipped_items_are_kept_apart_and_revisitable(study: Study) -> None:
    store, s = _session(study)
    ann = store.add_annotator("ann")
    s.act(ann, "label", s.item(position=0), "related")
    s.act(ann, "next", s.item(position=1), SKIP_VALUE)
    st = s.state(ann)
    assert (st.position, st.n_done, st.n_skipped) == (2, 1, 1)
    assert st.statuses == ("done", "skipped", "pending", "pending")
    assert st.to_json()["n_skipped"] == 1
    # Answering the last open items ends the task although item 1 has no answer.
    s.act(ann, "label", s.item(position=2), "not-related")
    assert s.state(ann).position == 3
    s.act(ann, "label", s.item(position=3), "related")
    st = s.state(ann)
    assert st.finished and st.n_done == 3 and st.statuses[1] == "skipped"
    # Revisit: a back event naming item 1 moves there; answering it makes it done.
    s.act(ann, "back", s.item(position=1))
    assert s.state(ann).position == 1
    s.act(ann, "label", s.item(position=1), "related")
    st = s.state(ann)
    assert st.finished and st.n_done == 4 and st.n_skipped == 0
    # Undoing that answer leaves it open, not skipped (the undo came after the skip).
    s.act(ann, "undo", s.item(position=1))
    assert s.state(ann).statuses[1] == "pending"
    # The exported labels hold answers only; a skip is not a label.
    assert sorted(current_table(store, "t")["position"]) == [0, 2, 3]
    store.close()


def test_skip_moves_to_the_next_open_item_and_old_readers_see_a_next(study: Study) -> None:
    store, s = _session(study)
    ann = store.add_annotator("bo")
    s.act(ann, "label", s.item(position=2), "related")
    s.act(ann, "back", s.item(position=1))
    s.act(ann, "next", s.item(position=1), SKIP_VALUE)
    assert s.state(ann).position == 3  # item 2 is answered: on to item 3
    events = [e.view() for e in store.events("t", ann.id)]
    # The store's own derivation (what an older vislens runs) reads it as a plain "next".
    assert cursor(events, 4, {2}, lambda v: True) == 2
    # A partial answer then a skip: "started" would be shown, but the skip wins.
    r = TaskSession(store, "t")
    assert r.state(ann).statuses == ("pending", "skipped", "done", "pending")
    with pytest.raises(InputError, match="carries no value"):
        s.act(ann, "next", s.item(position=0), {"skipped": "yes"})
    with pytest.raises(InputError, match="carries no value"):
        s.act(ann, "back", s.item(position=0), SKIP_VALUE)
    store.close()


def test_patch_statuses_distinguish_started_items(tmp_path: Path) -> None:
    st = make_study(tmp_path / "st")
    write_latentlens_files(tmp_path, n=3)
    store = AnnotationStore.for_study(st)
    create_patch_task(store, tmp_path / "data.json", name="p")
    s = TaskSession(store, "p")
    ann = store.add_annotator("cy")
    s.act(ann, "label", s.item(position=0), {"words": [], "none": False})
    assert s.state(ann).statuses == ("started", "pending", "pending")
    store.close()


def test_comments_are_append_only_and_the_latest_counts(study: Study) -> None:
    store, s = _session(study)
    ann = store.add_annotator("di")
    other = store.add_annotator("ed")
    rec = s.act(ann, "label", s.item(position=0), "related")
    add_comment(store, "t", s.item(position=0).id, ann.id, "  first  ", event_id=rec.id)
    add_comment(store, "t", s.item(position=0).id, ann.id, "second")
    add_comment(store, "t", s.item(position=2).id, ann.id, "<b>bold</b>")
    add_comment(store, "t", s.item(position=2).id, ann.id, "")  # cleared
    add_comment(store, "t", s.item(position=1).id, other.id, "theirs")
    assert current_comments(store, "t", ann.id) == {0: "second"}
    table = comments_table(store, "t")
    assert tuple(table.columns) == COMMENT_COLUMNS
    rows = {(r["annotator"], r["position"]): r for r in table.to_dict("records")}
    assert set(rows) == {("di", 0), ("ed", 1)}
    assert rows[("di", 0)]["comment"] == "second" and rows[("ed", 1)]["item_id"] == "1"
    with store._read() as sess:
        raw = sess.execute(text("SELECT text, event_id FROM annotation_comments ORDER BY id"))
        assert [tuple(r) for r in raw][:2] == [("first", rec.id), ("second", None)]
    with pytest.raises(InputError, match="at most 2000"):
        add_comment(store, "t", s.item(position=0).id, ann.id, "x" * 2001)
    with pytest.raises(InputError, match="is text"):
        add_comment(store, "t", s.item(position=0).id, ann.id, 5)
    with pytest.raises(InputError, match="no annotation task 'nope'"):
        comments_table(store, "nope")
    store.close()


def test_a_store_without_the_comment_table_gets_it_on_first_use(study: Study) -> None:
    store = AnnotationStore.for_study(study)
    with store._write() as sess:  # a store written before comments existed
        sess.execute(text("DROP TABLE annotation_comments"))
    store.close()
    store, s = _session(study)  # the store creates missing tables when it opens
    ann = store.add_annotator("fa")
    assert current_comments(store, "t", ann.id) == {}
    store.close()
    store = AnnotationStore.for_study(study)
    with store._write() as sess:
        sess.execute(text("DROP TABLE annotation_comments"))
    # ...and a store object opened before the drop creates it before the first comment.
    store._comments_ready = False  # type: ignore[attr-defined]
    s = TaskSession(store, "t")
    add_comment(store, "t", s.item(position=0).id, ann.id, "hello")
    assert current_comments(store, "t", ann.id) == {0: "hello"}
    store.close()


def test_titles_come_from_kind_and_metadata(tmp_path: Path, study: Study) -> None:
    store = AnnotationStore.for_study(study)
    binary = store.task("t")
    items = [it.payload for it in store.items("t")]
    assert task_title(binary, items) == "Feature descriptions about alignment — gemma-res"
    write_latentlens_files(tmp_path, n=4)
    create_patch_task(store, tmp_path / "data.json", name="p")
    patch = store.task("p")
    payloads = [it.payload for it in store.items("p")]
    assert task_title(patch, payloads) == "LatentLens words — toy-a, toy-b, visual layer 2"
    one = [p for p in payloads if p["model"] == "toy-a"]
    assert task_title(patch, one) == "LatentLens words — toy-a, visual layer 2"
    mixed = [{**p, "source": {**p["source"], "layer": k}} for k, p in enumerate(one)]
    assert task_title(patch, mixed) == "LatentLens words — toy-a, visual layers 0, 1"
    create_rating_task(store, tmp_path / "features.json", name="r")
    assert task_title(store.task("r"), []) == "Feature ratings — features"
    sae = SimpleNamespace(name="x", title="x", kind="rating", settings={"source": "sae/run1"})
    assert task_title(sae, []) == "Feature ratings — SAE run1"
    named = SimpleNamespace(name="x", title="My own title", kind="binary", settings={})
    assert task_title(named, []) == "My own title"
    assert item_label("binary", "3", {"feature_index": 17}) == "feature 17"
    assert item_label("patch", "i", payloads[0]).endswith(
        f"· row {payloads[0]['patch_row']}, col {payloads[0]['patch_col']}"
    )
    assert item_label("rating", "f0", {"feature_id": "f0"}) == "feature f0"
    store.close()


def test_skip_over_http_and_comments_from_the_cli(study: Study, tmp_path: Path) -> None:
    from vislens.app.shell import create_app
    from vislens.cli import app

    client = create_app(study).server.test_client()
    body = {"annotator": "gil", "position": 0, "kind": "next", "value": {"skipped": True}}
    r = client.post("/api/v1/tasks/t/events", json={**body, "return_state": True})
    assert r.status_code == 200, r.json
    assert r.json["state"]["n_skipped"] == 1 and r.json["state"]["position"] == 1
    bad = client.post("/api/v1/tasks/t/events", json={**body, "value": {"skipped": 1}})
    assert bad.status_code == 400 and "skip" in bad.json["error"]
    out = tmp_path / "comments.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["human", "export", "comments", str(study.root), "t", "-o", str(out)])
    assert res.exit_code != 0 and "no comments yet" in str(res.exception or res.output)
    store, s = _session(study)
    ann = store.annotator(name="gil")
    add_comment(store, "t", s.item(position=0).id, ann.id, 'unclear, "maybe"')
    store.close()
    res = runner.invoke(app, ["human", "export", "comments", str(study.root), "t", "-o", str(out)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    df = pd.read_csv(out)
    assert tuple(df.columns) == COMMENT_COLUMNS
    assert df.loc[0, "comment"] == 'unclear, "maybe"' and df.loc[0, "annotator"] == "gil"
    import csv

    rows = list(csv.DictReader(out.open(newline="")))
    # integer ids are written as integers, never as floats such as "3.0"
    assert rows[0]["item_id"].isdigit() and rows[0]["position"].isdigit()
    # a comment not tied to an event leaves the id empty rather than "nan"
    assert rows[0]["event_id"] == ""
    assert json.loads(json.dumps(df.loc[0, "item_id"].item())) == 0


def test_a_blocked_item_can_be_skipped_and_commented_but_not_answered(study: Study) -> None:
    from vislens.app.annotate import _apply

    store, s = _session(study)
    ann = store.add_annotator("hal")
    with pytest.raises(InputError, match="cannot be labelled"):
        _apply(s, ann, "label", "related", 0, blocked=True, comment="")
    assert _apply(s, ann, "comment", "", 0, blocked=True, comment=" image broken ") == (
        "Comment saved."
    )
    assert _apply(s, ann, "comment", "", 0, blocked=True, comment="image broken") == (
        "The comment is already saved."
    )
    _apply(s, ann, "skip", "", 0, blocked=True, comment="image broken")
    st = s.state(ann)
    assert st.position == 1 and st.statuses[0] == "skipped"
    assert current_comments(store, "t", ann.id) == {0: "image broken"}
    with pytest.raises(InputError, match="at most 2000"):  # refused before any event
        _apply(s, ann, "label", "related", 1, comment="x" * 2001)
    assert s.state(ann).statuses[1] == "pending"
    store.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_skips_and_comments_on_postgresql(tmp_path: Path) -> None:
    from helpers_human import postgres_server

    with postgres_server() as url:
        st = make_study(tmp_path / "pg", database_url=url)
        store = AnnotationStore.for_study(st)
        create_binary_task(store, write_export(tmp_path / "e.json", 6), n=3, name="t")
        s = TaskSession(store, "t")
        ann = store.add_annotator("pg")
        rec = s.act(ann, "next", s.item(position=0), SKIP_VALUE)
        add_comment(store, "t", s.item(position=0).id, ann.id, "skipped on pg", event_id=rec.id)
        assert s.state(ann).statuses == ("skipped", "pending", "pending")
        store.close()
        store = AnnotationStore.for_study(Study.open(st.root))  # read back in a new store
        table = comments_table(store, "t")
        assert table.to_dict("records")[0]["comment"] == "skipped on pg"
        assert int(table["event_id"][0]) == rec.id
        assert TaskSession(store, "t").state(ann).position == 1
        store.close()
