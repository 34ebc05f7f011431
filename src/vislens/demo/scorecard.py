"""The demo's scorecard: each lens scored against the toy world's ground truth.

Written to ``reports/scorecard.json`` and printed as a table. The SAE section scores every
feature as a detector of each concept by AUROC *among occupied cells*: against all cells an
"any object" feature would score about 0.97 for every colour, since empty cells are easy
negatives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from vislens.demo.truth import CONCEPTS, WorldTruth

AUROC_GOAL = 0.95
"""A concept counts as found when some feature detects it at this AUROC or better."""


def auroc_columns(scores_nf: np.ndarray, positive_n: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``scores_nf`` for the binary labels ``positive_n``.

    The Mann–Whitney identity: AUROC = (R₊ − n₊(n₊+1)/2) / (n₊ n₋) with R₊ the rank sum of
    the positives (ties get average ranks, so a tie counts one half). NaN when one class is
    empty.
    """
    pos = np.asarray(positive_n, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(scores_nf.shape[1], np.nan)
    ranks = rankdata(scores_nf, axis=0)
    r_pos = ranks[pos].sum(axis=0)
    return (r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def concept_aurocs(codes_ncf: np.ndarray, truth: WorldTruth) -> list[dict[str, Any]]:
    """Per concept, the best feature and its AUROC among occupied cells.

    ``codes_ncf``: SAE codes per image, cell (row-major, as the patch tokens) and feature.
    """
    n, c, f = codes_ncf.shape
    if (n, c) != truth.color_nc.shape:
        raise ValueError(f"codes cover {n} images × {c} cells, truth {truth.color_nc.shape}")
    occ = truth.occupied_nc.reshape(-1)
    scores = codes_ncf.reshape(n * c, f)[occ]
    rows = []
    for concept in CONCEPTS:
        au = auroc_columns(scores, truth.concept_mask(concept).reshape(-1)[occ])
        best = int(np.nanargmax(au)) if np.isfinite(au).any() else -1
        rows.append(
            {
                "concept": concept,
                "best_feature": best,
                "auroc": float(au[best]) if best >= 0 else float("nan"),
                "n_cells": int(truth.concept_mask(concept).sum()),
            }
        )
    return rows
