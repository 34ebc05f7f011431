"""Score SAE features against a world whose concepts are known (the toy grid world).

Each feature is read as a detector of each concept over patch tokens, and scored by AUROC
*among occupied cells*: against all cells an "any object" feature would score ≈ 0.97 for
every colour, because empty cells are easy negatives. A concept is *found* when some
feature reaches ``goal`` (0.95 by default).

Two references say what a feature could reach on the same tokens: a held-out linear probe
per concept (:func:`probe_ceiling`: is the concept linearly there at all?) and the
class-mean direction (:func:`mean_direction_auroc`: the projection on the mean difference
between the concept's cells and the other occupied cells, the direction a feature learnt by
reconstruction tends toward). A concept the probe separates but the mean direction does not
needs an encoder that explains its neighbours away, which a one-layer SAE encoder rarely learns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from vislens.data.synthetic import COLORS, SHAPES
from vislens.errors import InputError

CONCEPTS: tuple[str, ...] = (*COLORS, *SHAPES)
"""The toy world's 11 concepts: six colours, then five shapes."""
AUROC_GOAL = 0.95


@dataclass(frozen=True)
class CellLabels:
    """Per image and cell (row-major): colour / shape index, ``-1`` where the cell is empty."""

    color_nc: np.ndarray
    shape_nc: np.ndarray

    @property
    def occupied_nc(self) -> np.ndarray:
        return self.color_nc >= 0

    def mask(self, concept: str) -> np.ndarray:
        if concept in COLORS:
            return self.color_nc == list(COLORS).index(concept)
        if concept in SHAPES:
            return self.shape_nc == SHAPES.index(concept)
        raise InputError(f"unknown concept '{concept}' (known: {', '.join(CONCEPTS)})")


def read_cell_labels(images_parquet: Path, item_ids: list[str] | None = None) -> CellLabels:
    """The grid world's cell labels from a study's ``images.parquet`` (its ``objects`` column)."""
    df = pd.read_parquet(images_parquet)
    for col in ("item_id", "grid", "objects"):
        if col not in df.columns:
            raise InputError(
                f"{images_parquet}: no column '{col}' — not a synthetic grid-world study"
            )
    if item_ids is not None:
        df = df.set_index(df["item_id"].astype(str)).loc[item_ids].reset_index(drop=True)
    grid = int(df["grid"].iloc[0])
    color = np.full((len(df), grid * grid), -1, np.int64)
    shape = np.full((len(df), grid * grid), -1, np.int64)
    for i, raw in enumerate(df["objects"]):
        for obj in json.loads(raw):
            cell = int(obj["r"]) * grid + int(obj["c"])
            color[i, cell] = list(COLORS).index(obj["color"])
            shape[i, cell] = SHAPES.index(obj["shape"])
    return CellLabels(color, shape)


def auroc_per_column(scores_rf: np.ndarray, positive_r: np.ndarray) -> np.ndarray:
    """AUROC of every column for binary labels, by the Mann–Whitney rank identity (ties
    count one half, as sklearn's ``roc_auc_score``); NaN when a class is empty. One rank
    pass for all columns, which ``roc_auc_score`` would do column by column."""
    pos = np.asarray(positive_r, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return np.full(scores_rf.shape[1], np.nan)
    ranks = rankdata(scores_rf, axis=0)
    return (ranks[pos].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def concept_auroc(
    codes_ncf: np.ndarray, labels: CellLabels, *, concepts: tuple[str, ...] = CONCEPTS,
    goal: float = AUROC_GOAL,
) -> pd.DataFrame:  # fmt: skip
    """Per concept: the best feature, its AUROC among occupied cells, and whether it meets ``goal``.

    ``codes_ncf``: codes per image, cell (row-major patch tokens, no CLS) and feature.
    Columns: ``concept``, ``best_feature``, ``auroc``, ``n_cells``, ``found``.
    """
    n, c, f = codes_ncf.shape
    if (n, c) != labels.color_nc.shape:
        raise InputError(f"codes cover {n} images × {c} cells, labels {labels.color_nc.shape}")
    occ = labels.occupied_nc.reshape(-1)
    scores = np.asarray(codes_ncf, np.float64).reshape(n * c, f)[occ]
    alive = np.flatnonzero(scores.max(axis=0) > 0)  # a never-firing feature scores 0.5
    rows = []
    for concept in concepts:
        m = labels.mask(concept)
        au = auroc_per_column(scores[:, alive], m.reshape(-1)[occ]) if alive.size else np.array([])
        best = int(np.nanargmax(au)) if np.isfinite(au).any() else -1
        a = float(au[best]) if best >= 0 else float("nan")
        rows.append({"concept": concept, "best_feature": int(alive[best]) if best >= 0 else -1,
                     "auroc": a, "n_cells": int(m.sum()), "found": bool(a >= goal)})  # fmt: skip
    return pd.DataFrame(rows)


def _occupied_rows(acts_ncd: np.ndarray, labels: CellLabels) -> tuple[np.ndarray, np.ndarray]:
    n, c, _ = acts_ncd.shape
    if (n, c) != labels.color_nc.shape:
        raise InputError(
            f"activations cover {n} images × {c} cells, labels {labels.color_nc.shape}"
        )
    occ = labels.occupied_nc
    return np.asarray(acts_ncd, np.float64)[occ], occ


def probe_ceiling(
    acts_ncd: np.ndarray, labels: CellLabels, *, train_fraction: float = 0.75,
    concepts: tuple[str, ...] = CONCEPTS,
) -> pd.DataFrame:  # fmt: skip
    """Per concept, the held-out AUROC of a logistic-regression probe among occupied cells.

    The probe is fit on the occupied cells of the first ``train_fraction`` of the images
    (standardised with their statistics) and scored on the rest's: a feature cannot be a
    better linear detector than this. Columns: ``concept``, ``auroc``, ``n_train``, ``n_test``.
    """
    from sklearn.linear_model import LogisticRegression

    n = acts_ncd.shape[0]
    n_train = round(n * train_fraction)
    if not 0 < n_train < n:
        raise InputError(f"train_fraction {train_fraction} leaves no images to fit or to test on")
    x_tr, occ_tr = _occupied_rows(acts_ncd[:n_train], _slice(labels, 0, n_train))
    x_te, occ_te = _occupied_rows(acts_ncd[n_train:], _slice(labels, n_train, n))
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
    rows = []
    for concept in concepts:
        m = labels.mask(concept)
        y_tr, y_te = m[:n_train][occ_tr], m[n_train:][occ_te]
        if y_tr.all() or not y_tr.any():
            a = float("nan")
        else:
            clf = LogisticRegression(max_iter=2000).fit((x_tr - mu) / sd, y_tr)
            a = float(auroc_per_column(clf.decision_function((x_te - mu) / sd)[:, None], y_te)[0])
        rows.append({"concept": concept, "auroc": a, "n_train": len(y_tr), "n_test": len(y_te)})
    return pd.DataFrame(rows)


def mean_direction_auroc(
    acts_ncd: np.ndarray, labels: CellLabels, *, concepts: tuple[str, ...] = CONCEPTS
) -> pd.DataFrame:
    """Per concept, the AUROC among occupied cells of the projection on the class-mean
    difference (the concept's cells' mean minus the other occupied cells' mean), in-sample.
    Columns: ``concept``, ``auroc``."""
    x, occ = _occupied_rows(acts_ncd, labels)
    rows = []
    for concept in concepts:
        y = labels.mask(concept)[occ]
        if y.all() or not y.any():
            a = float("nan")
        else:
            direction = x[y].mean(0) - x[~y].mean(0)
            a = float(auroc_per_column((x @ direction)[:, None], y)[0])
        rows.append({"concept": concept, "auroc": a})
    return pd.DataFrame(rows)


def _slice(labels: CellLabels, start: int, stop: int) -> CellLabels:
    return CellLabels(labels.color_nc[start:stop], labels.shape_nc[start:stop])


def sae_concept_auroc(
    sae: object, patch_acts_ncd: np.ndarray, labels: CellLabels, **kw: object
) -> pd.DataFrame:
    """:func:`concept_auroc` of ``sae`` (a vislens SAE) on patch activations ``[n, cells, d_in]``."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(np.asarray(patch_acts_ncd), dtype=torch.float32)
        codes = sae.encode(x).numpy()  # type: ignore[attr-defined]
    return concept_auroc(codes, labels, **kw)  # type: ignore[arg-type]


def toy_patch_activations(n: int, layer: int, *, seed: int = 0) -> tuple[np.ndarray, CellLabels]:
    """Patch activations ``[n, cells, d]`` of the shipped toy tower at ``layer`` on grid-world
    scenes ``0..n-1`` of ``seed`` (no study needed), with their cell labels."""
    import torch

    from vislens.data.synthetic import WorldSpec, sample_scene
    from vislens.models.vision import load_vision_encoder

    enc = load_vision_encoder("toy", device="cpu")
    spec = WorldSpec()
    cells = spec.grid * spec.grid
    color, shape = np.full((n, cells), -1, np.int64), np.full((n, cells), -1, np.int64)
    images = []
    for i in range(n):
        img, objs = sample_scene(spec, seed, i)
        images.append(img)
        for o in objs:
            color[i, o.r * spec.grid + o.c] = list(COLORS).index(o.color)
            shape[i, o.r * spec.grid + o.c] = SHAPES.index(o.shape)
    pv = enc.preprocess(images)
    with torch.no_grad():
        parts = [enc.residual_stream(pv[s : s + 50], [layer])[layer] for s in range(0, n, 50)]
    acts = torch.cat(parts)
    return acts[:, -cells:].numpy(), CellLabels(color, shape)
