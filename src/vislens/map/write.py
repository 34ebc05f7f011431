"""Writing a map into ``STUDY/map/`` in seed 003's layout (docs/formats/map-cache.md):
``metadata.csv`` (one row per item, shared by every map of the study) and
``<name>_coords.npy`` (float32 ``[n, 2]``, rows paired with metadata.csv), plus
``maps.json`` saying how each coords file was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic

METADATA_FILE = "metadata.csv"
MAPS_FILE = "maps.json"
COORDS_SUFFIX = "_coords.npy"
SCHEMA_VERSION = 1
METADATA_COLUMNS: tuple[str, ...] = ("item_id", "file_name", "split", "width", "height")
"""The first columns of metadata.csv, in order; the image table's other columns follow."""
MAP_ENTRY_KEYS: tuple[str, ...] = (
    "coords_file",
    "source",
    "method",
    "layer",
    "sae",
    "n_items",
    "seed",
)
"""Keys of each entry in maps.json's ``maps``."""


def metadata_table(study: Any, item_ids: list[str]) -> pd.DataFrame:
    """The image table's rows for ``item_ids`` (in that order), with ``file_name`` relative
    to the image source folder when the image lies under it (so the explorer can serve it)."""
    from vislens.app.paths import image_source_root
    from vislens.data.table import read_image_table

    table = read_image_table(study.images_path)
    by_id = table.set_index(table["item_id"].astype(str))
    missing = [i for i in item_ids if i not in by_id.index]
    if missing:
        raise InputError(
            f"{study.images_path}: no row for item {missing[0]!r} ({len(missing)} missing)"
        )
    rows = by_id.loc[item_ids].reset_index(drop=True)
    root = image_source_root(study)
    names = []
    for src in rows["source"].astype(str):
        p = Path(src) if Path(src).is_absolute() else Path(study.root) / src
        if root is not None and p.resolve().is_relative_to(root.resolve()):
            names.append(p.resolve().relative_to(root.resolve()).as_posix())
        else:
            names.append(src)
    rows["file_name"] = names
    rows["item_id"] = rows["item_id"].astype(str)
    first = [c for c in METADATA_COLUMNS if c in rows.columns]
    rest = [c for c in rows.columns if c not in first and c != "source"]
    return rows[first + rest]


def write_map(
    map_dir: Path,
    meta: pd.DataFrame,
    coords_n2: np.ndarray,
    name: str,
    info: dict[str, Any],
    *,
    replace_metadata: bool = False,
) -> Path:
    """Write ``<name>_coords.npy`` (and metadata.csv unless the same rows are there).

    A metadata.csv over other items would unpair the study's other coords files: that is an
    InputError unless ``replace_metadata`` (which then removes them)."""
    map_dir = Path(map_dir)
    map_dir.mkdir(parents=True, exist_ok=True)
    meta_path = map_dir / METADATA_FILE
    maps_path = map_dir / MAPS_FILE
    registry: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "maps": {}}
    if maps_path.is_file():
        registry = json.loads(maps_path.read_text(encoding="utf-8"))
    if meta_path.is_file():
        old_ids = pd.read_csv(meta_path, usecols=["item_id"], dtype=str)["item_id"].tolist()
        if old_ids != meta["item_id"].tolist():
            others = sorted(p.name for p in map_dir.glob(f"*{COORDS_SUFFIX}"))
            if others and not replace_metadata:
                raise InputError(
                    f"{meta_path} lists other items than this map ({len(old_ids)} vs {len(meta)}): "
                    f"writing it would unpair {', '.join(others)} — pass --replace to start the map folder over"
                )
            for other in others:
                (map_dir / other).unlink()
            registry["maps"] = {}
    with atomic_path(meta_path) as tmp:
        meta.to_csv(tmp, index=False)
    coords_path = map_dir / f"{name}{COORDS_SUFFIX}"
    with atomic_path(coords_path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(coords_n2, dtype=np.float32))
    registry["maps"][name] = {"coords_file": coords_path.name, **info, "n_items": len(meta)}
    write_json_atomic(maps_path, registry)
    return coords_path
