"""Which heads tell TP from FN, and which heads look where the answer is (pure statistics).

Head ranking (seed 004's stage 4): for every head and feature, the feature's values on
true-positive presence cases against false-negative ones — Mann–Whitney U
(``scipy.stats.mannwhitneyu``, two-sided), the rank-biserial correlation
``r = 2 U_TP / (n_TP n_FN) - 1`` (positive: larger in TP) and Cohen's d with the pooled
standard deviation. p-values are corrected across heads, per feature, with
Benjamini–Hochberg (``multipletests(method="fdr_bh")``) and, because heads are not
independent, with Benjamini–Yekutieli (``fdr_by``) as a check. With fewer than
``min_per_group`` cases on either side no test is run: the ranking says so instead of
ranking noise.

Localisation: per layer and head (and the head mean), how often the most-attended cell
is one of the question's evidence cells (``QA.evidence``), against chance
``|evidence| / cells``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

RANKING_COLUMNS: tuple[str, ...] = (
    "feature",
    "rank",
    "layer",
    "head",
    "n_tp",
    "n_fn",
    "mean_tp",
    "mean_fn",
    "u_statistic",
    "p_value",
    "q_bh",
    "q_by",
    "significant_bh",
    "rank_biserial",
    "cohens_d",
)
LOCALISATION_COLUMNS: tuple[str, ...] = (
    "kind",
    "layer",
    "head",
    "n_cases",
    "n_hits",
    "accuracy",
    "chance",
)
MEAN_HEAD = -1
"""``head`` value of the head-mean map's row in the localisation table."""


def cohens_d(x: np.ndarray, y: np.ndarray) -> float:
    """(mean x - mean y) / pooled standard deviation (ddof 1); NaN when it is zero."""
    nx, ny = len(x), len(y)
    pooled = ((nx - 1) * np.var(x, ddof=1) + (ny - 1) * np.var(y, ddof=1)) / (nx + ny - 2)
    return float((np.mean(x) - np.mean(y)) / np.sqrt(pooled)) if pooled > 0 else float("nan")


def rank_heads(
    features: pd.DataFrame,
    feature_names: tuple[str, ...],
    *,
    min_per_group: int = 5,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(rankings, status)`` from per-head-per-case rows with ``outcome`` TP / FN.

    ``status`` is ``{"status": "ok" | "too_few_cases", "n_tp", "n_fn", "min_per_group",
    "message"}``; with too few cases the table is empty (columns kept).
    """
    sub = features[features["outcome"].isin(["TP", "FN"])]
    case_outcome = sub.drop_duplicates("case_id").set_index("case_id")["outcome"]
    n_tp = int((case_outcome == "TP").sum())
    n_fn = int((case_outcome == "FN").sum())
    status: dict[str, Any] = {"n_tp": n_tp, "n_fn": n_fn, "min_per_group": min_per_group}
    if min(n_tp, n_fn) < min_per_group:
        status |= {
            "status": "too_few_cases",
            "message": (
                f"{n_tp} TP and {n_fn} FN presence cases; a TP-vs-FN test needs at least "
                f"{min_per_group} of each, so no head ranking was computed"
            ),
        }
        return pd.DataFrame(columns=list(RANKING_COLUMNS)), status
    rows = []
    for feature in feature_names:
        part = []
        for (layer, head), g in sub.groupby(["layer", "head"], sort=True):
            tp = g.loc[g["outcome"] == "TP", feature].to_numpy(np.float64)
            fn = g.loc[g["outcome"] == "FN", feature].to_numpy(np.float64)
            tp, fn = tp[np.isfinite(tp)], fn[np.isfinite(fn)]
            if min(len(tp), len(fn)) < min_per_group:
                continue
            res = mannwhitneyu(tp, fn, alternative="two-sided")
            u = float(res.statistic)
            part.append(
                {
                    "feature": feature,
                    "layer": int(layer),  # type: ignore[call-overload]
                    "head": int(head),  # type: ignore[call-overload]
                    "n_tp": len(tp),
                    "n_fn": len(fn),
                    "mean_tp": float(tp.mean()),
                    "mean_fn": float(fn.mean()),
                    "u_statistic": u,
                    "p_value": float(res.pvalue),
                    "rank_biserial": 2.0 * u / (len(tp) * len(fn)) - 1.0,
                    "cohens_d": cohens_d(tp, fn),
                }
            )
        if not part:
            continue
        p = np.array([r["p_value"] for r in part])
        p = np.where(np.isfinite(p), p, 1.0)  # all-tied heads: scipy gives NaN; nothing to find
        rej, q_bh, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
        _, q_by, _, _ = multipletests(p, alpha=alpha, method="fdr_by")
        for r, qb, qy, sig in zip(part, q_bh, q_by, rej, strict=True):
            r.update(q_bh=float(qb), q_by=float(qy), significant_bh=bool(sig))
        part.sort(key=lambda r: (r["p_value"], -abs(r["rank_biserial"]), r["layer"], r["head"]))
        for i, r in enumerate(part, start=1):
            r["rank"] = i
        rows.extend(part)
    table = pd.DataFrame(rows, columns=list(RANKING_COLUMNS))
    n_sig = int(table["significant_bh"].sum()) if len(table) else 0
    status |= {
        "status": "ok",
        "message": f"{n_tp} TP vs {n_fn} FN; {n_sig} head-feature pairs significant at BH q < {alpha}",
    }
    return table, status


def localisation_table(features: pd.DataFrame, mean_rows: pd.DataFrame) -> pd.DataFrame:
    """Per kind (and ``all``), layer and head: how often the argmax cell is an evidence cell.

    ``features`` and ``mean_rows`` (the head-mean maps, ``head == MEAN_HEAD``) need
    ``kind``, ``layer``, ``head``, ``n_evidence``, ``argmax_in_evidence`` and the grid size
    in ``n_cells``; cases without evidence cells are left out.
    """
    both = pd.concat([features, mean_rows], ignore_index=True)
    both = both[both["n_evidence"] > 0]
    rows = []
    for kind, part in [("all", both), *both.groupby("kind", sort=True)]:
        for (layer, head), g in part.groupby(["layer", "head"], sort=True):
            hits = int(g["argmax_in_evidence"].sum())
            rows.append(
                {
                    "kind": kind,
                    "layer": int(layer),
                    "head": int(head),
                    "n_cases": len(g),
                    "n_hits": hits,
                    "accuracy": hits / len(g),
                    "chance": float((g["n_evidence"] / g["n_cells"]).mean()),
                }
            )
    return pd.DataFrame(rows, columns=list(LOCALISATION_COLUMNS))
