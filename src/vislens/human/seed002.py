"""Seed 002 layouts: Neuronpedia explanation exports and human-label JSON, both ways.

Human-label JSON (docs/formats/human-labels.md) is a list of records
``{_row_id, feature_index, feature_id, description, label}`` with ``label`` one of
``related`` / ``not-related``; ``_row_id`` is the position in the seeded sample.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from vislens.errors import InputError
from vislens.human.kinds import BINARY_LABELS
from vislens.io import write_json_atomic

LABEL_CODES = {"related": 1, "not-related": 0}
"""0/1 codes of the two labels (1 = related, the positive class)."""

HUMAN_LABEL_KEYS = ("_row_id", "feature_index", "feature_id", "description", "label")


def read_json(path: Path) -> Any:
    """Parse a JSON file; a missing or malformed file is an InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e}) — check the file is complete") from None


_TRAILING_INDEX = re.compile(r"-(\d+)$")


def records_of(
    data: Any, path: Path, keys: tuple[str, ...] = ("features", "items", "data")
) -> list[dict[str, Any]]:
    """A list of records from a list, or from a dict holding one under a known key, or a
    dict of feature id → record or description (the shapes seed 002 accepts). A dict whose
    keys are not feature ids (an index, or an id ending in ``-<index>``) and whose values
    are not records is refused rather than read as one odd feature."""
    if isinstance(data, dict):
        for k in (*keys, "records"):
            if k in data:
                if not isinstance(data[k], list):
                    raise InputError(
                        f"{path}: '{k}' is a JSON {type(data[k]).__name__}; expected a list of records"
                    )
                data = data[k]
                break
        else:
            recs = []
            for k, v in data.items():
                if isinstance(v, dict):
                    recs.append({"feature_id": k, **v})
                elif (isinstance(v, str) or v is None) and (
                    str(k).strip().isdigit() or _TRAILING_INDEX.search(str(k))
                ):
                    recs.append({"feature_id": k, "description": v})
                else:
                    raise InputError(
                        f"{path}: top-level key '{k}' holds a {type(v).__name__} value and is not a "
                        "feature id (an index, or an id ending in -<index>); expected a list of "
                        "records or a dict of records keyed by feature id"
                    )
            data = recs
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise InputError(f"{path}: record {i} is {type(rec).__name__}, expected an object")
    return data


def feature_index(rec: dict[str, Any]) -> int | None:
    """``index`` if it is an integer, else the trailing ``-<n>`` of ``feature_id``."""
    idx = rec.get("index")
    if idx is not None and not (isinstance(idx, float) and pd.isna(idx)):
        try:
            return int(idx)
        except (TypeError, ValueError):
            pass
    fid = rec.get("feature_id")
    if isinstance(fid, str):
        m = _TRAILING_INDEX.search(fid)
        if m:
            return int(m.group(1))
    return None


def load_neuronpedia_export(path: Path) -> pd.DataFrame:
    """A Neuronpedia explanation export as a table with ``description`` and ``feature_index``."""
    path = Path(path)
    df = pd.DataFrame(records_of(read_json(path), path))
    if df.empty:
        raise InputError(f"{path}: the export holds no features")
    if "description" not in df.columns:
        alt = [c for c in df.columns if "desc" in str(c).lower() or "explanation" in str(c).lower()]
        if not alt:
            raise InputError(
                f"{path}: no 'description' field (nor one named like desc*/explanation*)"
            )
        df = df.rename(columns={alt[0]: "description"})
    df["feature_index"] = [
        feature_index({str(k): v for k, v in r.items()}) for r in df.to_dict("records")
    ]
    return df


def sample_features(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """The fixed sample: pandas' ``sample(random_state=seed)``, as seed 002 draws it, so the
    same export and seed give the same rows in the same order."""
    return df.sample(n=min(n, len(df)), random_state=seed).reset_index(drop=True)


def clean_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    return v.item() if hasattr(v, "item") else v


def human_label_records(
    payloads: list[dict[str, Any]], labels: dict[int, str]
) -> list[dict[str, Any]]:
    """Seed 002 records for the labelled rows, in ``_row_id`` order."""
    out = []
    for row_id in sorted(labels):
        p = payloads[row_id]
        out.append(
            {
                "_row_id": int(row_id),
                "feature_index": clean_value(p.get("feature_index")),
                "feature_id": clean_value(p.get("feature_id")),
                "description": clean_value(p.get("description")),
                "label": labels[row_id],
            }
        )
    return out


def write_human_labels(path: Path, records: list[dict[str, Any]]) -> None:
    write_json_atomic(Path(path), records)


def read_human_labels(
    path: Path, label_set: tuple[str, ...] = BINARY_LABELS
) -> list[dict[str, Any]]:
    """Read a human-label JSON file; every record must have an integer ``_row_id`` and a
    label from ``label_set``, else an InputError names the file and the record."""
    path = Path(path)
    recs = records_of(read_json(path), path, keys=("items", "records", "data"))
    seen: set[int] = set()
    for i, rec in enumerate(recs):
        where = f"{path}: record {i}"
        row_id = rec.get("_row_id")
        if isinstance(row_id, bool) or not isinstance(row_id, int):
            raise InputError(f"{where}: '_row_id' must be an integer, got {row_id!r}")
        if row_id in seen:
            raise InputError(f"{where}: '_row_id' {row_id} appears twice")
        seen.add(row_id)
        if rec.get("label") not in label_set:
            raise InputError(
                f"{where} (_row_id {row_id}): label {rec.get('label')!r} is not one of {', '.join(label_set)}"
            )
    return recs


def label_table(path: Path) -> pd.DataFrame:
    """feature_id / feature_index / label of a label file; bad labels name the record."""
    recs = records_of(read_json(path), Path(path), keys=("items", "records", "data"))
    rows = []
    for i, r in enumerate(recs):
        if "label" not in r:
            raise InputError(
                f"{path}: record {i} has no 'label' — expected seed 002's related/not-related records"
            )
        if r["label"] not in LABEL_CODES:
            raise InputError(
                f"{path}: record {i}: label {r['label']!r} is not one of {', '.join(BINARY_LABELS)}"
            )
        fid = r.get("feature_id", r.get("id", r.get("featureid")))
        idx = r.get("feature_index", r.get("featureidx", r.get("idx")))
        if idx is None:
            idx = feature_index({"index": r.get("index"), "feature_id": fid})
        rows.append({"feature_id": fid, "feature_index": idx, "label": r["label"]})
    return pd.DataFrame(rows, columns=["feature_id", "feature_index", "label"])
