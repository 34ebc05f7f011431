"""The judge cache: every answered request, keyed by a hash of model + messages + params.

One SQLite file per study (``judge-cache.sqlite``, see docs/formats/judge-cache.md). Each
answer is committed as soon as it arrives, so a killed run loses at most the requests in
flight, and a re-run sends nothing it has already paid for. Failed requests are not stored:
they are tried again on the next run. Images are stored as their sha256 only, and nothing
about credentials ever reaches this file (the API key is not part of a request).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from vislens.errors import InputError
from vislens.judge.client import ChatReply
from vislens.judge.messages import ChatRequest

SCHEMA_VERSION = 1

# Column names are part of the documented format (docs/formats/judge-cache.md).
ANSWER_COLUMNS = (
    "key",
    "model",
    "request_json",
    "text",
    "finish_reason",
    "refusal",
    "prompt_tokens",
    "completion_tokens",
    "task",
    "created_at",
)

_DDL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request_json TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    refusal TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    task TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


class JudgeCache:
    """Answers by request key. ``JudgeCache(None)`` is an in-memory cache (nothing kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:")
            self._db.executescript(_DDL)
            if self.path is not None:
                # WAL: readers (a second vislens process) never block the writer.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        except sqlite3.DatabaseError as e:
            raise InputError(
                f"{self.path}: not a usable judge cache ({e}) — move it aside"
            ) from None
        if row is None:
            self._db.execute(
                "INSERT INTO meta(name, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._db.commit()
        elif int(row[0]) > SCHEMA_VERSION:
            raise InputError(
                f"{self.path}: judge cache schema_version {row[0]} is newer than this vislens "
                f"reads ({SCHEMA_VERSION}) — upgrade vislens"
            )

    def get(self, key: str) -> ChatReply | None:
        """The stored answer for ``key``, or None."""
        row = self._db.execute(
            "SELECT text, finish_reason, refusal, prompt_tokens, completion_tokens "
            "FROM answers WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return ChatReply(
            text=row[0],
            finish_reason=row[1],
            refusal=row[2],
            prompt_tokens=row[3],
            completion_tokens=row[4],
        )

    def put(self, request: ChatRequest, reply: ChatReply, *, task: str = "") -> None:
        """Store ``reply`` under ``request.key()`` and commit at once."""
        stored = {
            "model": request.model,
            "messages": request.redacted_messages(),
            "params": request.params,
        }
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request.key(),
                request.model,
                json.dumps(stored, ensure_ascii=False, sort_keys=True),
                reply.text,
                reply.finish_reason,
                reply.refusal,
                reply.prompt_tokens,
                reply.completion_tokens,
                task,
                datetime.now(timezone.utc).isoformat(timespec="seconds"),
            ),
        )
        self._db.commit()

    def stats(self) -> list[dict[str, object]]:
        """Answers and tokens per (model, task), for ``vislens judge cache``."""
        rows = self._db.execute(
            "SELECT model, task, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), "
            "MIN(created_at), MAX(created_at) FROM answers GROUP BY model, task ORDER BY model, task"
        ).fetchall()
        keys = ("model", "task", "n_answers", "prompt_tokens", "completion_tokens", "first", "last")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        self._db.close()
