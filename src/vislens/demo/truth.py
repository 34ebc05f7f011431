"""What the toy world knows about each image: cell labels, ratings and an embedding for MS.

The grid world records every object's shape, colour and cell, so the demo can score each
lens against the truth instead of a judge. Everything here reads the study's
``images.parquet`` (its ``objects`` column holds seed 004's object records as JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vislens.data.synthetic import COLORS, SHAPES
from vislens.errors import InputError

CONCEPTS: tuple[str, ...] = (*COLORS, *SHAPES)
"""The 11 concepts the demo scores: six colours, then five shapes."""


@dataclass(frozen=True)
class WorldTruth:
    """Per image and cell: which concept is there (row-major cells, ``-1`` for empty)."""

    item_ids: list[str]
    grid: int
    color_nc: np.ndarray
    """[n_images, grid*grid] index into COLORS, -1 where the cell is empty."""
    shape_nc: np.ndarray
    """[n_images, grid*grid] index into SHAPES, -1 where the cell is empty."""

    @property
    def occupied_nc(self) -> np.ndarray:
        return self.color_nc >= 0

    def concept_mask(self, concept: str) -> np.ndarray:
        """[n_images, cells] True where the cell holds ``concept`` (a colour or a shape)."""
        if concept in COLORS:
            return self.color_nc == list(COLORS).index(concept)
        if concept in SHAPES:
            return self.shape_nc == SHAPES.index(concept)
        raise InputError(f"unknown concept '{concept}' (known: {', '.join(CONCEPTS)})")

    def counts(self) -> pd.DataFrame:
        """Per image, how many objects of each colour and each shape (the demo's 'ratings')."""
        data = {c: self.concept_mask(c).sum(axis=1) for c in CONCEPTS}
        return pd.DataFrame({"item_id": self.item_ids, **{f"n_{k}": v for k, v in data.items()}})

    def scene_vectors(self) -> np.ndarray:
        """Per image, a unit vector of its concept counts and occupied cells.

        The demo's embedding provider for monosemanticity: independent of every model, so a
        feature whose top images share a colour or a shape scores high for that reason alone.
        """
        counts = self.counts().drop(columns="item_id").to_numpy(np.float64)
        vec = np.concatenate([counts, self.occupied_nc.astype(np.float64) * 0.5], axis=1)
        return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


def read_truth(images_parquet: Path) -> WorldTruth:
    """Read a grid-world study's ground truth; errors name the file and the item."""
    df = pd.read_parquet(images_parquet)
    for col in ("item_id", "grid", "objects"):
        if col not in df.columns:
            raise InputError(
                f"{images_parquet}: no column '{col}' — the demo needs a study of the synthetic grid world"
            )
    grids = set(df["grid"].astype(int))
    if len(grids) != 1:
        raise InputError(f"{images_parquet}: images of several grid sizes {sorted(grids)}")
    grid = grids.pop()
    n = len(df)
    color = np.full((n, grid * grid), -1, np.int64)
    shape = np.full((n, grid * grid), -1, np.int64)
    colors = list(COLORS)
    for i, (item, raw) in enumerate(zip(df["item_id"], df["objects"], strict=True)):
        for obj in json.loads(raw):
            try:
                cell = int(obj["r"]) * grid + int(obj["c"])
                color[i, cell] = colors.index(obj["color"])
                shape[i, cell] = SHAPES.index(obj["shape"])
            except (KeyError, ValueError) as e:
                raise InputError(f"{images_parquet}: item '{item}': bad object {obj} ({e})") from e
    return WorldTruth(list(map(str, df["item_id"])), grid, color, shape)


def write_ratings(truth: WorldTruth, path: Path) -> Path:
    """The concept counts as a ratings CSV that `vislens sae score --ratings` reads."""
    from vislens.io import atomic_path

    with atomic_path(path) as tmp:
        truth.counts().to_csv(tmp, index=False)
    return path


def write_scene_embeddings(truth: WorldTruth, path: Path) -> Path:
    """The scene vectors as the Parquet (item_id, embedding) that `--embeddings` reads."""
    from vislens.io import atomic_path

    vec = truth.scene_vectors()
    df = pd.DataFrame({"item_id": truth.item_ids, "embedding": list(vec.astype(np.float32))})
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path
