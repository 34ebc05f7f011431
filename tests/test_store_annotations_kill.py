"""20 annotators × 500 labels through the real server's HTTP endpoints; the server is
killed with SIGKILL half-way and restarted: every acknowledged label is stored, none twice.
Run against SQLite (the default store) and a real PostgreSQL server started here."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from helpers_human import ServerProcess, make_study, postgres_server, write_export
from vislens.human.tasks import create_binary_task
from vislens.human.transfer import current_table
from vislens.store.annotations import AnnotationStore
from vislens.store.annotations.schema import Event
from vislens.study import Study

N_WRITERS = 20
N_LABELS = 500
LABELS = ("related", "not-related")


def _writer(
    url: str, w: int, acked: dict[str, str], lock: threading.Lock, errors: list[str]
) -> None:
    rng = random.Random(w)
    with httpx.Client(base_url=url, timeout=30) as client:
        for pos in range(N_LABELS):
            event_id = f"w{w}-p{pos}"
            body = {
                "annotator": f"annotator-{w}",
                "position": pos,
                "kind": "label",
                "value": rng.choice(LABELS),
                "event_id": event_id,
            }
            while True:  # retry with the same event id until acknowledged
                try:
                    r = client.post("/api/v1/tasks/kill/events", json=body)
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code != 200:
                    errors.append(f"{event_id}: HTTP {r.status_code} {r.text[:200]}")
                    return
                with lock:
                    acked[event_id] = body["value"]
                break


def _run(tmp_path: Path, database_url: str) -> None:
    study = make_study(tmp_path / "study", database_url)
    store = AnnotationStore.for_study(study)
    create_binary_task(
        store, write_export(tmp_path / "exp.json", N_LABELS), n=N_LABELS, name="kill"
    )
    store.close()

    server = ServerProcess(study.root)
    server.start()
    acked: dict[str, str] = {}
    lock = threading.Lock()
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(server.url, w, acked, lock, errors))
        for w in range(N_WRITERS)
    ]
    try:
        for t in threads:
            t.start()
        while len(acked) < N_WRITERS * N_LABELS // 2 and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        n_before_kill = len(acked)
        server.kill()
        time.sleep(0.5)
        server.start()
        for t in threads:
            t.join(timeout=900)
    finally:
        server.stop()
    assert not errors, errors[:5]
    assert 0 < n_before_kill < N_WRITERS * N_LABELS, "the kill must land while writers are busy"
    assert len(acked) == N_WRITERS * N_LABELS

    store = AnnotationStore.for_study(Study.open(study.root))
    with store._read() as s:
        rows = s.execute(select(Event.event_uuid, Event.value)).all()
        n_distinct = s.scalar(select(func.count(func.distinct(Event.event_uuid))))
    store.close()
    stored = {}
    for uid, value in rows:
        assert uid not in stored, f"event {uid} stored twice"
        stored[uid] = value
    assert n_distinct == len(rows) == N_WRITERS * N_LABELS  # none twice, none extra
    missing = [e for e in acked if e not in stored]
    assert not missing, f"{len(missing)} acknowledged labels lost, e.g. {missing[:3]}"
    assert all(stored[e] == v for e, v in acked.items())
    store = AnnotationStore.for_study(Study.open(study.root))
    table = current_table(store, "kill")
    store.close()
    assert len(table) == N_WRITERS * N_LABELS
    assert table.groupby("annotator").size().eq(N_LABELS).all()


@pytest.mark.slow
def test_kill_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, "")


@pytest.mark.slow
@pytest.mark.postgres
def test_kill_postgres(tmp_path: Path) -> None:
    with postgres_server() as url:
        _run(tmp_path, url)
