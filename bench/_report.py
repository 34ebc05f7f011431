"""How a benchmark reports its figures to bench/run_all.py (see bench/README.md).

A bench calls ``figure(...)`` once per figure, beside printing its own table. When
``VISLENS_BENCH_JSONL`` names a file (the runner sets it), each call appends one JSON
object to it, so the runner can put every figure beside its reference and its goal in
bench/results.md. Run by hand, ``figure`` writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ENV = "VISLENS_BENCH_JSONL"
FIELDS = ("bench", "figure", "value", "unit", "reference", "reference_value", "goal", "met", "note")


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    reference: str | None = None,
    reference_value: float | None = None,
    goal: str | None = None,
    met: bool | None = None,
    note: str = "",
) -> None:
    """Record one figure: ``value`` in ``unit``; what it is compared with (``reference``, in
    the same unit), the goal in words and whether this run met it."""
    path = os.environ.get(ENV)
    if not path:
        return
    row = {
        "bench": Path(sys.argv[0]).stem,
        "figure": name,
        "value": float(value),
        "unit": unit,
        "reference": reference,
        "reference_value": None if reference_value is None else float(reference_value),
        "goal": goal,
        "met": None if met is None else bool(met),
        "note": note,
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
