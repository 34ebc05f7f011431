"""docs/formats/map-cache.md names exactly the columns and keys the code writes."""

from __future__ import annotations

import re
from pathlib import Path

from vislens.map.write import MAP_ENTRY_KEYS, METADATA_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats" / "map-cache.md"


def table_keys(heading: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    keys, in_table = [], False
    for line in text[text.index(heading) :].splitlines()[1:]:
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m:
            keys.append(m.group(1))
            in_table = True
        elif in_table and not line.startswith("|"):
            break
    return keys


def test_metadata_columns_match_the_code() -> None:
    assert tuple(table_keys("## metadata.csv")) == METADATA_COLUMNS


def test_maps_json_keys_match_the_code() -> None:
    assert tuple(table_keys("## maps.json")) == MAP_ENTRY_KEYS
