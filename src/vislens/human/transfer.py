"""Moving annotations in and out of the store in seed 002 and LatentLens layouts."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from vislens.errors import InputError
from vislens.human.kinds import BINARY_LABELS
from vislens.human.latentlens import (
    evaluation_name,
    read_evaluation,
    read_llm_results,
    write_json_atomic,
    write_llm_results,
)
from vislens.human.seed002 import human_label_records, label_table, read_human_labels
from vislens.human.session import TaskSession
from vislens.store.annotations import AnnotationStore, ItemSpec, current_values, stable_event_id


def current_table(store: AnnotationStore, task_name: str) -> pd.DataFrame:
    """One row per (annotator, item) with a current value: annotator, item_id, position,
    value, updated_at — the input of every agreement statistic."""
    by_ann: dict[str, list[Any]] = {}
    for e in store.events(task_name):
        by_ann.setdefault(e.annotator, []).append(e)
    rows = []
    for name, evs in by_ann.items():
        values = current_values(e.view() for e in evs)
        last = {e.position: e for e in evs if e.kind == "label"}
        ext = {e.position: e.external_id for e in evs}
        for pos in sorted(values):
            rows.append(
                {
                    "annotator": name,
                    "item_id": ext[pos],
                    "position": pos,
                    "value": values[pos],
                    "updated_at": last[pos].created_at.isoformat(),
                }
            )
    return pd.DataFrame(rows, columns=["annotator", "item_id", "position", "value", "updated_at"])


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict("records")]


def _digest(path: Path) -> str:
    """Content hash of an imported file: re-importing the same file stores nothing new."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _parse_time(ts: Any) -> datetime | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- seed 002 ------------------------------------------------------------------------
def import_human_labels(
    store: AnnotationStore, path: Path, *, annotator: str, task_name: str | None = None
) -> int:
    """Load a seed 002 human-label file as ``annotator``'s labels; creates the task from
    the file's records when it does not exist. Returns the number of labels stored."""
    recs = read_human_labels(path)
    name = task_name or Path(path).stem
    if name not in {t.name for t in store.tasks()}:
        items = [
            ItemSpec(
                str(r["_row_id"]),
                {k: r.get(k) for k in ("_row_id", "feature_index", "feature_id", "description")},
            )
            for r in sorted(recs, key=lambda r: r["_row_id"])
        ]
        store.create_task(
            name, "binary", items, labels=BINARY_LABELS, settings={"source": str(path)}
        )
    session = TaskSession(store, name)
    ann = store.add_annotator(annotator)
    digest = _digest(path)
    for i, rec in enumerate(recs):
        try:
            item = session.item(external_id=str(rec["_row_id"]))
        except InputError:
            raise InputError(
                f"{path}: record {i}: _row_id {rec['_row_id']} is not an item of task {name!r}"
            ) from None
        session.act(
            ann,
            "label",
            item,
            rec["label"],
            event_uuid=stable_event_id("labels", name, ann.name, digest, i),
        )
    return len(recs)


def export_human_labels(
    store: AnnotationStore, task_name: str, annotator: str | None = None
) -> list[dict[str, Any]]:
    """Seed 002 records of one annotator's current labels (the only one if not named)."""
    store.task(task_name)
    table = current_table(store, task_name)
    names = sorted(set(table["annotator"]))
    if not names:
        raise InputError(f"task {task_name!r} has no labels yet — nothing to export")
    if annotator is None:
        if len(names) > 1:
            raise InputError(
                f"task {task_name!r} has labels from {', '.join(names)} — choose one with --annotator"
            )
        annotator = names[0]
    elif annotator not in names:
        raise InputError(
            f"task {task_name!r} has no labels from annotator {annotator!r} "
            f"(annotators with labels: {', '.join(names)})"
        )
    sub = table[table["annotator"] == annotator]
    payloads = [it.payload for it in store.items(task_name)]
    labels: dict[int, str] = {int(r["position"]): str(r["value"]) for r in _records(sub)}
    return human_label_records(payloads, labels)


# -- LatentLens ----------------------------------------------------------------------
def import_evaluations(store: AnnotationStore, task_name: str, paths: list[Path]) -> int:
    """Load ``evaluation_<user>_<session>.json`` files into a patch task. Each file is
    checked in full before any of it is stored. Returns the number of answers stored."""
    session = TaskSession(store, task_name)
    known = {
        it.external_id: {c["word"] for c in it.payload.get("candidates_view", [])}
        for it in session.items
    }
    n = 0
    for path in paths:
        data = read_evaluation(path, known)
        ann = store.add_annotator(str(data["userId"]))
        digest = _digest(path)
        sid = str(data.get("sessionId", ""))
        for i, r in enumerate(data["results"]):
            value = {
                "words": r.get("selectedWords", []),
                "none": bool(r.get("noneSelected", False)),
            }
            item = session.item(external_id=r["instanceId"])
            where = f"{path}: results[{i}]"
            value = session.kind.validate(value, item.payload, where)
            store.record(
                task_name,
                item.id,
                ann.id,
                "label",
                value,
                event_uuid=stable_event_id("evaluation", task_name, digest, i),
                session_id=sid,
                created_at=_parse_time(r.get("timestamp")),
            )
            n += 1
    return n


def export_evaluations(store: AnnotationStore, task_name: str, out_dir: Path) -> list[Path]:
    """One ``evaluation_<user>_<session>.json`` per annotator with their current answers."""
    store.task(task_name)
    table = current_table(store, task_name)
    if table.empty:
        raise InputError(f"task {task_name!r} has no answers yet — nothing to export")
    written = []
    sessions = {e.annotator: e.session_id for e in store.events(task_name) if e.session_id}
    for name, sub in table.groupby("annotator", sort=True):
        session = sessions.get(str(name)) or "vislens"
        results = [
            {
                "instanceId": r["item_id"],
                "selectedWords": r["value"].get("words", []),
                "noneSelected": bool(r["value"].get("none", False)),
                "timestamp": r["updated_at"],
            }
            for r in _records(sub.sort_values("position"))
        ]
        path = Path(out_dir) / evaluation_name(str(name), session)
        write_json_atomic(
            path,
            {
                "userId": name,
                "sessionId": session,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "results": results,
            },
        )
        written.append(path)
    return written


def import_llm_results(store: AnnotationStore, task_name: str, path: Path, *, judge: str) -> int:
    """Store a judge's ``human_study_llm_results.json`` verdicts; unknown ids are errors."""
    session = TaskSession(store, task_name)
    by_alias = {a: it for it in session.items for a in it.payload.get("aliases", [])}
    verdicts = read_llm_results(path)
    for iid, v in verdicts.items():
        try:
            item = session.item(external_id=iid)
        except InputError:
            if iid not in by_alias:
                raise InputError(
                    f"{path}: instance_id {iid!r} is not an item of task {task_name!r}"
                ) from None
            item = by_alias[iid]
        store.set_verdict(task_name, item.id, judge, v)
    return len(verdicts)


def export_llm_results(store: AnnotationStore, task_name: str, path: Path, *, judge: str) -> int:
    """Write ``judge``'s verdicts on the task as ``human_study_llm_results.json``; a judge
    with no verdicts there is an error naming the judges that have some."""
    rows = store.verdicts(task_name, judge)
    if not rows:
        have = sorted({j for _, j, _ in store.verdicts(task_name)})
        raise InputError(
            f"task {task_name!r} has no verdicts from judge {judge!r} "
            f"(judges with verdicts: {', '.join(have) or 'none'})"
        )
    write_llm_results(path, {iid: v for iid, _, v in rows}, judge)
    return len(rows)


def import_classifications(
    store: AnnotationStore, task_name: str, path: Path, *, judge: str
) -> int:
    """Store a model's seed 002 classification JSON (``{feature_id, feature_index,
    description, label}`` records) as verdicts on a binary task, matched on feature_index
    (else feature_id); records for features outside the task's sample are ignored."""
    session = TaskSession(store, task_name)
    if session.task.kind != "binary":
        raise InputError(
            f"task {task_name!r} is a {session.task.kind} task; classification files go with binary tasks"
        )
    table = label_table(path)
    by_index = {
        it.payload.get("feature_index"): it
        for it in session.items
        if it.payload.get("feature_index") is not None
    }
    by_id = {
        it.payload.get("feature_id"): it
        for it in session.items
        if it.payload.get("feature_id") is not None
    }
    n = 0
    for rec in table.to_dict("records"):
        idx = rec["feature_index"]
        item = (
            by_index.get(int(idx))
            if idx is not None and not pd.isna(idx)
            else by_id.get(rec["feature_id"])
        )
        if item is not None:
            store.set_verdict(task_name, item.id, judge, rec["label"])
            n += 1
    if n == 0:
        raise InputError(
            f"{path}: no record matches a feature of task {task_name!r} (by feature_index or feature_id)"
        )
    return n
