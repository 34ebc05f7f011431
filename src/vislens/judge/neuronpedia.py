"""Read Neuronpedia explanation exports (seed 002's input) into clean feature descriptions.

Accepted shapes: a JSON list of records ``{modelId, layer, index, description,
explanationModelName}``; a dict wrapping that list under ``features``, ``items`` or
``data``; or a dict of records keyed by feature id (values are records or bare description
strings). Descriptions are stripped; ``index`` (a string in exports) becomes an int; the
first of duplicate features is kept; empty descriptions are skipped and counted. Anything
else is an ``InputError`` that names the file and the record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislens.errors import InputError

WRAPPER_KEYS = ("features", "items", "data")
_TRAILING_INDEX = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class FeatureDescription:
    """One feature's text explanation."""

    feature_id: str
    """``<modelId>/<layer>-<index>`` when the export has them, else the record's own id;
    it always ends in ``-<index>`` when the index is known (what seed 002's analysis parses)."""
    feature_index: int | None
    description: str
    model_id: str | None = None
    layer: str | None = None
    explanation_model: str | None = None


@dataclass
class Explanations:
    """A loaded export and what was dropped from it."""

    path: Path
    features: list[FeatureDescription] = field(default_factory=list)
    n_records: int = 0
    n_empty: int = 0
    """Records skipped because their description was empty."""
    n_duplicates: int = 0
    """Records skipped because an earlier record had the same feature."""


def _names_a_feature(key: str) -> bool:
    """A top-level key that can stand for a feature: an index, or an id ending in ``-<index>``."""
    return key.strip().isdigit() or _TRAILING_INDEX.search(key) is not None


def _records(data: Any, path: Path) -> list[tuple[str, Any]]:
    """(label for error messages, record) pairs from any accepted top-level shape."""
    if isinstance(data, list):
        return [(f"record {i}", r) for i, r in enumerate(data)]
    if isinstance(data, dict):
        for key in WRAPPER_KEYS:
            if key in data:
                if not isinstance(data[key], list):
                    raise InputError(
                        f"{path}: '{key}' is a JSON {type(data[key]).__name__}; expected a list "
                        "of feature records"
                    )
                return [(f"{key}[{i}]", r) for i, r in enumerate(data[key])]
        out: list[tuple[str, Any]] = []
        for k, v in data.items():
            if isinstance(v, dict):
                out.append((f"record '{k}'", {"feature_id": k, **v}))
            elif (isinstance(v, str) or v is None) and _names_a_feature(k):
                out.append((f"record '{k}'", {"feature_id": k, "description": v}))
            elif isinstance(v, str) or v is None:
                raise InputError(
                    f"{path}: top-level key '{k}' is not a feature id (an index, or an id ending "
                    "in -<index>); expected a list of records, a dict of records keyed by "
                    "feature id, or a 'features'/'items'/'data' list"
                )
            else:
                raise InputError(
                    f"{path}: record '{k}' is a {type(v).__name__}; expected a record object or a "
                    f"description string"
                )
        if not out:
            raise InputError(f"{path}: the export holds no features")
        return out
    raise InputError(
        f"{path}: top level is a JSON {type(data).__name__}; expected a list of records, a dict of "
        f"records, or a dict with a '{WRAPPER_KEYS[0]}'/'{WRAPPER_KEYS[1]}'/'{WRAPPER_KEYS[2]}' list"
    )


def _description_key(rec: dict[str, Any]) -> str | None:
    if "description" in rec:
        return "description"
    # Other exports name it e.g. "explanation" (seed 002 accepts any *desc* / *explanation* key).
    for k in rec:
        low = k.lower()
        if "desc" in low or ("explanation" in low and "model" not in low):
            return k
    return None


def _index(rec: dict[str, Any], label: str, path: Path) -> int | None:
    raw = rec.get("index")
    if raw is not None and raw != "":
        try:
            return int(str(raw).strip())
        except ValueError:
            raise InputError(
                f"{path}: {label} has index {raw!r}, which is not an integer — fix or remove that record"
            ) from None
    fid = rec.get("feature_id")
    if isinstance(fid, str) and (m := _TRAILING_INDEX.search(fid)):
        return int(m.group(1))
    return None


def parse_explanations(data: Any, path: Path) -> Explanations:
    """Clean records from already-parsed JSON ``data`` (``path`` is used in messages only)."""
    out = Explanations(path=path)
    seen: set[tuple[Any, ...]] = set()
    for label, rec in _records(data, path):
        out.n_records += 1
        if not isinstance(rec, dict):
            raise InputError(f"{path}: {label} is a {type(rec).__name__}; expected a JSON object")
        dkey = _description_key(rec)
        if dkey is None:
            raise InputError(
                f"{path}: {label} has no 'description' field (keys: {', '.join(map(str, rec)) or 'none'})"
            )
        desc = rec[dkey]
        if desc is not None and not isinstance(desc, str):
            raise InputError(
                f"{path}: {label} has a {type(desc).__name__} description; expected text"
            )
        desc = (desc or "").strip()
        index = _index(rec, label, path)
        model_id = rec.get("modelId")
        layer = rec.get("layer")
        if rec.get("feature_id") is not None:
            feature_id = str(rec["feature_id"])
        elif model_id is not None and layer is not None and index is not None:
            feature_id = f"{model_id}/{layer}-{index}"
        elif index is not None:
            feature_id = f"feature-{index}"
        else:
            raise InputError(f"{path}: {label} has neither an 'index' nor a 'feature_id'")
        if not desc:
            out.n_empty += 1
            continue
        ident = (model_id, layer, index) if index is not None else (feature_id,)
        if ident in seen:
            out.n_duplicates += 1
            continue
        seen.add(ident)
        out.features.append(
            FeatureDescription(
                feature_id=feature_id,
                feature_index=index,
                description=desc,
                model_id=None if model_id is None else str(model_id),
                layer=None if layer is None else str(layer),
                explanation_model=rec.get("explanationModelName"),
            )
        )
    return out


def load_explanations(path: Path) -> Explanations:
    """Read a Neuronpedia explanations export (any accepted shape) from ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file — pass a Neuronpedia explanations export (.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return parse_explanations(data, path)
