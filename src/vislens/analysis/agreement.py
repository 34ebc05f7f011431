"""Agreement between raters: every number is a library call (scikit-learn, scipy,
statsmodels, krippendorff); this module only prepares inputs and names degenerate cases.

A statistic that is not defined for the data (one class only, constant ratings, no items
in common) is reported as ``None`` with the reason under ``undefined[<name>]`` — never as a
crash, and never as the silent 0 some libraries return (``matthews_corrcoef`` does).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

Report = dict[str, Any]


CORRELATION_FIELDS = (
    "pearson_r",
    "pearson_p",
    "spearman_r",
    "spearman_p",
    "pearson_ci",
    "spearman_ci",
)
"""Keys that ``correlations`` fills (or marks undefined, with the reason)."""


def mark_undefined(report: Report, name: str, reason: str) -> None:
    """Record that statistic ``name`` is not defined for this data, and why."""
    report[name] = None
    report.setdefault("undefined", {})[name] = reason


def _call(fn: Callable[[], Any]) -> tuple[Any, str | None]:
    """Run a library call; a warning or error it raises becomes the reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return fn(), None
        except (Warning, ValueError, ZeroDivisionError) as e:
            return None, str(e) or type(e).__name__


def _finite(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


def confusion(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, int]:
    """tp, tn, fp, fn for 0/1 labels (1 = positive), from scikit-learn's confusion matrix."""
    from sklearn.metrics import confusion_matrix

    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tp": int(tp), "tn": int(tn), "fp": int(fp), "fn": int(fn)}


def bootstrap_ci(
    x: Any,
    y: Any,
    statistic: Callable[[Any, Any], float],
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of a paired statistic (scipy.stats.bootstrap); None if
    resamples make it undefined (e.g. a resample with constant ratings)."""
    from scipy.stats import bootstrap

    res, _ = _call(
        lambda: bootstrap(
            (np.asarray(x, float), np.asarray(y, float)),
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
    )
    if res is None:
        return None
    lo, hi = _finite(res.confidence_interval.low), _finite(res.confidence_interval.high)
    return None if lo is None or hi is None else (lo, hi)


def _pearson(x: Any, y: Any) -> float:
    from scipy.stats import pearsonr

    return float(pearsonr(x, y).statistic)


def _spearman(x: Any, y: Any) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def correlations(
    x: Any, y: Any, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Report:
    """pearson_r/p and spearman_r/p (scipy) with bootstrap CIs ``pearson_ci``/``spearman_ci``."""
    from scipy.stats import pearsonr, spearmanr

    out: Report = {}
    x_arr, y_arr = np.asarray(x, float), np.asarray(y, float)
    if len(x_arr) < 3:
        for k in CORRELATION_FIELDS:
            mark_undefined(out, k, f"needs at least 3 paired items, got {len(x_arr)}")
        return out
    if np.ptp(x_arr) == 0 or np.ptp(y_arr) == 0:
        which = "first" if np.ptp(x_arr) == 0 else "second"
        for k in CORRELATION_FIELDS:
            mark_undefined(out, k, f"the {which} rater gives every item the same value")
        return out
    for name, fn, stat in (("pearson", pearsonr, _pearson), ("spearman", spearmanr, _spearman)):
        res = fn(x_arr, y_arr)
        out[f"{name}_r"], out[f"{name}_p"] = float(res.statistic), float(res.pvalue)
        ci = bootstrap_ci(
            x_arr, y_arr, stat, n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        if ci is None:
            mark_undefined(out, f"{name}_ci", "some bootstrap resamples have constant ratings")
        else:
            out[f"{name}_ci"] = list(ci)
    return out


def pair_agreement(
    a: Any,
    b: Any,
    *,
    labels: Sequence[Any] | None = None,
    positive: Any = 1,
    ordered: bool = False,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Report:
    """Agreement of rater ``b`` with reference rater ``a`` on the same items, in order.

    Always: n, accuracy, balanced_accuracy, cohens_kappa, mcc (= phi for two classes).
    For two classes (``labels`` of length 2, ``positive`` the positive one): tp, tn, fp, fn,
    phi, and Pearson/Spearman on the 0/1 codes with bootstrap CIs. For more classes:
    the confusion matrix, and with ``ordered`` (``labels`` low to high) Pearson/Spearman
    on the classes' ranks.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        matthews_corrcoef,
    )

    a_list, b_list = list(a), list(b)
    if len(a_list) != len(b_list):
        raise ValueError(
            f"raters have {len(a_list)} and {len(b_list)} ratings; pair them by item first"
        )
    labels = list(labels) if labels is not None else sorted(set(a_list) | set(b_list), key=str)
    out: Report = {"n": len(a_list)}
    if not a_list:
        for k in ("accuracy", "balanced_accuracy", "cohens_kappa", "mcc"):
            mark_undefined(out, k, "the raters have no items in common")
        return out
    out["accuracy"] = float(accuracy_score(a_list, b_list))
    if len(set(a_list)) < 2:
        mark_undefined(
            out, "balanced_accuracy", f"the reference rater uses one class only ({a_list[0]!r})"
        )
    else:
        out["balanced_accuracy"] = float(balanced_accuracy_score(a_list, b_list))
    kappa, why = _call(lambda: cohen_kappa_score(a_list, b_list, labels=labels))
    if kappa is None or _finite(kappa) is None:
        mark_undefined(
            out,
            "cohens_kappa",
            why or "both raters use the same single class (chance agreement is 1)",
        )
    else:
        out["cohens_kappa"] = float(kappa)
    if len(set(a_list)) < 2 or len(set(b_list)) < 2:
        who = "reference" if len(set(a_list)) < 2 else "second"
        mark_undefined(
            out, "mcc", f"the {who} rater uses one class only, so the correlation is 0/0"
        )
    else:
        out["mcc"] = float(matthews_corrcoef(a_list, b_list))
    if len(labels) == 2:
        a01 = [int(v == positive) for v in a_list]
        b01 = [int(v == positive) for v in b_list]
        out.update(confusion(a01, b01))
        if out.get("mcc") is None:
            mark_undefined(out, "phi", out["undefined"]["mcc"])
        else:
            out["phi"] = out["mcc"]
        corr = correlations(a01, b01, n_resamples=n_resamples, confidence=confidence, seed=seed)
        out.setdefault("undefined", {}).update(corr.pop("undefined", {}))
        out.update(corr)
        if not out["undefined"]:
            del out["undefined"]
    else:
        from sklearn.metrics import confusion_matrix

        out["labels"] = labels
        out["confusion"] = confusion_matrix(a_list, b_list, labels=labels).tolist()
        if ordered:
            rank = {v: i for i, v in enumerate(labels)}
            corr = correlations(
                [rank[v] for v in a_list],
                [rank[v] for v in b_list],
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
            out.setdefault("undefined", {}).update(corr.pop("undefined", {}))
            out.update(corr)
            if not out["undefined"]:
                del out["undefined"]
    return out


def wide_ratings(
    long: pd.DataFrame, item: str = "item_id", rater: str = "annotator", value: str = "value"
) -> pd.DataFrame:
    """items × raters table (NaN where a rater did not rate an item) from long rows."""
    if long.duplicated([item, rater]).any():
        dup = long[long.duplicated([item, rater])].iloc[0]
        raise ValueError(
            f"rater {dup[rater]!r} rated item {dup[item]!r} twice; keep one rating per pair"
        )
    return long.pivot(index=item, columns=rater, values=value)


def fleiss_kappa(wide: pd.DataFrame) -> Report:
    """Fleiss' kappa (statsmodels) over the items every rater rated."""
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    out: Report = {"n_raters": int(wide.shape[1])}
    full = wide.dropna()
    out["n_items"] = len(full)
    if wide.shape[1] < 2:
        mark_undefined(out, "fleiss_kappa", "needs at least two raters")
    elif len(full) == 0:
        mark_undefined(out, "fleiss_kappa", "no item was rated by every rater")
    else:
        codes = full.apply(lambda col: col.map(str)).to_numpy()
        table, _ = aggregate_raters(codes)
        value, why = _call(lambda: sm_fleiss(table))
        if value is None or _finite(value) is None:
            mark_undefined(
                out, "fleiss_kappa", why or "every rating is the same class (chance agreement is 1)"
            )
        else:
            out["fleiss_kappa"] = float(value)
    return out


def krippendorff_alpha(
    wide: pd.DataFrame,
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
    order: Sequence[Any] | None = None,
) -> Report:
    """Krippendorff's alpha (krippendorff package); missing ratings are allowed. Nominal and
    ordinal categories are coded by ``order`` (low to high) or sorted by their text."""
    import krippendorff

    out: Report = {"n_raters": int(wide.shape[1]), "n_items": len(wide), "level": level}
    if level in ("nominal", "ordinal"):
        seen = {str(v) for v in np.ravel(wide.to_numpy()) if not pd.isna(v)}
        cats = [str(v) for v in order] if order is not None else sorted(seen)
        if not seen <= set(cats):
            raise ValueError(
                f"ratings {sorted(seen - set(cats))} are not in the given order {cats}"
            )
        codes = wide.apply(
            lambda col: col.map(lambda v: np.nan if pd.isna(v) else cats.index(str(v)))
        )
    else:
        codes = wide.astype(float)
    data = codes.to_numpy(dtype=float).T  # raters × items
    value, why = _call(
        lambda: krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    )
    if value is None or _finite(value) is None:
        mark_undefined(
            out,
            "krippendorff_alpha",
            why or "no pairable ratings (every item has at most one rating)",
        )
    else:
        out["krippendorff_alpha"] = float(value)
    return out


AGGREGATION_RULES = ("share", "plurality")
"""How several annotators' answers to one item become one answer (``aggregate``)."""

DEFAULT_RULE = "share"
"""LatentLens' rule, the default everywhere."""


def majority_vote(wide: pd.DataFrame, threshold: float = 0.5) -> tuple[pd.Series, list[str]]:
    """The ``plurality`` rule: per item, the single most common rating if its share of the
    item's ratings is at least ``threshold`` (pandas ``value_counts``). Items where two
    ratings tie for most common, or the top rating's share is below ``threshold``, have no
    majority and are returned apart (so a 1–1 split is dropped at any threshold)."""
    winners: dict[Any, Any] = {}
    dropped: list[str] = []
    for item_id, row in wide.iterrows():
        counts = row.dropna().map(str).value_counts()
        if counts.empty:
            continue
        top = counts.index[0]
        tie = len(counts) > 1 and counts.iloc[1] == counts.iloc[0]
        if counts.iloc[0] / counts.sum() >= threshold and not tie:
            original = next(v for v in row.dropna() if str(v) == top)
            winners[item_id] = original
        else:
            dropped.append(str(item_id))
    return pd.Series(winners, dtype=object), dropped


def share_vote(
    wide: pd.DataFrame, threshold: float = 0.5, *, order: Sequence[Any]
) -> tuple[pd.Series, list[str]]:
    """The ``share`` rule (LatentLens' human-study rule, generalised to ordered answers):
    per item, the highest answer ``v`` in ``order`` (low to high) such that at least
    ``threshold`` of the item's annotators answered ``v`` or higher.

    With two answers ``order = [negative, positive]`` this is LatentLens' "interpretable if
    at least ``threshold`` of the annotators selected a word, else not": a 1–1 split at 0.5
    counts as positive. The lowest answer always qualifies, so every rated item gets a value
    and the second list (items without one) is always empty; it is returned for symmetry
    with ``majority_vote``."""
    order = list(order)

    def _rank(item_id: Any, v: Any) -> int:
        # by equality, so the 1.0 of a float column is the answer 1
        for i, o in enumerate(order):
            if v == o or str(v) == str(o):
                return i
        raise ValueError(f"item {item_id!r}: answer {v!r} is not one of {order}")

    winners: dict[Any, Any] = {}
    for item_id, row in wide.iterrows():
        given = list(row.dropna())
        if not given:
            continue
        ranks = np.array([_rank(item_id, g) for g in given])
        best = 0
        for r in range(len(order) - 1, -1, -1):
            if (ranks >= r).mean() >= threshold:
                best = r
                break
        winners[item_id] = order[best]
    return pd.Series(winners, dtype=object), []


def aggregate(
    wide: pd.DataFrame,
    *,
    rule: str = DEFAULT_RULE,
    threshold: float = 0.5,
    order: Sequence[Any] | None = None,
) -> tuple[pd.Series, list[str]]:
    """One answer per item from an items × annotators table: ``(answers, no_majority)``.

    ``share`` (default): ``share_vote`` — needs ``order`` (answers low to high; for two
    classes ``[negative, positive]``). ``plurality``: ``majority_vote``. ``threshold`` must
    be in (0, 1]."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if rule == "plurality":
        return majority_vote(wide, threshold)
    if rule == "share":
        if order is None:
            raise ValueError("the share rule needs the answers' order (low to high)")
        return share_vote(wide, threshold, order=order)
    raise ValueError(
        f"unknown aggregation rule {rule!r}; use one of {', '.join(AGGREGATION_RULES)}"
    )


def per_group(a: pd.Series, b: pd.Series, groups: pd.Series, **kwargs: Any) -> dict[str, Report]:
    """``pair_agreement`` within each group (e.g. per model); series share one index."""
    out: dict[str, Report] = {}
    for g in sorted(groups.dropna().unique(), key=str):
        idx = groups.index[groups == g]
        out[str(g)] = pair_agreement(a.loc[idx], b.loc[idx], **kwargs)
    return out


def disagreements(a: pd.Series, b: pd.Series) -> list[Any]:
    """Index labels of the items where the two raters differ (both rated)."""
    both = a.index.intersection(b.index)
    return [i for i in both if str(a.loc[i]) != str(b.loc[i])]


def pairwise_cohen(wide: pd.DataFrame) -> dict[str, Report]:
    """Cohen's kappa and accuracy for every pair of raters, on the items both rated."""
    out: dict[str, Report] = {}
    cols = list(wide.columns)
    for i, r1 in enumerate(cols):
        for r2 in cols[i + 1 :]:
            both = wide[[r1, r2]].dropna()
            labels = sorted({str(v) for v in np.ravel(wide.to_numpy()) if not pd.isna(v)})
            rep = pair_agreement(
                both[r1].map(str), both[r2].map(str), labels=labels if len(labels) > 2 else None
            )
            out[f"{r1} vs {r2}"] = {
                k: rep[k] for k in ("n", "accuracy", "cohens_kappa", "undefined") if k in rep
            }
    return out
