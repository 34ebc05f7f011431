"""The format docs name exactly the fields the code writes, so they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vislens.judge.cache import ANSWER_COLUMNS
from vislens.judge.runner import RunSummary
from vislens.judge.tasks import classify, images, label, latentlens

DOCS = Path(__file__).resolve().parents[1] / "docs" / "formats"


def table_names(doc: str, heading: str) -> list[str]:
    """First-column names (in backticks) of the first table under ``## heading``."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("doc", "heading", "names"),
    [
        ("judge-cache.md", "Table `answers`", list(ANSWER_COLUMNS)),
        ("judge-summary.md", "", list(RunSummary.model_fields)),
        ("judge-labels.md", "`features[]`", list(label.FEATURE_KEYS)),
        ("judge-outputs.md", "Description classification", list(classify.OUTPUT_KEYS)),
        ("judge-outputs.md", "LatentLens results", list(latentlens.RESULT_KEYS)),
        ("judge-outputs.md", "LatentLens answer", list(latentlens.ANSWER_KEYS)),
        ("judge-outputs.md", "Image classification CSVs", list(images.ADDED_COLUMNS)),
        ("judge-outputs.md", "Rationale JSON", list(images.RATIONALE_KEYS)),
    ],
)
def test_doc_fields_match_code(doc: str, heading: str, names: list[str]) -> None:
    if heading:
        assert table_names(doc, heading) == names
    else:
        text = (DOCS / doc).read_text(encoding="utf-8")
        assert re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE) == names


def test_code_constants_match_the_models() -> None:
    assert tuple(latentlens.LatentLensAnswer.model_fields) == latentlens.ANSWER_KEYS
    assert tuple(images.ImageAnswer.model_fields) == images.RATIONALE_KEYS
    assert set(label.FeatureLabel.model_fields) < set(label.FEATURE_KEYS)


def test_labels_top_level_keys() -> None:
    assert table_names("judge-labels.md", "Top level") == list(label.LABELS_KEYS)
