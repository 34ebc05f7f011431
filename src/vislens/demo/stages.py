"""Run the demo's stages in order, each once: a stage that finished is reused on the next run.

A stage is done when its record ``reports/demo/<stage>.json`` exists with the same
settings; the record is written atomically only after the stage's own outputs are on
disk, so a demo killed mid-stage re-runs that stage (whose own steps resume where they
can) and reuses every stage before it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislens.io import write_json_atomic

RECORD_DIR = ("reports", "demo")


@dataclass
class StageResult:
    name: str
    seconds: float
    reused: bool
    summary: dict[str, Any]


@dataclass
class StageRunner:
    """Runs stage functions under ``record_dir``; ``settings`` must match for a record to count."""

    record_dir: Path
    settings: dict[str, Any]
    log: Callable[[str], None] = print
    results: list[StageResult] = field(default_factory=list)

    def record_path(self, name: str) -> Path:
        return self.record_dir / f"{name}.json"

    def _load(self, name: str) -> dict[str, Any] | None:
        path = self.record_path(name)
        if not path.is_file():
            return None
        try:
            rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        return rec

    def run(
        self,
        name: str,
        fn: Callable[[], dict[str, Any]],
        *,
        depends: Sequence[str] | None = None,
        stale: Sequence[Path] = (),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``fn()`` unless the stage is recorded as done with the same settings.

        ``depends`` names the settings the stage reads (default: all of them). When the
        record is from other settings (``extra`` adds settings that are not the demo's own),
        the ``stale`` paths are removed before the stage
        runs again, so nothing of the old run is resumed into the new one; a stage killed
        before its record was written keeps its partial outputs to resume from.
        """
        settings = {k: v for k, v in self.settings.items() if depends is None or k in depends}
        settings |= extra or {}
        rec = self._load(name)
        if rec is not None and rec.get("settings") == settings:
            self.results.append(StageResult(name, 0.0, True, rec["summary"]))
            self.log(f"[{name}] reused ({rec['seconds']:.1f} s when it ran)")
            return dict(rec["summary"])
        if rec is not None:
            for path in stale:
                shutil.rmtree(path, ignore_errors=True)
            self.record_path(name).unlink()
        self.log(f"[{name}] running")
        t0 = time.perf_counter()
        summary = fn()
        seconds = time.perf_counter() - t0
        write_json_atomic(
            self.record_path(name),
            {"stage": name, "seconds": round(seconds, 2), "settings": settings, "summary": summary},
        )
        self.results.append(StageResult(name, seconds, False, summary))
        self.log(f"[{name}] done in {seconds:.1f} s")
        return summary

    def timings(self) -> list[dict[str, Any]]:
        return [
            {"stage": r.name, "seconds": round(r.seconds, 2), "reused": r.reused}
            for r in self.results
        ]
