"""Correlation of every SAE feature with every human rating, with Benjamini–Hochberg q-values.

Vectorised over all features: for a rating column y (centred, ``yc``) and activations X
(sparse allowed), ``Σ_n (x_n - x̄)(y_n - ȳ) = Xᵀ yc`` because ``yc`` sums to zero, so one
sparse product gives every feature's covariance. Spearman is Pearson on average ranks;
for non-negative sparse codes the ranks of the zeros are one shared value, so the rank
matrix stays sparse after a per-column shift (Pearson is shift-invariant). p-values use
the t distribution with n - 2 degrees of freedom, as ``scipy.stats.pearsonr`` /
``spearmanr`` do; q-values come from statsmodels' ``multipletests(method="fdr_bh")`` over
all feature × rating tests together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats
from statsmodels.stats.multitest import multipletests

from vislens.errors import InputError

CORR_COLUMNS = ("feature", "rating", "n", "r", "p", "q", "significant")


def read_ratings(path: Path, item_ids: list[str], *, id_column: str = "item_id") -> pd.DataFrame:
    """A ratings CSV (``item_id`` + numeric rating columns) aligned to nothing yet; every
    problem is an InputError naming the file, row and column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such ratings file")
    df = pd.read_csv(path, dtype={id_column: str}, keep_default_na=True)
    if id_column not in df.columns:
        raise InputError(f"{path}: no '{id_column}' column (columns: {list(df.columns)})")
    if len(df.columns) < 2:
        raise InputError(f"{path}: needs at least one rating column besides '{id_column}'")
    known = set(item_ids)
    for row, item in enumerate(df[id_column].tolist()):
        if item not in known:
            raise InputError(
                f"{path}: row {row + 2} has item_id '{item}', which is not an item of this study "
                "(check the id column matches images.parquet)"
            )
    dup = df[id_column].duplicated()
    if dup.any():
        row = int(np.argmax(dup.to_numpy()))
        raise InputError(
            f"{path}: row {row + 2}: item_id '{df[id_column].iloc[row]}' appears twice"
        )
    for col in df.columns:
        if col == id_column:
            continue
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() & df[col].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise InputError(
                f"{path}: row {row + 2}, column '{col}': '{df[col].iloc[row]}' is not a number "
                "(leave the cell empty for a missing rating)"
            )
        df[col] = num.astype(np.float64)
    return df.set_index(id_column)


def _as_csc(x) -> sp.csc_matrix:
    m = sp.csc_matrix(x) if not sp.issparse(x) else x.tocsc()
    return m.astype(np.float64)


def _sparse_ranks(x: sp.csc_matrix) -> sp.csc_matrix:
    """Average ranks per column, shifted so the (shared) rank of the zeros is 0.

    Needs non-negative entries; one small ``rankdata`` per column (scipy has no sparse rank).
    """
    x = x.copy()
    x.eliminate_zeros()
    n = x.shape[0]
    data = np.empty_like(x.data)
    for j in range(x.shape[1]):
        a, b = x.indptr[j], x.indptr[j + 1]
        if b == a:
            continue
        n_zero = n - (b - a)
        zero_rank = (n_zero + 1) / 2.0
        data[a:b] = n_zero + stats.rankdata(x.data[a:b]) - zero_rank
    return sp.csc_matrix((data, x.indices, x.indptr), shape=x.shape)


def pearson_matrix(x, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and two-sided p of every column of ``x`` [n, F] with ``y`` [n]; NaN where a
    column is constant."""
    xs = _as_csc(x)
    n = xs.shape[0]
    yc = y - y.mean()
    syy = float(yc @ yc)
    sxy = np.asarray(xs.T @ yc).ravel()
    sx = np.asarray(xs.sum(axis=0)).ravel()
    sx2 = np.asarray(xs.multiply(xs).sum(axis=0)).ravel()
    sxx = sx2 - sx**2 / n
    # a column is constant when its centred sum of squares vanishes next to its raw one
    constant = sxx <= 1e-12 * np.maximum(sx2, 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(constant | (syy <= 0), np.nan, sxy / np.sqrt(np.abs(sxx) * syy))
        r = np.clip(r, -1.0, 1.0)
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r**2, 1e-300))
        p = 2.0 * stats.t.sf(np.abs(t), n - 2)
    return r, p


def correlate(
    x_nf, ratings: pd.DataFrame, *, method: str = "pearson", min_items: int = 3
) -> pd.DataFrame:
    """Long table (feature, rating, n, r, p) for every feature × rating column.

    ``x_nf`` rows are aligned with ``ratings`` rows. Items with a missing rating are left out
    of that rating's tests only.
    """
    if method not in ("pearson", "spearman"):
        raise InputError(f"method must be pearson or spearman (got {method!r})")
    xs = _as_csc(x_nf)
    if xs.shape[0] != len(ratings):
        raise InputError(f"{xs.shape[0]} rows of activations but {len(ratings)} rated items")
    if method == "spearman" and xs.nnz and xs.data.min() < 0:
        raise InputError("spearman on sparse codes needs non-negative activations")
    n_f = xs.shape[1]
    parts = []
    for col in ratings.columns:
        y = ratings[col].to_numpy(dtype=np.float64)
        ok = np.isfinite(y)
        n = int(ok.sum())
        if n < min_items:
            raise InputError(
                f"rating '{col}' has {n} usable values; at least {min_items} are needed"
            )
        xo = xs[ok] if not ok.all() else xs
        yo = y[ok]
        if method == "spearman":
            xo, yo = _sparse_ranks(xo.tocsc()), stats.rankdata(yo)
        r, p = pearson_matrix(xo, yo)
        parts.append(
            pd.DataFrame(
                {"feature": np.arange(n_f, dtype=np.int32), "rating": col, "n": n, "r": r, "p": p}
            )
        )
    return pd.concat(parts, ignore_index=True)


def bh_qvalues(p: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg q-values and rejections over the finite p-values (NaN stays NaN)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    fin = np.isfinite(p)
    if fin.any():
        rej, qv, _, _ = multipletests(p[fin], alpha=alpha, method="fdr_bh")
        q[fin], reject[fin] = qv, rej
    return q, reject


def correlation_table(
    x_nf, ratings: pd.DataFrame, *, alpha: float = 0.05, spearman: bool = False
) -> pd.DataFrame:
    """Pearson (and optionally Spearman) r, p, BH q and significance for every feature × rating."""
    out = correlate(x_nf, ratings, method="pearson")
    out["q"], out["significant"] = bh_qvalues(out["p"].to_numpy(), alpha)
    if spearman:
        sp_df = correlate(x_nf, ratings, method="spearman")
        out["rho"] = sp_df["r"].to_numpy()
        out["p_spearman"] = sp_df["p"].to_numpy()
        out["q_spearman"], out["significant_spearman"] = bh_qvalues(
            out["p_spearman"].to_numpy(), alpha
        )
    return out


def best_per_feature(corr: pd.DataFrame, n_features: int) -> pd.DataFrame:
    """For each feature, the rating with the largest |r|: best_rating, r, p, q, significant."""
    c = corr.dropna(subset=["r"])
    idx = c["r"].abs().groupby(c["feature"]).idxmax()
    best = c.loc[idx.to_numpy(), ["feature", "rating", "r", "p", "q", "significant"]]
    best = best.rename(columns={"rating": "best_rating"}).set_index("feature")
    full = pd.DataFrame(index=pd.RangeIndex(n_features, name="feature"))
    full = full.join(best)
    full["best_rating"] = full["best_rating"].fillna("")
    full["significant"] = full["significant"].fillna(False).astype(bool)
    return full.reset_index()
