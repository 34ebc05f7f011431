"""Monosemanticity for every feature: vislens' exact linear-time score vs the pairwise loop.

Part 1 (N=2,000 images, 4,096 features): ours vs a pairwise reference loop written the way
sae-for-vlm's metric.py accumulates it (for each image i, batches of images j > i). Part 2:
ours alone on N=50,000 × 49,152 features with L0 ≈ 1,500 (goal: under 60 s on 2 cores).

    python bench/sae_ms.py            # both parts
    python bench/sae_ms.py --quick    # part 1 smaller, part 2 on N=10,000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _report import figure
from _synth import Timer, report, sparse_codes
from vislens.analysis.monosemanticity import monosemanticity


def pairwise_reference(acts: np.ndarray, emb: np.ndarray, batch: int = 100) -> np.ndarray:
    """O(N² · F): min-max per feature, then Σ_{i<j} a_i a_j cos_ij / Σ_{i<j} a_i a_j."""
    lo, hi = acts.min(0), acts.max(0)
    a = (acts - lo) / np.where(hi > lo, hi - lo, 1.0)
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    num = np.zeros(acts.shape[1])
    den = np.zeros(acts.shape[1])
    for i in range(len(a)):
        for j0 in range(i + 1, len(a), batch):
            w = a[i][None, :] * a[j0 : j0 + batch]  # [b, F]
            cos = e[j0 : j0 + batch] @ e[i]  # [b]
            num += cos @ w
            den += w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dim", type=int, default=768, help="embedding width (DINOv2-base: 768)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []

    n, f = (500, 1024) if args.quick else (2000, 4096)
    codes = sparse_codes(n, f, l0=max(1, f * 1500 // 49152), seed=1)
    emb = rng.normal(size=(n, args.dim)) + 0.3
    with Timer() as t_o:
        ours = monosemanticity(codes, emb).ms
    t_ours = t_o.wall
    dense = codes.toarray().astype(np.float64)
    with Timer() as t_r:
        ref = pairwise_reference(dense, emb)
    t_ref = t_r.wall
    ok = np.isfinite(ref)
    err = float(np.max(np.abs(ours[ok] - ref[ok]))) if ok.any() else 0.0
    rows.append(
        (
            f"MS, N={n:,} x {f:,} features (float64)",
            t_ours,
            t_ref,
            f"max |diff| {err:.1e}; cpu {t_o.cpu:.2f} s vs {t_r.cpu:.1f} s",
        )
    )
    figure(
        f"MS, N={n:,} x {f:,} features (float64)",
        t_ours,
        "s",
        reference="pairwise loop over image pairs (as sae-for-vlm's metric.py)",
        reference_value=t_ref,
        note=f"max |diff| {err:.1e}",
    )

    n, f, l0 = (10_000 if args.quick else 50_000), 49_152, 1_500
    t = time.perf_counter()
    big = sparse_codes(n, f, l0, seed=2)
    t_gen = time.perf_counter() - t
    emb = (rng.normal(size=(n, args.dim)) + 0.3).astype(np.float32)
    with Timer() as t_b:
        res = monosemanticity(big, emb, dtype=np.float32)
    t_big = t_b.wall
    note = f"cpu {t_b.cpu:.1f} s; nnz {big.nnz:,}; {int(np.sum(res.status == 'ok')):,} scored; data made in {t_gen:.0f} s; goal < 60 s at N=50,000"
    rows.append((f"MS, N={n:,} x {f:,} features, L0={l0} (float32 product)", t_big, None, note))
    figure(
        f"MS, N={n:,} x {f:,} features, L0={l0} (float32 product)",
        t_big,
        "s",
        goal="< 60 s on 2 cores at N=50,000",
        met=None if args.quick else t_big < 60,
        note=note,
    )
    report(rows)


if __name__ == "__main__":
    main()
