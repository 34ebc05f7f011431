"""SAE encode to sparse codes beside the bare matmul and a dense encode, on the same shapes.

Shapes: tokens [4,096, 768] through a 49,152-feature SAE (CLIP ViT-B/32 × 64), TopK (k=64)
and ReLU (bias set so L0 ≈ 700). Rows printed per architecture:

* ``matmul``: ``x @ W_enc`` alone, the floor every encoder pays;
* ``vislens``: ``encode_rows`` to CSR (what ``vislens sae encode`` runs), goal ≥ 85% of
  the matmul's throughput;
* ``dense``: ``sae.encode(x)``, a dense ``[rows, d_sae]`` result computed with the same
  operations as sae-lens' ``encode`` (``(x - b_dec) @ W_enc + b_enc``, then ReLU, or
  ``topk`` + ReLU + scatter into zeros);
* ``sae-lens``: sae-lens' own ``encode`` on the same weights when sae-lens is importable,
  else printed as not run. Goal: vislens ≥ 1.5× sae-lens.

The three timings of an architecture are taken in alternation, best of ``--repeat``, so a
machine shared with other jobs slows them alike; compare the ratios, not the seconds.
Codes are checked equal to the dense encode's before timing.

    python bench/sae_encode.py [--quick] [--batch 4096] [--d-sae 49152] [--repeat 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from _report import figure
from vislens.sae.base import BaseSAE
from vislens.sae.encode import encode_rows
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec
from vislens.store.codes import dense_to_csr


def saelens_encoder(sae: BaseSAE, arch: str) -> tuple[Callable[[torch.Tensor], Any] | None, str]:
    """sae-lens' ``encode`` loaded with ``sae``'s weights, or ``(None, why not)``."""
    try:
        import sae_lens
    except ImportError:
        return None, "not run: sae-lens not installed"
    try:
        d, f = sae.d_in, sae.d_sae
        if arch == "topk":
            other = sae_lens.TopKSAE(sae_lens.TopKSAEConfig(d_in=d, d_sae=f, k=sae.spec.k))
        else:
            other = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=d, d_sae=f))
        names = ("W_enc", "b_enc", "W_dec", "b_dec")
        other.load_state_dict({n: getattr(sae, n).detach() for n in names}, strict=False)
        other.requires_grad_(False)
        x = torch.randn(64, d)
        with torch.no_grad():
            same = torch.equal(other.encode(x), sae.encode(x))
    except Exception as e:  # an sae-lens version whose API differs: say so, keep the rest
        return None, f"not run: sae-lens {getattr(sae_lens, '__version__', '?')}: {e}"
    return other.encode, f"sae-lens {getattr(sae_lens, '__version__', '?')} (codes equal: {same})"


def best_of(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best time of each function, the functions run in alternation ``repeat`` times."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--d-in", type=int, default=768)
    ap.add_argument("--d-sae", type=int, default=49_152)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--max-dense-elems",
        type=int,
        default=None,
        help="encode_rows' chunk bound (default: its own, as `vislens sae encode` uses)",
    )
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="batch 1024: the same ratios in seconds")
    args = ap.parse_args()
    if args.quick:
        args.batch = min(args.batch, 1024)
    if args.threads:
        torch.set_num_threads(args.threads)
    b, d, f = args.batch, args.d_in, args.d_sae
    torch.manual_seed(0)
    x = torch.randn(b, d)
    flop = 2.0 * b * d * f
    kw = {} if args.max_dense_elems is None else {"max_dense_elems": args.max_dense_elems}
    print(f"x [{b}x{d}], d_sae {f}, {torch.get_num_threads()} threads, best of {args.repeat}")
    for arch, extra in (("topk", {"k": 64}), ("standard", {})):
        sae = build_sae(SAESpec(d_in=d, d_sae=f, architecture=arch, **extra))  # type: ignore[arg-type]
        sae.requires_grad_(False)
        if arch == "standard":
            sae.b_enc.fill_(-2.2)  # ~1.4% of features active, L0 ≈ 700 per token
        w = sae.W_enc
        with torch.no_grad():
            fast = encode_rows(sae, x[:256], **kw)
            ref = dense_to_csr(sae.encode(x[:256]))
        same = all(torch.equal(a, c) for a, c in zip(fast, ref, strict=True))
        l0 = fast[1].numel() / 256
        fns: dict[str, Callable[[], Any]] = {
            "matmul": partial(torch.matmul, x, w),
            "vislens": partial(encode_rows, sae, x, **kw),
            "dense": partial(sae.encode, x),
        }
        other, other_label = saelens_encoder(sae, arch)
        if other is not None:
            fns["sae-lens"] = partial(other, x)
        with torch.no_grad():
            t = best_of(fns, args.repeat)
        mm = t["matmul"]
        print(f"{arch} (L0 {l0:.0f}; codes equal to the dense encode's: {same})")
        labels = {"matmul": "matmul x @ W_enc", "vislens": "vislens encode -> CSR",
                  "dense": "dense encode (sae-lens ops)", "sae-lens": other_label}  # fmt: skip
        for name, secs in t.items():
            print(f"  {labels[name]:30s} {secs:7.3f} s {flop / secs / 1e9:7.1f} GFLOP/s "
                  f"{mm / secs:6.1%} of matmul")  # fmt: skip
        if other is None:
            print(f"  {'sae-lens encode':30s} {other_label}")
        share = mm / t["vislens"]
        goal = "goal >= 85%" if share >= 0.85 else "BELOW goal 85%"
        print(f"  vislens / matmul: {share:.1%} ({goal})")
        print(f"  vislens vs dense encode: {t['dense'] / t['vislens']:.2f}x")
        tag = f"{arch} {b}x{d} -> {f}"
        threads = f"{torch.get_num_threads()} thread(s); L0 {l0:.0f}"
        figure(
            f"encode {tag}: share of dense matmul throughput", 100 * share, "%",
            reference="bare matmul x @ W_enc of the same shapes", reference_value=100.0,
            goal=">= 85%", met=share >= 0.85, note=f"codes equal: {same}; {threads}",
        )  # fmt: skip
        figure(
            f"encode {tag}: time to CSR", t["vislens"], "s",
            reference="dense sae.encode (sae-lens' operations), dense output", reference_value=t["dense"],
            note=threads,
        )  # fmt: skip
        if "sae-lens" in t:
            ratio = t["sae-lens"] / t["vislens"]
            print(f"  vislens vs sae-lens: {ratio:.2f}x (goal >= 1.5x)")
            figure(
                f"encode {tag}: time to CSR vs sae-lens", t["vislens"], "s", reference=other_label,
                reference_value=t["sae-lens"], goal=">= 1.5x sae-lens", met=ratio >= 1.5, note=threads,
            )  # fmt: skip


if __name__ == "__main__":
    main()
