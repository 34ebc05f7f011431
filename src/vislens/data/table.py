"""The study's image table, ``images.parquet`` (see docs/formats/study.md).

Columns: item_id, source (absolute path or URL), width, height, split, then every
metadata column of the source (nested values JSON-encoded). Building the table reads
each file's header, so a missing or unreadable image is reported before anything runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from vislens.data.sources import ImageRecord, ImageSource, probe_size, records_from_table
from vislens.errors import InputError
from vislens.io import atomic_path


def build_image_table(source: ImageSource) -> pd.DataFrame:
    """Index a source: one row per image, headers checked."""
    from vislens.progress import track

    records = source.records()
    rows = []
    for rec in track(records, "index images"):
        width, height = probe_size(rec)
        row = {
            "item_id": rec.item_id,
            "source": rec.source,
            "width": width,
            "height": height,
            "split": str(rec.metadata.get("split", "")),
        }
        for k, v in rec.metadata.items():
            if k == "split":
                continue
            row[k] = json.dumps(v) if isinstance(v, (dict, list)) else v
        rows.append(row)
    table = pd.DataFrame(rows)
    if table["item_id"].duplicated().any():
        dup = table.loc[table["item_id"].duplicated(), "item_id"].iloc[0]
        raise InputError(f"image source: item id '{dup}' appears twice")
    return table


def write_image_table(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(Path(path)) as tmp:
        table.to_parquet(tmp, index=False)


def read_image_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no image table — set [images] source in study.toml or run `vislens init --images`"
        )
    return pd.read_parquet(path)


def read_records(path: Path) -> list[ImageRecord]:
    return records_from_table(read_image_table(path))
