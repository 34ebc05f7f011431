"""The probe's format docs and guide name exactly the fields the code writes and reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from vislens.probe.attention import META_KEYS, NPZ_KEYS
from vislens.probe.config import ProbeConfig
from vislens.probe.reports import FEATURE_COLUMNS, PER_CASE_COLUMNS, SUMMARY_KEYS
from vislens.probe.scoring import (
    SENSITIVITY_COLUMNS,
    location_metrics,
    presence_metrics,
)
from vislens.probe.stats import LOCALISATION_COLUMNS, RANKING_COLUMNS
from vislens.probe.templates import TEMPLATES_DIR

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "formats"


def table_names(path: Path, heading: str) -> list[str]:
    """First-column names (in backticks) of the first table under ``## heading``."""
    text = path.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def row_text(path: Path, heading: str, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))


@pytest.mark.parametrize(
    ("doc", "heading", "names"),
    [
        ("probe-reports.md", "per_case.csv", PER_CASE_COLUMNS),
        ("probe-reports.md", "prompt_sensitivity.csv", SENSITIVITY_COLUMNS),
        ("probe-reports.md", "summary.json", SUMMARY_KEYS),
        ("probe-reports.md", "stats/per_head_features.parquet", FEATURE_COLUMNS),
        ("probe-reports.md", "stats/head_rankings.csv", RANKING_COLUMNS),
        ("probe-reports.md", "stats/head_localisation.csv", LOCALISATION_COLUMNS),
        ("probe-attn-cache.md", "Arrays", NPZ_KEYS),
        ("probe-attn-cache.md", "meta", META_KEYS),
    ],
)
def test_doc_tables_match_code(doc: str, heading: str, names: tuple[str, ...]) -> None:
    assert table_names(DOCS / doc, heading) == list(names)


def test_summary_metric_names_match_code() -> None:
    doc = DOCS / "probe-reports.md"
    pres = presence_metrics(pd.DataFrame({"outcome": ["TP"]}))
    loc = location_metrics(
        pd.DataFrame({"outcome": ["exact"], "correct": [True], "within_one": [True]})
    )
    for key, metrics in (("presence", pres), ("location", loc)):
        named = re.findall(r"`([a-z_0-9]+)`", row_text(doc, "summary.json", key))
        assert [n for n in named if n not in (key, "overall", "by_paraphrase")] == list(metrics)


def test_template_doc_matches_the_shipped_file() -> None:
    raw = json.loads((TEMPLATES_DIR / "prompts_v1.json").read_text(encoding="utf-8"))
    doc = DOCS / "probe-templates.md"
    assert table_names(doc, "Top level") == list(raw)
    assert table_names(doc, "Paraphrase") == list(raw["presence"][0])


def test_guide_lists_every_config_field() -> None:
    assert table_names(ROOT / "docs" / "probe.md", "The `[probe]` section") == list(
        ProbeConfig.model_fields
    )
