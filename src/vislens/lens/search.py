"""Exact cosine top-k, chunked over bank rows and queries, and its merge across layers.

Queries and bank rows are both L2-normalised, so every score is a true cosine. The bank
streams past in chunks; each chunk's top-k is merged into a running top-k, so peak memory
is ``query_chunk x chunk_rows`` scores plus one chunk of rows, whatever the bank's size.

Ties are broken the same way everywhere (and by the brute-force reference in the tests):
higher score first, then lower bank row; across layers, then earlier layer in the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from jaxtyping import Float, Int


def normalise(x_nd: Float[torch.Tensor, "n d"]) -> Float[torch.Tensor, "n d"]:
    return torch.nn.functional.normalize(x_nd.float(), dim=-1)


def _order(
    vals_qm: torch.Tensor, idx_qm: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` best by (score desc, index asc) of each row."""
    by_idx = torch.argsort(idx_qm, dim=1, stable=True)
    v = torch.gather(vals_qm, 1, by_idx)
    i = torch.gather(idx_qm, 1, by_idx)
    by_val = torch.argsort(-v, dim=1, stable=True)[:, :k]
    return torch.gather(v, 1, by_val), torch.gather(i, 1, by_val)


def chunk_topk(
    scores_qn: Float[torch.Tensor, "q n"], k: int, offset: int
) -> tuple[Float[torch.Tensor, "q k"], Int[torch.Tensor, "q k"]]:
    """Top-k of one score block with global indices ``offset + column``, ties to the lower
    index (``torch.topk`` alone does not promise which tied entry it returns)."""
    n = scores_qn.shape[1]
    k = min(k, n)
    # One extra candidate shows whether more entries tie with the k-th than topk kept.
    vals, idx = torch.topk(scores_qn, min(k + 1, n), dim=1)
    if vals.shape[1] > k:
        bad = torch.nonzero(vals[:, k] == vals[:, k - 1]).flatten()
        vals, idx = vals[:, :k].contiguous(), idx[:, :k].contiguous()
    else:
        bad = torch.zeros(0, dtype=torch.long)
    if len(bad):  # rare: sort those rows fully, stably
        sub = scores_qn[bad]
        order = torch.argsort(-sub, dim=1, stable=True)[:, :k]
        vals[bad] = torch.gather(sub, 1, order)
        idx[bad] = order
    v, i = _order(vals, idx, k)
    return v, i + offset


def merge_topk(
    a: tuple[torch.Tensor, torch.Tensor] | None, b: tuple[torch.Tensor, torch.Tensor], k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of two top-k lists over disjoint index ranges (``a``'s indices the lower)."""
    if a is None:
        return b
    return _order(torch.cat([a[0], b[0]], 1), torch.cat([a[1], b[1]], 1), k)


def topk_cosine(
    queries_qd: Float[torch.Tensor, "q d"],
    bank_chunks: Callable[[], Iterable[tuple[int, Float[torch.Tensor, "n d"]]]],
    k: int,
    *,
    query_chunk: int = 4096,
    device: str | torch.device = "cpu",
    compute_dtype: torch.dtype = torch.float32,
    owned_chunks: bool = False,
) -> tuple[Float[torch.Tensor, "q k"], Int[torch.Tensor, "q k"]]:
    """Cosine top-k of every query against a bank given as ``(first row, rows)`` chunks.

    ``bank_chunks`` is called once per query chunk (so the bank streams from disk again
    rather than being held). Scores are computed in ``compute_dtype`` (fp32 on CPU; fp16 /
    bf16 on a GPU) and compared in fp32. ``owned_chunks``: the chunks are fresh fp32
    tensors (as ``Bank.iter_chunks`` yields) and may be normalised in place.
    """
    out_v, out_i = [], []
    for q0 in range(0, queries_qd.shape[0], query_chunk):
        q = normalise(queries_qd[q0 : q0 + query_chunk]).to(device, compute_dtype)
        best: tuple[torch.Tensor, torch.Tensor] | None = None
        for start, rows in bank_chunks():
            b = rows.to(device)
            if owned_chunks and b.dtype == torch.float32:
                b.div_(torch.linalg.vector_norm(b, dim=1, keepdim=True).clamp_min_(1e-12))
            else:
                b = normalise(b)
            b = b.to(compute_dtype)
            scores = (q @ b.T).float()
            best = merge_topk(best, chunk_topk(scores, k, start), k)
        if best is None:
            raise ValueError("empty bank")
        out_v.append(best[0].cpu())
        out_i.append(best[1].cpu())
    return torch.cat(out_v), torch.cat(out_i)


def in_memory_chunks(
    bank_nd: Float[torch.Tensor, "n d"], chunk_rows: int
) -> Callable[[], Iterable[tuple[int, torch.Tensor]]]:
    """``bank_chunks`` over a tensor already in memory (embedding matrices, tests)."""

    def gen() -> Iterable[tuple[int, torch.Tensor]]:
        for s in range(0, bank_nd.shape[0], chunk_rows):
            yield s, bank_nd[s : s + chunk_rows]

    return gen


def merge_layers(
    per_layer: Sequence[tuple[int, torch.Tensor, torch.Tensor]], k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Global top-k across contextual layers: ``(scores, rows, layer)`` each ``[q, k]``,
    from ``(layer, scores, rows)`` per layer. Ties go to the earlier layer in the list."""
    v = torch.cat([s for _, s, _ in per_layer], 1)
    i = torch.cat([r for _, _, r in per_layer], 1)
    lay = torch.cat([torch.full_like(r, layer) for layer, _, r in per_layer], 1)
    order = torch.argsort(-v, dim=1, stable=True)[:, :k]
    return torch.gather(v, 1, order), torch.gather(i, 1, order), torch.gather(lay, 1, order)
