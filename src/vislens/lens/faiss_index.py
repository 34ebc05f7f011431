"""Optional FAISS indexes over one bank layer (``pip install 'vislens[faiss]'``).

``flat`` (IndexFlatIP on normalised rows) is exact and equals the chunked scan; ``ivf`` and
``ivfpq`` are approximate, for banks too large to scan, and every use reports recall@k
against the exact scan on (a sample of) the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vislens.errors import ConfigError

KINDS = ("flat", "ivf", "ivfpq")


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "the FAISS index needs faiss-cpu: pip install 'vislens[faiss]' (or use index = 'scan')"
        ) from None
    return faiss


@dataclass
class FaissIndex:
    kind: str
    index: Any

    def search(self, queries_qd: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        q = torch.nn.functional.normalize(queries_qd.float(), dim=-1).numpy()
        d, i = self.index.search(np.ascontiguousarray(q, dtype=np.float32), k)
        return torch.from_numpy(d), torch.from_numpy(i).long()


def build_index(
    bank_nd: torch.Tensor, kind: str = "flat", *, nlist: int | None = None, seed: int = 0
) -> FaissIndex:
    """An inner-product index over the L2-normalised rows of ``bank_nd``."""
    faiss = _faiss()
    if kind not in KINDS:
        raise ConfigError(f"FAISS index {kind!r}: choose one of {', '.join(KINDS)}")
    x = np.ascontiguousarray(
        torch.nn.functional.normalize(bank_nd.float(), dim=-1).numpy(), dtype=np.float32
    )
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    else:
        nlist = nlist or max(1, min(4096, int(np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            m = next(m for m in (64, 48, 32, 16, 8, 4, 2, 1) if d % m == 0 and m <= d)
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(x)
        index.nprobe = max(1, nlist // 8)
    index.add(x)
    return FaissIndex(kind, index)


def recall_at_k(approx_qk: torch.Tensor, exact_qk: torch.Tensor) -> float:
    """Share of the exact top-k rows the approximate search also returned."""
    k = exact_qk.shape[1]
    hits = sum(
        len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx_qk, exact_qk, strict=True)
    )
    return hits / (k * exact_qk.shape[0]) if exact_qk.numel() else float("nan")
