"""Small pieces every task shares: output names and the summary file beside each output."""

from __future__ import annotations

import re
from pathlib import Path

from vislens.io import write_json_atomic
from vislens.judge.runner import RunSummary


def model_slug(model: str) -> str:
    """A model name safe in a file name: ``Qwen/Qwen3-VL-4B-Instruct`` → ``Qwen_Qwen3-VL-4B-Instruct``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


def summary_path(out_path: Path) -> Path:
    """Where a task writes its run summary: ``<output stem>.summary.json`` beside the output."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".summary.json")


def write_summary(out_path: Path, summary: RunSummary) -> Path:
    """Write ``summary`` beside ``out_path`` (atomically) and return its path."""
    path = summary_path(out_path)
    write_json_atomic(path, summary.model_dump(mode="json"))
    return path
