"""Tolerant reading of a model's JSON answer, checked against the task's pydantic schema.

Models wrap JSON in code fences, put prose before it, or add a sentence after it. We look
for the first JSON object that validates, in this order: the whole text, each fenced block,
then every balanced ``{...}`` span. Anything else is a parse failure with a reason that the
re-ask prompt quotes back to the model; nothing is ever filled in with a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)

# Openings of answers that decline the task instead of answering it. Only counted as a
# refusal when the text also holds no valid answer.
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i won'?t|i am unable|i'?m unable|"
    r"i must decline|as an ai)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """An answer that validated, or the reason it did not."""

    value: T | None
    error: str | None = None


def _balanced_objects(text: str) -> Iterator[str]:
    """Every top-level ``{...}`` span of ``text``, braces inside JSON strings ignored."""
    depth, start, in_str, esc = 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield text[start : i + 1]


def json_candidates(text: str) -> Iterator[str]:
    """Strings that may be the answer's JSON, most likely first."""
    yield text.strip()
    for m in _FENCE.finditer(text):
        yield m.group(1).strip()
    yield from _balanced_objects(text)


def parse_answer(text: str, schema: type[T]) -> Parsed[T]:
    """The first JSON object in ``text`` that ``schema`` accepts, or the reason none did."""
    last_error = "no JSON object found in the answer"
    for cand in json_candidates(text):
        if not cand.startswith("{"):
            continue
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError as e:
            last_error = f"invalid JSON ({e.msg} at line {e.lineno} column {e.colno})"
            continue
        try:
            return Parsed(schema.model_validate(obj))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            last_error = f"JSON does not match the schema: field '{where}': {first['msg']}"
    return Parsed(None, last_error)


def looks_like_refusal(text: str) -> bool:
    """True when ``text`` opens like a refusal (only consulted when no answer parsed)."""
    return bool(_REFUSAL.match(text))
