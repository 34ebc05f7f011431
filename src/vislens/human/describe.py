"""Human-readable names for tasks and items, derived from the task's kind and metadata.

A task created without a title has its name as title (``12-res_human_labels_alignment``);
the pages show :func:`task_title` instead, e.g. "LatentLens words — visual layer 2" or
"Feature descriptions about alignment — gemma-2-2b-res-65k". A title given at creation wins.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

KIND_NAMES = {
    "binary": "Feature descriptions",
    "patch": "LatentLens words",
    "rating": "Feature ratings",
}

LAYER_KEYS = ("layer", "visual_layer")
"""Keys of a LatentLens instance that name its visual layer."""


def _plural(word: str, values: list[str]) -> str:
    return f"{word}s {', '.join(values)}" if len(values) > 1 else f"{word} {values[0]}"


def _distinct(values: Any, limit: int = 4) -> list[str]:
    out: list[str] = []
    for v in values:
        text = "" if v is None else str(v)
        if text and text not in out:
            out.append(text)
    return out if len(out) <= limit else [*out[:limit], "…"]


def _stem(source: Any) -> str:
    text = str(source or "")
    if text.startswith("sae/"):
        return "SAE " + text[len("sae/") :]
    return PurePath(text).stem if text else ""


def task_title(task: Any, payloads: list[dict[str, Any]]) -> str:
    """The heading of a task page: its explicit title, else one made from kind + metadata."""
    if task.title and task.title != task.name:
        return str(task.title)
    settings = task.settings or {}
    base = KIND_NAMES.get(task.kind, task.kind)
    parts: list[str] = []
    if task.kind == "binary":
        mode = settings.get("mode")
        if mode:
            base = f"{base} about {mode}"
        prefixes = _distinct(
            str(p.get("feature_id", "")).rsplit("/", 1)[0]
            for p in payloads
            if "/" in str(p.get("feature_id", ""))
        )
        parts = prefixes[:1] if len(prefixes) == 1 else [_stem(settings.get("source"))]
    elif task.kind == "patch":
        sources = [p.get("source") or {} for p in payloads]
        models = _distinct(p.get("model") for p in payloads)
        layers = _distinct(
            next((s[k] for k in LAYER_KEYS if s.get(k) is not None), None) for s in sources
        )
        if models:
            parts.append(", ".join(models))
        if layers:
            parts.append(_plural("visual layer", layers))
        if not parts:
            parts.append(_stem(settings.get("source")))
    elif task.kind == "rating":
        parts.append(_stem(settings.get("source")))
    parts = [p for p in parts if p]
    return f"{base} — {', '.join(parts)}" if parts else f"{base} — {task.name}"


def item_label(kind: str, external_id: str, payload: dict[str, Any]) -> str:
    """A short name for one item in the page's item list."""
    if kind == "binary":
        idx = payload.get("feature_index")
        return f"feature {idx}" if idx is not None else f"row {external_id}"
    if kind == "patch":
        image = PurePath(str(payload.get("image", "")).split("?")[0]).name
        where = f"row {payload.get('patch_row')}, col {payload.get('patch_col')}"
        return f"{image} · {where}" if image else where
    if kind == "rating":
        return f"feature {payload.get('feature_id', external_id)}"
    return str(external_id)
