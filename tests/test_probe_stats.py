"""Head statistics equal scipy/statsmodels on planted data; features and the grid mapping
equal slow obvious references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu
from statsmodels.stats.multitest import multipletests

from vislens.probe.attention import relative_attention, tokens_to_grid
from vislens.probe.features import FEATURES, head_features
from vislens.probe.stats import MEAN_HEAD, localisation_table, rank_heads


def planted(n_tp: int = 30, n_fn: int = 25, n_layers: int = 3, n_heads: int = 4) -> pd.DataFrame:
    """Layer 2 head 1 puts more on the target in TP cases; every other head is noise."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n_tp + n_fn):
        outcome = "TP" if i < n_tp else "FN"
        for layer in range(1, n_layers + 1):
            for head in range(n_heads):
                x = rng.normal()
                if (layer, head) == (2, 1) and outcome == "TP":
                    x += 2.0
                rows.append(
                    {"case_id": f"c{i}", "outcome": outcome, "layer": layer, "head": head}
                    | {f: x + 0.1 * rng.normal() for f in FEATURES}
                )
    return pd.DataFrame(rows)


def test_planted_head_ranks_first_and_matches_scipy_statsmodels() -> None:
    df = planted()
    table, status = rank_heads(df, ("target_mass",), min_per_group=5)
    assert status["status"] == "ok" and (status["n_tp"], status["n_fn"]) == (30, 25)
    first = table.iloc[0]
    assert (first["layer"], first["head"], first["rank"]) == (2, 1, 1)
    assert first["significant_bh"]
    others = table[(table["layer"] != 2) | (table["head"] != 1)]
    assert not others["significant_bh"].any()
    # Every number against scipy / statsmodels directly.
    ps, us = [], []
    keys = sorted({(int(a), int(b)) for a, b in zip(df["layer"], df["head"], strict=True)})
    for layer, head in keys:
        g = df[(df["layer"] == layer) & (df["head"] == head)]
        tp = g.loc[g["outcome"] == "TP", "target_mass"].to_numpy()
        fn = g.loc[g["outcome"] == "FN", "target_mass"].to_numpy()
        res = mannwhitneyu(tp, fn, alternative="two-sided")
        ps.append(res.pvalue)
        us.append(res.statistic)
        row = table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]
        assert row["u_statistic"] == res.statistic
        assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-12)
        assert row["rank_biserial"] == pytest.approx(2 * res.statistic / (len(tp) * len(fn)) - 1)
        sd = math.sqrt(
            ((len(tp) - 1) * tp.var(ddof=1) + (len(fn) - 1) * fn.var(ddof=1))
            / (len(tp) + len(fn) - 2)
        )
        assert row["cohens_d"] == pytest.approx((tp.mean() - fn.mean()) / sd)
    q_bh = multipletests(ps, method="fdr_bh")[1]
    q_by = multipletests(ps, method="fdr_by")[1]
    for (layer, head), qb, qy in zip(keys, q_bh, q_by, strict=True):
        row = table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]
        assert row["q_bh"] == pytest.approx(qb, rel=1e-12)
        assert row["q_by"] == pytest.approx(qy, rel=1e-12)
        assert row["q_by"] >= row["q_bh"]


def test_too_few_cases_says_so_instead_of_ranking() -> None:
    df = planted(n_tp=20, n_fn=3)
    table, status = rank_heads(df, FEATURES, min_per_group=5)
    assert status["status"] == "too_few_cases"
    assert "3 FN" in status["message"] and "at least 5" in status["message"]
    assert len(table) == 0 and "q_bh" in table.columns


def features_reference(a: np.ndarray, g: np.ndarray, cells: list[int]) -> dict[str, np.ndarray]:
    """One head at a time, with plain loops."""
    n_l, n_h = a.shape[:2]
    out = {k: np.zeros((n_l, n_h)) for k in FEATURES}
    out["argmax_cell"] = np.zeros((n_l, n_h), dtype=int)
    for li in range(n_l):
        for hi in range(n_h):
            m = a[li, hi].astype(np.float64).reshape(-1)
            p = m / m.sum()
            out["image_mass"][li, hi] = m.sum()
            out["entropy"][li, hi] = -sum(x * math.log(x) for x in p if x > 0)
            out["target_mass"][li, hi] = sum(p[c] for c in cells)
            out["target_ratio"][li, hi] = np.mean([p[c] for c in cells]) / np.mean(p)
            best = max(p[c] for c in cells)
            out["target_rank"][li, hi] = 1 + sum(1 for x in p if x > best)
            gg = g[li, hi].astype(np.float64).reshape(-1)
            rel = m / (gg + 1e-3 * gg.mean() + 1e-12)
            out["relative_mass"][li, hi] = sum(rel[c] for c in cells) / rel.sum()
            out["argmax_cell"][li, hi] = int(np.argmax(m))
    return out


def test_head_features_equal_the_reference() -> None:
    rng = np.random.default_rng(3)
    a = rng.dirichlet(np.ones(100), size=(3, 4)).reshape(3, 4, 10, 10) * 0.7
    g = rng.dirichlet(np.ones(100), size=(3, 4)).reshape(3, 4, 10, 10) * 0.6
    a, g = a.astype(np.float16), g.astype(np.float16)
    cells = [23, 57]
    got = head_features(a, g, cells)
    want = features_reference(a, g, cells)
    for k in FEATURES:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=1e-7, err_msg=k)
    np.testing.assert_array_equal(got["argmax_cell"], want["argmax_cell"])
    np.testing.assert_array_equal(got["argmax_in_evidence"], np.isin(want["argmax_cell"], cells))
    absent = head_features(a, g, [])
    assert np.isnan(absent["target_mass"]).all() and not absent["argmax_in_evidence"].any()


def test_tokens_to_grid_equals_cell_by_cell_loop() -> None:
    rng = np.random.default_rng(0)
    attn = rng.random((2, 3, 4, 12)).astype(np.float32)
    # A non-raster token order (as a processor could emit) must still land on its cells.
    order = rng.permutation(12)
    grid_rc = np.array([(k // 4, k % 4) for k in order])
    got = tokens_to_grid(attn, grid_rc, (3, 4))
    want = np.zeros((2, 3, 4, 3, 4), dtype=np.float32)
    for b in range(2):
        for li in range(3):
            for h in range(4):
                for k, (r, c) in enumerate(grid_rc):
                    want[b, li, h, r, c] += attn[b, li, h, k]
    np.testing.assert_array_equal(got, want)


def test_relative_attention_is_head_mean_over_generic_head_mean() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((2, 3, 4, 4)).astype(np.float32)
    g = rng.random((2, 3, 4, 4)).astype(np.float32) + 0.5
    rel = relative_attention(a, g)
    for li in range(2):
        gm = g[li].mean(0)
        np.testing.assert_allclose(
            rel[li], a[li].mean(0) / (gm + 1e-3 * gm.mean() + 1e-12), rtol=1e-6
        )


def test_localisation_counts_argmax_on_evidence() -> None:
    feats = pd.DataFrame(
        {
            "kind": ["presence"] * 4 + ["location"] * 2,
            "layer": [1, 1, 1, 1, 1, 1],
            "head": [0, 0, 0, 0, 0, 0],
            "n_evidence": [1, 2, 0, 1, 1, 1],
            "argmax_in_evidence": [True, False, False, True, True, False],
            "n_cells": [100] * 6,
        }
    )
    means = feats.assign(head=MEAN_HEAD, argmax_in_evidence=False)
    loc = localisation_table(feats, means)
    row = loc[(loc["kind"] == "all") & (loc["head"] == 0)].iloc[0]
    assert (row["n_cases"], row["n_hits"]) == (5, 3)  # the case without evidence is left out
    assert row["accuracy"] == pytest.approx(0.6)
    assert row["chance"] == pytest.approx((0.01 + 0.02 + 0.01 + 0.01 + 0.01) / 5)
    pres = loc[(loc["kind"] == "presence") & (loc["head"] == 0)].iloc[0]
    assert (pres["n_cases"], pres["n_hits"]) == (3, 2)
