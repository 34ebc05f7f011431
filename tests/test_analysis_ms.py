"""Monosemanticity: the linear-time score equals the O(N²) pairwise definition (Pach et al.
2025) to 1e-6; the top-N variant likewise; dead features are reported; bands come from data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.analysis.monosemanticity import (
    Calibration,
    calibrate,
    monosemanticity,
    monosemanticity_topn,
)
from vislens.errors import InputError


def pairwise_ms(x: np.ndarray, emb: np.ndarray) -> float:
    """The definition, pair by pair, as sae-for-vlm's metric does it."""
    if x.max() - x.min() <= 0:
        return float("nan")
    a = (x - x.min()) / (x.max() - x.min())
    num = den = 0.0
    for n in range(len(x)):
        for m in range(n + 1, len(x)):
            cos = emb[n] @ emb[m] / (np.linalg.norm(emb[n]) * np.linalg.norm(emb[m]))
            num += a[n] * a[m] * cos
            den += a[n] * a[m]
    return num / den if den > 0 else float("nan")


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 30), f=st.integers(1, 8), d=st.integers(1, 6), density=st.floats(0, 1),
       signed=st.booleans(), seed=st.integers(0, 10**6))  # fmt: skip
def test_full_set_ms_equals_pairwise(n, f, d, density, signed, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, f)) < density) * (rng.normal(size=(n, f)) if signed else rng.random((n, f)))
    emb = rng.normal(size=(n, d))
    res = monosemanticity(sp.csr_matrix(x), emb)
    ref = np.array([pairwise_ms(x[:, j], emb) for j in range(f)])
    assert np.array_equal(np.isnan(res.ms), np.isnan(ref))
    np.testing.assert_allclose(res.ms[~np.isnan(ref)], ref[~np.isnan(ref)], atol=1e-6)
    np.testing.assert_array_equal(res.n_active, (x != 0).sum(axis=0))


def test_dead_single_and_constant_features_are_reported():
    rng = np.random.default_rng(0)
    x = rng.random((20, 4))
    x[:, 0] = 0  # dead
    x[:, 1] = 0
    x[5, 1] = 2.0  # one item: no pair
    x[:, 2] = 0.7  # constant on every item
    res = monosemanticity(x, rng.normal(size=(20, 3)))
    assert list(res.status) == ["dead", "single", "constant", "ok"]
    assert np.isnan(res.ms[:3]).all() and np.isfinite(res.ms[3])


def test_dense_and_sparse_inputs_agree():
    rng = np.random.default_rng(1)
    x = (rng.random((50, 6)) < 0.3) * rng.random((50, 6))
    e = rng.normal(size=(50, 4))
    np.testing.assert_allclose(monosemanticity(x, e).ms, monosemanticity(sp.csc_matrix(x), e).ms)


@settings(max_examples=30, deadline=None)
@given(
    n_items=st.integers(3, 25),
    f=st.integers(1, 6),
    top=st.integers(2, 8),
    seed=st.integers(0, 10**6),
)
def test_topn_ms_equals_pairwise_on_top_items(n_items, f, top, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((n_items, f)) < 0.6) * rng.random((n_items, f))
    emb = rng.normal(size=(n_items, 5))
    rows = []
    for j in range(f):
        order = [i for i in np.argsort(-x[:, j], kind="stable") if x[i, j] > 0][:top]
        rows += [(j, i, x[i, j]) for i in order]
    feat, item, val = (
        (np.array(c) for c in zip(*rows, strict=True)) if rows else (np.zeros(0, int),) * 3
    )
    res = monosemanticity_topn(feat, item, val, emb, f)
    for j in range(f):
        sel = [i for (fj, i, _) in rows if fj == j]
        ref = pairwise_ms(x[sel, j], emb[sel]) if len(sel) >= 2 else float("nan")
        if np.isnan(ref):
            assert np.isnan(res.ms[j])
        else:
            assert abs(res.ms[j] - ref) < 1e-6


def test_calibration_from_random_pairs():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 8)) + 1.0
    cal = calibrate(emb, n_pairs=20_000, seed=3)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    cos = (e @ e.T)[np.triu_indices(300, 1)]
    assert abs(cal.mean - cos.mean()) < 0.01 and abs(cal.sd - cos.std()) < 0.01
    assert calibrate(emb, n_pairs=20_000, seed=3) == cal


def test_bands_follow_the_seed_rule():
    cal = Calibration(mean=0.195, sd=0.154, n_pairs=50_000)  # the seed's figures
    assert round(cal.moderate, 2) == 0.35 and round(cal.monosemantic, 2) == 0.50
    bands = cal.band(np.array([0.1, 0.34, 0.35, 0.50, 0.51, np.nan]))
    assert list(bands) == [
        "polysemantic",
        "polysemantic",
        "moderate",
        "moderate",
        "monosemantic",
        "undefined",
    ]


def test_bad_embeddings_are_clear_errors():
    with pytest.raises(InputError, match="zero or not finite"):
        monosemanticity(np.ones((3, 2)), np.array([[1.0, 0], [0, 0], [1, 1]]))
    with pytest.raises(InputError, match="embeddings"):
        monosemanticity(np.ones((3, 2)), np.ones((4, 2)))
