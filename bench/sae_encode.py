"""SAE encode throughput as a fraction of this machine's dense matmul rate on the same shapes.

Shapes: tokens [4,096, 768] through a 49,152-feature SAE (CLIP ViT-B/32 × 64). The encoder
is dominated by ``x @ W_enc``; the figure is (2·B·d·F / encode time) / (2·B·d·F / matmul
time) for TopK (k=64) and ReLU SAEs, codes written as CSR (goal ≥ 60%).

    python bench/sae_encode.py [--batch 4096] [--d-sae 49152]
"""

from __future__ import annotations

import argparse
import time

import torch

from vislens.sae.encode import encode_rows
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--d-sae", type=int, default=49_152)
    ap.add_argument("--quick", action="store_true", help="batch 1024: the same figures in seconds")
    args = ap.parse_args()
    if args.quick:
        args.batch = min(args.batch, 1024)
    b, d, f = args.batch, args.d_in, args.d_sae
    x = torch.randn(b, d)
    flop = 2.0 * b * d * f
    w = torch.randn(d, f) / d**0.5
    with torch.no_grad():
        t_mm = best_of(lambda: x @ w)
    print(
        f"dense matmul [{b}x{d}] @ [{d}x{f}]: {flop / t_mm / 1e9:7.1f} GFLOP/s ({t_mm:.3f} s), {torch.get_num_threads()} threads"
    )
    for arch, extra in (("topk", {"k": 64}), ("standard", {})):
        sae = build_sae(SAESpec(d_in=d, d_sae=f, architecture=arch, **extra)).requires_grad_(False)  # type: ignore[arg-type]
        if arch == "standard":
            with torch.no_grad():
                sae.b_enc.fill_(-2.2)  # ~1.5% of features active, L0 ≈ 700 per token
        t_enc = best_of(lambda sae=sae: encode_rows(sae, x, max_dense_elems=b * f))
        l0 = encode_rows(sae, x[:256], max_dense_elems=b * f)[1].numel() / 256
        print(f"{arch:8s} encode -> CSR: {flop / t_enc / 1e9:7.1f} GFLOP/s ({t_enc:.3f} s), "
              f"{t_mm / t_enc:6.1%} of matmul, L0 {l0:.0f}; goal >= 60%")  # fmt: skip


if __name__ == "__main__":
    main()
