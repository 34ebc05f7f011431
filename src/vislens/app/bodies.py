"""Request bodies of the HTTP API as strict pydantic models, and a JSON reader with limits.

Strict: ``"position": true`` is not the integer 1, a list is not a name, unknown keys are
refused. Limits: the whole body (``MAX_BODY_BYTES``, also enforced by Flask before reading),
every string field, and the nesting depth of a label value. Error messages name the field
and the rule, never the value sent (which may be megabytes).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

from vislens.errors import InputError
from vislens.human.comments import MAX_COMMENT

MAX_BODY_BYTES = 256 * 1024
MAX_NAME = 100
MAX_ID = 200
MAX_DEPTH = 6

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Ident = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
CommentText = Annotated[str, Field(max_length=MAX_COMMENT)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AnnotatorBody(_Body):
    """POST /api/v1/annotators"""

    name: Name


class EventBody(_Body):
    """POST /api/v1/tasks/<task>/events"""

    annotator: Name | None = None
    token: Ident | None = None
    kind: Annotated[str, Field(min_length=1, max_length=20)] = "label"
    """Checked against the task's event kinds by the session (its message lists them)."""
    item_id: Ident | None = None
    position: StrictInt | None = None
    value: Any = None
    event_id: Ident | None = None
    session_id: Annotated[str, Field(max_length=MAX_ID)] = ""
    return_state: StrictBool = False
    comment: CommentText | None = None
    """Saved as the annotator's comment on the item, with this event (as the page does)."""


class CommentBody(_Body):
    """POST /api/v1/tasks/<task>/comments: a comment alone (an empty text clears it)."""

    annotator: Name | None = None
    token: Ident | None = None
    item_id: Ident | None = None
    position: StrictInt | None = None
    comment: CommentText


def _depth(v: Any, d: int = 0) -> int:
    if d > MAX_DEPTH:
        return d
    if isinstance(v, dict):
        return max((_depth(x, d + 1) for x in v.values()), default=d + 1)
    if isinstance(v, list):
        return max((_depth(x, d + 1) for x in v), default=d + 1)
    return d


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def parse_body(raw: bytes, model: type[_Body]) -> Any:
    """Decode ``raw`` as one JSON object and validate it as ``model`` (InputError if not)."""
    if len(raw) > MAX_BODY_BYTES:
        raise InputError(f"request body is over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise InputError("request body is nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("request body is not JSON") from None
    if not isinstance(data, dict):
        raise InputError("send a JSON object")
    if _depth(data) > MAX_DEPTH:
        raise InputError(f"request body is nested deeper than {MAX_DEPTH} levels")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputError(_explain(e)) from None
