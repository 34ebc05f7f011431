"""Score every feature of an encoded SAE: monosemanticity, correlation with ratings, tier.

Writes (docs/formats/sae-scores.md) ``scores.parquet`` — one row per feature —,
``correlations.parquet`` — one row per feature × rating — and ``calibration.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vislens.analysis.correlation import best_per_feature, correlation_table
from vislens.analysis.monosemanticity import (
    Calibration,
    calibrate,
    monosemanticity,
    monosemanticity_topn,
)
from vislens.analysis.tiers import TierThresholds, assign_tiers
from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic
from vislens.store.codes import CodesStore, Reduce

SCORES_FILE = "scores.parquet"
CORRELATIONS_FILE = "correlations.parquet"
CALIBRATION_FILE = "calibration.json"
SCORES_SCHEMA_VERSION = 1
SCORES_COLUMNS = ("feature", "n_active", "status", "ms", "ms_topn", "ms_band", "best_rating", "r", "p", "q",
                  "significant", "tier")  # fmt: skip
CORRELATION_COLUMNS = ("feature", "rating", "n", "r", "p", "q", "significant")


@dataclass
class ScoreResult:
    scores: pd.DataFrame
    correlations: pd.DataFrame | None
    calibration: Calibration | None


def score_features(
    codes: CodesStore,
    *,
    embeddings: np.ndarray | None = None,
    ratings: pd.DataFrame | None = None,
    top_items: pd.DataFrame | None = None,
    reduce: Reduce | None = None,
    top_n: int = 20,
    alpha: float = 0.05,
    spearman: bool = False,
    thresholds: TierThresholds | None = None,
    calibrated_thresholds: bool = False,
    n_pairs: int = 50_000,
    seed: int = 0,
) -> ScoreResult:
    """Scores for every feature. ``embeddings`` rows follow ``codes.item_ids``; ``ratings`` is
    indexed by item_id (see ``read_ratings``); ``top_items`` is the top-k table (for ms_topn)."""
    x = codes.item_matrix(reduce)
    n_f = codes.info.d_sae
    n_active = np.bincount(x.indices[x.data != 0], minlength=n_f).astype(np.int64)
    df = pd.DataFrame({"feature": np.arange(n_f, dtype=np.int32), "n_active": n_active})
    df["status"] = np.where(n_active == 0, "dead", "ok")
    df["ms"] = np.nan
    df["ms_topn"] = np.nan
    df["ms_band"] = "undefined"
    cal = None
    if embeddings is not None:
        if embeddings.shape[0] != codes.n_items:
            raise InputError(f"{embeddings.shape[0]} embeddings for {codes.n_items} encoded items")
        res = monosemanticity(x, embeddings)
        df["ms"], df["status"] = res.ms, res.status
        cal = calibrate(embeddings, n_pairs=n_pairs, seed=seed)
        df["ms_band"] = cal.band(res.ms)
        if top_items is not None and len(top_items):
            t = top_items[top_items["rank"] < top_n]
            df["ms_topn"] = monosemanticity_topn(
                t["feature"].to_numpy(),
                t["item_index"].to_numpy(),
                t["value"].to_numpy(),
                embeddings,
                n_f,
            ).ms
    corr = None
    if ratings is not None:
        pos = {item_id: i for i, item_id in enumerate(codes.item_ids)}
        rows = np.array([pos[i] for i in ratings.index], dtype=np.int64)
        corr = correlation_table(x[rows], ratings, alpha=alpha, spearman=spearman)
        best = best_per_feature(corr, n_f)
        for col in ("best_rating", "r", "p", "q", "significant"):
            df[col] = best[col].to_numpy()
    else:
        df["best_rating"] = ""
        df["r"] = df["p"] = df["q"] = np.nan
        df["significant"] = False
    th = thresholds or TierThresholds()
    if calibrated_thresholds and cal is not None:
        th = TierThresholds(ms_high=cal.monosemantic, ms_low=cal.moderate, r_high=th.r_high, r_low=th.r_low,
                            n_tier3=th.n_tier3)  # fmt: skip
    df["tier"] = assign_tiers(df["ms"].to_numpy(), df["r"].abs().to_numpy(), th)
    df["significant"] = df["significant"].astype(bool)
    return ScoreResult(df[list(SCORES_COLUMNS)], corr, cal)


def _write_table(df: pd.DataFrame, path: Path, meta: dict[str, str]) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    md = {
        **(table.schema.metadata or {}),
        **{f"vislens.{k}".encode(): v.encode() for k, v in meta.items()},
    }
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(md), tmp)


def write_scores(result: ScoreResult, out_dir: Path, *, settings: dict[str, object]) -> list[Path]:
    """Write scores.parquet, correlations.parquet (if ratings) and calibration.json (if MS)."""
    out_dir = Path(out_dir)
    meta = {
        "schema_version": str(SCORES_SCHEMA_VERSION),
        "settings": repr(sorted(settings.items())),
    }
    written = [out_dir / SCORES_FILE]
    _write_table(result.scores, out_dir / SCORES_FILE, meta)
    if result.correlations is not None:
        _write_table(result.correlations, out_dir / CORRELATIONS_FILE, meta)
        written.append(out_dir / CORRELATIONS_FILE)
    if result.calibration is not None:
        cal = result.calibration
        write_json_atomic(
            out_dir / CALIBRATION_FILE,
            asdict(cal)
            | {
                "moderate": cal.moderate,
                "monosemantic": cal.monosemantic,
                "schema_version": SCORES_SCHEMA_VERSION,
            },
        )
        written.append(out_dir / CALIBRATION_FILE)
    return written
