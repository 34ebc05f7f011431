"""Top-k items for all features in one streaming pass vs per-feature loops.

Shapes: 49,152 features, k=20, 50,000 items in shards of 1,024 (L0 ≈ 1,500; goal ≥ 50×).
References: (a) a per-feature loop that scans the shards for each feature (what a
streaming store without a transposed copy needs; timed on a sample of features and scaled),
(b) a per-feature loop over a column-major (CSC) copy, transposition included.

    python bench/sae_topk.py [--sample 40] [--items 50000] [--quick]   # --quick: 10,000 items
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _report import figure
from _synth import Timer, report, sparse_codes
from vislens.sae.top_items import topk_from_coo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=40, help="features timed in reference (a)")
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--quick", action="store_true", help="10,000 items")
    args = ap.parse_args()
    if args.quick:
        args.items = 10_000
    n, f, k, shard = args.items, 49_152, 20, 1024
    codes = sparse_codes(n, f, 1500, seed=4)
    chunks = []
    for s in range(0, n, shard):
        blk = codes[s : s + shard].tocoo()
        chunks.append((torch.from_numpy(blk.row.astype(np.int64) + s), torch.from_numpy(blk.col.astype(np.int64)),
                       torch.from_numpy(blk.data)))  # fmt: skip

    with Timer() as t_o:
        feat, _rank, item, _val = topk_from_coo(iter(chunks), k, f)
    t_ours = t_o.wall

    np_chunks = [(i.numpy(), c.numpy(), v.numpy()) for i, c, v in chunks]
    sample = np.random.default_rng(0).choice(f, args.sample, replace=False)
    t = time.perf_counter()
    ref_a = {}
    for j in sample:
        items = np.concatenate([i[c == j] for i, c, _ in np_chunks])
        vals = np.concatenate([v[c == j] for _, c, v in np_chunks])
        top = np.lexsort((items, -vals))[:k]
        ref_a[int(j)] = items[top]
    t_a = (time.perf_counter() - t) * f / len(sample)

    t = time.perf_counter()
    csc = codes.tocsc()
    for j in range(f):
        a, b = csc.indptr[j], csc.indptr[j + 1]
        rows, vals = csc.indices[a:b], csc.data[a:b]
        rows[np.lexsort((rows, -vals))[:k]]
    t_b = time.perf_counter() - t

    ok = all(np.array_equal(item[feat == j], ref_a[j]) for j in ref_a)
    report([
        (f"top-{k}, {f:,} features x {n:,} items vs (a) scan per feature", t_ours, t_a,
         f"(a) timed on {len(sample)} features, scaled; equal on them: {ok}; ours cpu {t_o.cpu:.1f} s; goal >= 50x"),
        ("    vs (b) per-feature loop over a CSC copy", t_ours, t_b, "transposition included"),
    ])  # fmt: skip
    name = f"top-{k}, {f:,} features x {n:,} items, one streaming pass"
    figure(name, t_ours, "s", reference="(a) scan the shards per feature (sampled, scaled)",
           reference_value=t_a, goal=">= 50x", met=t_a / t_ours >= 50,
           note=f"equal on the {len(sample)} sampled features: {ok}")  # fmt: skip
    figure(name, t_ours, "s", reference="(b) per-feature loop over a CSC copy",
           reference_value=t_b, note="transposition included")  # fmt: skip


if __name__ == "__main__":
    main()
