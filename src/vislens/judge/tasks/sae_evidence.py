"""What the labelling judge sees about each SAE feature, read from a study's SAE outputs.

Reads ``sae/<name>/topk.parquet`` (top items per feature), ``scores.parquet`` (MS, best
rating correlation, tier), ``correlations.parquet`` (every rating, when a rating is named)
and, for spatial SAEs, the code store's per-patch values to draw each image's heatmap
(formats: docs/formats/sae-*.md). Images come from the study's ``images.parquet``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from vislens.errors import InputError
from vislens.judge.tasks.label import FeatureEvidence
from vislens.study import Study


def _heatmap(codes: Any, item_index: int, feature: int) -> np.ndarray | None:
    """The feature's value on each patch of one item, ``[grid_h, grid_w]``; None if not spatial."""
    info = codes.info
    n_grid = info.grid_h * info.grid_w
    if info.tokens not in ("patches", "all") or n_grid <= 1:
        return None
    rows = codes.item_rows(item_index)
    first = info.n_prefix_tokens if info.tokens == "all" else 0
    heat = np.zeros(n_grid, dtype=np.float32)
    for t, (feats, vals) in enumerate(rows[first : first + n_grid]):
        hit = vals[feats == feature]
        if hit.size:
            heat[t] = float(hit[0])
    return heat.reshape(info.grid_h, info.grid_w)


def _num(row: dict[str, Any] | None, key: str) -> float | None:
    """A finite number from a scores row, or None (missing row, column or NaN)."""
    if row is None or row.get(key) is None:
        return None
    v = float(row[key])
    return None if math.isnan(v) else v


def select_features(
    scores: Any, topk: Any, *, tier: int | None, features: list[int] | None, limit: int | None
) -> list[int]:
    """Features to label: the given list, else those of ``tier`` (strongest MS first), else all with top items."""
    if features:
        chosen = list(features)
    elif tier is not None:
        if scores is None:
            raise InputError(
                "--tier needs scores.parquet — run `vislens sae score` first, or pass --features"
            )
        sel = scores[scores["tier"] == tier].sort_values("ms", ascending=False, na_position="last")
        chosen = [int(f) for f in sel["feature"]]
        if not chosen:
            raise InputError(f"no feature is in tier {tier}; see scores.parquet's 'tier' column")
    else:
        chosen = sorted({int(f) for f in topk["feature"]})
    return chosen[:limit] if limit is not None else chosen


def load_evidence(
    study: Study,
    sae: str,
    *,
    tier: int | None = None,
    features: list[int] | None = None,
    n_images: int = 9,
    rating_dim: str | None = None,
    limit: int | None = None,
) -> list[FeatureEvidence]:
    """One ``FeatureEvidence`` per selected feature of ``study``'s SAE ``sae``."""
    import pandas as pd

    from vislens.data.sources import load_image
    from vislens.data.table import read_records
    from vislens.sae.scoring import CORRELATIONS_FILE, SCORES_FILE
    from vislens.sae.top_items import TOPK_FILE

    sae_dir = Path(study.sae_dir(sae))
    if not (sae_dir / TOPK_FILE).is_file():
        raise InputError(
            f"{sae_dir / TOPK_FILE}: no top items — run `vislens sae topk` for SAE '{sae}' first"
        )
    topk = pd.read_parquet(sae_dir / TOPK_FILE)
    scores = pd.read_parquet(sae_dir / SCORES_FILE) if (sae_dir / SCORES_FILE).is_file() else None
    corr = None
    if rating_dim is not None:
        if not (sae_dir / CORRELATIONS_FILE).is_file():
            raise InputError(
                f"{sae_dir / CORRELATIONS_FILE}: no correlations — score the SAE with ratings first"
            )
        corr = pd.read_parquet(sae_dir / CORRELATIONS_FILE)
        if rating_dim not in set(corr["rating"]):
            raise InputError(
                f"rating '{rating_dim}' not in {sae_dir / CORRELATIONS_FILE} "
                f"(ratings: {', '.join(sorted(map(str, set(corr['rating']))))})"
            )
    chosen = select_features(scores, topk, tier=tier, features=features, limit=limit)
    records = {r.item_id: r for r in read_records(study.images_path)}
    codes = None
    try:
        from vislens.sae.runs import open_codes

        codes = open_codes(study, sae)
    except (InputError, OSError):
        codes = None  # no code store: grids without heatmaps
    by_feature: dict[int, Any] = {
        int(str(f)): g.sort_values("rank") for f, g in topk.groupby("feature")
    }
    score_rows: dict[int, dict[str, Any]] = (
        {int(r["feature"]): {str(k): v for k, v in r.items()} for r in scores.to_dict("records")}
        if scores is not None
        else {}
    )
    out = []
    for f in chosen:
        top = by_feature.get(f)
        if top is None or top.empty:
            raise InputError(
                f"feature {f} has no top items in {sae_dir / TOPK_FILE} (dead feature?)"
            )
        top = top.head(n_images)
        images, heatmaps = [], []
        for row in top.to_dict("records"):
            rec = records.get(str(row["item_id"]))
            if rec is None:
                raise InputError(
                    f"{study.images_path}: no item '{row['item_id']}' (named by {TOPK_FILE})"
                )
            images.append(load_image(rec))
            heatmaps.append(
                _heatmap(codes, int(row["item_index"]), f) if codes is not None else None
            )
        s = score_rows.get(f)
        ms = _num(s, "ms")
        if corr is not None:
            c = corr[(corr["feature"] == f) & (corr["rating"] == rating_dim)]
            r_val = float(c["r"].iloc[0]) if len(c) else None
            dim: str | None = rating_dim
        else:
            r_val = _num(s, "r")
            dim = (str(s.get("best_rating") or "") or None) if s is not None else None
        tier_num = _num(s, "tier")
        tier_val = None if tier_num is None else int(tier_num)
        out.append(
            FeatureEvidence(f, images, heatmaps, ms=ms, corr=r_val, rating_dim=dim, tier=tier_val)
        )
    return out
