"""Correlations of every feature with every rating (+ Benjamini–Hochberg): vislens'
vectorised pass vs a per-feature ``scipy.stats.pearsonr`` loop, as seed 001 describes it.

Shapes: 49,152 features × 8 ratings × 2,000 items, L0 ≈ 1,500 (goal: under 2 s, ≥ 100×).

    python bench/sae_correlation.py           # full reference loop (393,216 pearsonr calls)
    python bench/sae_correlation.py --sample 4096   # time the loop on 4,096 features, scale up
    python bench/sae_correlation.py --quick         # the same, on 2,048 features
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from _report import figure
from _synth import Timer, report, sparse_codes
from vislens.analysis.correlation import correlation_table


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--sample", type=int, default=0, help="time the reference on this many features and scale"
    )
    ap.add_argument("--quick", action="store_true", help="--sample 2048 unless given")
    args = ap.parse_args()
    if args.quick and not args.sample:
        args.sample = 2048
    n, f, r = 2000, 49_152, 8
    codes = sparse_codes(n, f, 1500, seed=3)
    rng = np.random.default_rng(0)
    ratings = pd.DataFrame({f"rating_{j}": rng.integers(1, 8, n).astype(float) for j in range(r)})

    with Timer() as t_o:
        ours = correlation_table(codes, ratings, alpha=0.05)
    t_ours = t_o.wall

    dense = codes.toarray()
    m = args.sample or f
    with Timer() as t_r:
        ps = np.full((m, r), np.nan)
        with np.errstate(all="ignore"):
            for j in range(m):
                col = dense[:, j]
                if np.ptp(col) == 0:
                    continue
                for k, name in enumerate(ratings.columns):
                    ps[j, k] = stats.pearsonr(col, ratings[name].to_numpy()).pvalue
        fin = np.isfinite(ps)
        multipletests(ps[fin], alpha=0.05, method="fdr_bh")
    t_ref = t_r.wall * (f / m)
    mine = ours["p"].to_numpy().reshape(r, f).T[:m]
    err = float(np.nanmax(np.abs(mine - ps)))
    scaled = f" (loop timed on {m:,} features, scaled)" if m < f else ""
    report([(f"Pearson + BH, {f:,} features x {r} ratings x {n:,} items", t_ours, t_ref,
             f"max |p diff| {err:.1e}; cpu {t_o.cpu:.2f} s vs {t_r.cpu * f / m:.1f} s; goal < 2 s and >= 100x{scaled}")])  # fmt: skip
    figure(f"Pearson + BH, {f:,} features x {r} ratings x {n:,} items", t_ours, "s",
           reference="scipy.stats.pearsonr loop per feature and rating + statsmodels BH",
           reference_value=t_ref, goal="< 2 s and >= 100x", met=t_ours < 2 and t_ref / t_ours >= 100,
           note=f"max |p diff| {err:.1e}{scaled}")  # fmt: skip


if __name__ == "__main__":
    main()
