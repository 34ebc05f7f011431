"""Caption corpora for the contextual bank: a text file (one caption a line) or JSONL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from vislens.errors import InputError

TEXT_FIELDS = ("caption", "text")
"""JSONL fields read as the caption, in this order."""


def read_corpus(path: Path) -> list[str]:
    """The captions of ``path`` in file order (blank lines skipped). JSONL lines need a
    ``caption`` or ``text`` string; an empty corpus is an error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: corpus file not found — pass a text file or a JSONL file")
    raw = path.read_text(encoding="utf-8")
    captions: list[str] = []
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if jsonl:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            text = next((rec[k] for k in TEXT_FIELDS if isinstance(rec, dict) and k in rec), None)
            if not isinstance(text, str):
                raise InputError(
                    f"{path}:{lineno}: no string field {' or '.join(map(repr, TEXT_FIELDS))}"
                )
            if text.strip():
                captions.append(text)
        else:
            captions.append(line.rstrip("\r"))
    if not captions:
        raise InputError(f"{path}: the corpus is empty — it needs at least one caption")
    return captions


def corpus_digest(captions: list[str]) -> str:
    """sha256 of the captions (in order): a resumed bank must see the same corpus."""
    h = hashlib.sha256()
    for c in captions:
        h.update(c.encode("utf-8") + b"\x00")
    return h.hexdigest()
