"""The lens format docs name exactly the fields the code writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vislens.lens import alignment, bank, exports, neighbors, rates, run, sample

DOCS = Path(__file__).resolve().parents[1] / "docs" / "formats"


def table_names(doc: str, heading: str) -> list[str]:
    """First-column names (in backticks) of the first table under ``## heading``."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("doc", "heading", "names"),
    [
        ("lens-bank.md", "Table `metadata.parquet`", list(bank.METADATA_COLUMNS)),
        ("lens-bank.md", "Manifest `bank.json`", list(bank.MANIFEST_KEYS)),
        ("lens-bank.md", "Shard tensors", ["states", "scale"]),
        ("lens-neighbors.md", "Columns", list(neighbors.NEIGHBOR_COLUMNS)),
        ("lens-exports.md", "LatentLens top level", list(exports.CONTEXTUAL_KEYS)),
        ("lens-exports.md", "LatentLens `results[]`", list(exports.RESULT_KEYS)),
        ("lens-exports.md", "LatentLens `patches[]`", list(exports.PATCH_KEYS)),
        (
            "lens-exports.md",
            "LatentLens `nearest_contextual_neighbors[]`",
            list(exports.NEIGHBOR_KEYS),
        ),
        ("lens-exports.md", "LogitLens top level", list(exports.LOGIT_KEYS)),
        ("lens-exports.md", "LogitLens `top_predictions[]`", list(exports.PREDICTION_KEYS)),
        ("lens-exports.md", "EmbeddingLens top level", list(exports.EMBEDDING_KEYS)),
        (
            "lens-exports.md",
            "EmbeddingLens `nearest_neighbors[]`",
            list(exports.EMBEDDING_NEIGHBOR_KEYS),
        ),
        ("lens-sample.md", "Legacy `instances[]`", [*sample.INSTANCE_KEYS, *sample.EXTRA_KEYS]),
        ("lens-sample.md", "`neighbors[]`", list(sample.NEIGHBOR_KEYS)),
        ("lens-sample.md", "All-visual-layers file", list(sample.ALL_LAYERS_INSTANCE_KEYS)),
        ("lens-outputs.md", "`run.json` — schema version 1", list(run.RUN_KEYS)),
        ("lens-outputs.md", "`layer_alignment.csv`", list(alignment.ALIGNMENT_COLUMNS)),
        ("lens-outputs.md", "`rates_<source>.csv`", list(rates.RATE_COLUMNS)),
    ],
)
def test_doc_fields_match_code(doc: str, heading: str, names: list[str]) -> None:
    assert table_names(doc, heading) == names


def test_written_files_use_the_documented_keys(tmp_path: Path) -> None:
    """A manifest written by build_bank has exactly the documented keys, in order."""
    from vislens.lens.textmodel import load_bank_model

    bank.build_bank(
        ["a red circle in row 1, column 2; a blue square in row 3, column 4."],
        tmp_path / "b",
        load_bank_model("toy"),
        layers=[1],
        progress=False,
    )
    manifest = json.loads((tmp_path / "b" / "bank.json").read_text())
    assert tuple(manifest) == bank.MANIFEST_KEYS
    import pandas as pd

    assert (
        tuple(pd.read_parquet(tmp_path / "b" / "metadata.parquet").columns) == bank.METADATA_COLUMNS
    )


def test_background_words_are_documented() -> None:
    text = (DOCS / "lens-outputs.md").read_text(encoding="utf-8")
    for w in rates.BACKGROUND_WORDS:
        assert f"`{w}`" in text
