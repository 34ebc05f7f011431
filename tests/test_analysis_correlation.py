"""Correlations with ratings equal scipy's per-feature results; q-values equal statsmodels';
bad rating files fail with the file, row and column named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from vislens.analysis.correlation import best_per_feature, correlation_table, read_ratings
from vislens.errors import InputError


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 60), f=st.integers(1, 10), density=st.floats(0.05, 1), ties=st.booleans(),
       seed=st.integers(0, 10**6))  # fmt: skip
def test_pearson_spearman_and_q_equal_scipy_and_statsmodels(n, f, density, ties, seed):
    rng = np.random.default_rng(seed)
    vals = rng.integers(1, 4, (n, f)).astype(float) if ties else rng.random((n, f))
    x = (rng.random((n, f)) < density) * vals
    ratings = pd.DataFrame(
        {"mirror_self": rng.integers(1, 6, n).astype(float), "drawn_to": rng.normal(size=n)}
    )
    t = correlation_table(sp.csr_matrix(x), ratings, alpha=0.1, spearman=True)
    ref_p = []
    for _, row in t.iterrows():
        col, y = x[:, int(row.feature)], ratings[row.rating].to_numpy()
        if np.ptp(col) == 0 or np.ptp(y) == 0:  # undefined: NaN, and left out of the BH family
            assert np.isnan(row.r) and np.isnan(row.q) and np.isnan(row.rho)
            continue
        r, p = stats.pearsonr(col, y)
        rho, ps = stats.spearmanr(col, y)
        assert abs(row.r - r) < 1e-9 and abs(row.p - p) < 1e-8
        assert abs(row.rho - rho) < 1e-9 and abs(row.p_spearman - ps) < 1e-8
        ref_p.append(p)
    fin = t["p"].notna().to_numpy()
    if fin.any():
        reject, q, _, _ = multipletests(np.array(ref_p), alpha=0.1, method="fdr_bh")
        np.testing.assert_allclose(t.loc[fin, "q"].to_numpy(), q, rtol=1e-7, atol=1e-12)
        np.testing.assert_array_equal(t.loc[fin, "significant"].to_numpy(), reject)


def test_missing_ratings_drop_only_that_rating():
    rng = np.random.default_rng(0)
    x = rng.random((30, 3))
    y = rng.normal(size=30)
    y2 = y.copy()
    y2[[3, 7]] = np.nan
    t = correlation_table(x, pd.DataFrame({"a": y, "b": y2}))
    b = t[t.rating == "b"]
    assert (b["n"] == 28).all()
    keep = np.isfinite(y2)
    assert abs(b.iloc[1].r - stats.pearsonr(x[keep, 1], y2[keep])[0]) < 1e-10


def test_best_rating_per_feature():
    corr = pd.DataFrame({"feature": [0, 0, 1, 1], "rating": ["a", "b", "a", "b"], "r": [0.1, -0.5, np.nan, 0.2],
                         "p": [0.5, 0.01, np.nan, 0.3], "q": [0.5, 0.02, np.nan, 0.4],
                         "significant": [False, True, False, False]})  # fmt: skip
    best = best_per_feature(corr, 3)
    assert list(best.best_rating) == ["b", "b", ""]
    assert best.r.iloc[0] == -0.5 and np.isnan(best.r.iloc[2])


def _csv(tmp_path, text):
    p = tmp_path / "ratings.csv"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("item_id,a\nx1,1\nzz,2\n", r"row 3 has item_id 'zz'"),
        ("item_id,a\nx1,1\nx2,high\n", r"row 3, column 'a': 'high' is not a number"),
        ("id,a\nx1,1\n", r"no 'item_id' column"),
        ("item_id\nx1\n", "at least one rating column"),
        ("item_id,a\nx1,1\nx1,2\n", "appears twice"),
    ],
)
def test_bad_rating_files(tmp_path, text, match):
    with pytest.raises(InputError, match=match) as e:
        read_ratings(_csv(tmp_path, text), ["x1", "x2"])
    assert "ratings.csv" in str(e.value)


def test_good_rating_file_reads_numbers_and_blanks(tmp_path):
    df = read_ratings(_csv(tmp_path, "item_id,a,b\nx1,1,\nx2,2.5,3\n"), ["x1", "x2"])
    assert (
        list(df.index) == ["x1", "x2"] and np.isnan(df.loc["x1", "b"]) and df.loc["x2", "a"] == 2.5
    )
