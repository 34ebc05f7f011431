"""What the demo derives from the toy world's truth: ratings and an embedding for MS.

The grid world records every object's shape, colour and cell (``images.parquet``'s
``objects`` column, read by :func:`vislens.sae.groundtruth.read_cell_labels`), so the demo
scores each lens against it instead of a judge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vislens.sae.groundtruth import CONCEPTS, CellLabels


def concept_counts(labels: CellLabels, item_ids: list[str]) -> pd.DataFrame:
    """Per image, how many objects of each colour and each shape (the demo's 'ratings')."""
    data = {f"n_{c}": labels.mask(c).sum(axis=1) for c in CONCEPTS}
    return pd.DataFrame({"item_id": item_ids, **data})


def scene_vectors(labels: CellLabels) -> np.ndarray:
    """Per image, a unit vector of its concept counts and occupied cells.

    The demo's embedding provider for monosemanticity: independent of every model, so the
    top images of a feature look alike under it only if they share colours, shapes or
    places. On scenes of several objects an image-level feature rarely reaches the
    monosemantic band under it (docs/demo.md).
    """
    counts = np.stack([labels.mask(c).sum(axis=1) for c in CONCEPTS], axis=1).astype(np.float64)
    vec = np.concatenate([counts, labels.occupied_nc.astype(np.float64) * 0.5], axis=1)
    return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)


def write_ratings(labels: CellLabels, item_ids: list[str], path: Path) -> Path:
    """The concept counts as a ratings CSV that `vislens sae score --ratings` reads."""
    from vislens.io import atomic_path

    with atomic_path(path) as tmp:
        concept_counts(labels, item_ids).to_csv(tmp, index=False)
    return path


def write_scene_embeddings(labels: CellLabels, item_ids: list[str], path: Path) -> Path:
    """The scene vectors as the Parquet (item_id, embedding) that `--embeddings` reads."""
    from vislens.io import atomic_path

    vec = scene_vectors(labels).astype(np.float32)
    with atomic_path(path) as tmp:
        pd.DataFrame({"item_id": item_ids, "embedding": list(vec)}).to_parquet(tmp, index=False)
    return path
