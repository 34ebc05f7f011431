"""Top-k items per feature for every feature at once, in one streaming pass over the codes.

Each shard's per-item values arrive as sparse COO triples; they are merged with the
running top-k by sorting (feature ascending, value descending, item ascending) and
keeping the first k of each feature. Memory is O(d_sae · k + one shard's non-zeros); no
dense ``[items, d_sae]`` matrix is ever built.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor

from vislens.io import atomic_path
from vislens.progress import track
from vislens.store.codes import CodesStore, Reduce

TOPK_FILE = "topk.parquet"
TOPK_SCHEMA_VERSION = 1
TOPK_COLUMNS = ("feature", "rank", "item_index", "item_id", "value")


def _keep_topk(feat: Tensor, val: Tensor, item: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` largest values per feature (ties: lower item_index first), sorted.

    Two sorts: by item, then stably by one int64 key ``feature << 31 | (2³¹-1 - bits(value))``
    — the bits of a positive float32 order like its value, so the key orders by feature
    ascending, value descending.
    """
    if len(feat) == 0:
        return feat, val, item
    order = torch.argsort(item, stable=True)
    bits = val[order].view(torch.int32).to(torch.int64)
    key = (feat[order] << 31) | (0x7FFFFFFF - bits)
    order = order[torch.argsort(key, stable=True)]
    feat, val, item = feat[order], val[order], item[order]
    keep = _ranks(feat) < k
    return feat[keep], val[keep], item[keep]


def _ranks(feat: Tensor) -> Tensor:
    """Position of each entry within its (sorted, contiguous) feature group."""
    if len(feat) == 0:
        return torch.zeros(0, dtype=torch.int64)
    new_group = torch.ones(len(feat), dtype=torch.bool)
    new_group[1:] = feat[1:] != feat[:-1]
    idx = torch.arange(len(feat))
    return idx - torch.cummax(torch.where(new_group, idx, 0), 0).values


def topk_from_coo(
    chunks: Iterable[tuple[Tensor, Tensor, Tensor]],
    k: int,
    n_features: int | None = None,
    *,
    max_buffer: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(feature, rank, item_index, value)`` arrays from a stream of ``(item, feature, value)``
    COO chunks; only positive values count (an inactive item is not a top item).

    With ``n_features``, each chunk is first cut to entries at least as large as their
    feature's current k-th value — after a few chunks that drops almost everything, so the
    merge sorts stay small. Ties at the threshold are kept, so the result is unchanged.
    """
    feat = torch.zeros(0, dtype=torch.int64)
    val = torch.zeros(0, dtype=torch.float32)
    item = torch.zeros(0, dtype=torch.int64)
    thr = torch.zeros(n_features, dtype=torch.float32) if n_features else None
    # candidates wait in a buffer and are merged (sorted) only when it grows large; the
    # thresholds only rise, so filtering with the last merge's (lower) ones is safe
    buf: list[tuple[Tensor, Tensor, Tensor]] = []
    n_buf, max_buf = 0, max_buffer or max(1 << 22, 2 * k * (n_features or 0))

    def merge() -> None:
        nonlocal feat, val, item, n_buf
        feat = torch.cat([feat, *(b[0] for b in buf)])
        val = torch.cat([val, *(b[1] for b in buf)])
        item = torch.cat([item, *(b[2] for b in buf)])
        buf.clear()
        n_buf = 0
        feat, val, item = _keep_topk(feat, val, item, k)
        if thr is not None:
            last = _ranks(feat) == k - 1  # features with a full list: their k-th value is the bar
            thr[feat[last]] = val[last]

    for c_item, c_feat, c_val in chunks:
        c_feat = c_feat.to(torch.int64)
        c_val = c_val.to(torch.float32)
        keep = c_val > 0
        if thr is not None:
            keep &= c_val >= thr[c_feat]
        buf.append((c_feat[keep], c_val[keep], c_item[keep].to(torch.int64)))
        n_buf += int(keep.sum())
        if n_buf >= max_buf:
            merge()
    merge()
    return feat.numpy(), _ranks(feat).numpy(), item.numpy(), val.numpy()


def top_items(codes: CodesStore, k: int = 20, reduce: Reduce | None = None) -> pd.DataFrame:
    """The top-k items of every feature: columns feature, rank (0 = highest), item_index, item_id, value."""
    chunks = (codes.shard_item_coo(s, reduce) for s in codes.iter_shards())
    n = len(codes.shard_ids())
    feat, rank, item, val = topk_from_coo(
        track(chunks, "top-k items", total=n), k, codes.info.d_sae
    )
    ids = np.asarray(codes.item_ids, dtype=object)
    return pd.DataFrame(
        {
            "feature": feat.astype(np.int32),
            "rank": rank.astype(np.int16),
            "item_index": item.astype(np.int64),
            "item_id": ids[item] if len(item) else np.zeros(0, dtype=object),
            "value": val.astype(np.float32),
        }
    )


def write_top_items(df: pd.DataFrame, path: Path, *, k: int, reduce: str) -> Path:
    """Write the top-k table as Parquet with its schema version and settings in the metadata."""
    table = pa.Table.from_pandas(df[list(TOPK_COLUMNS)], preserve_index=False)
    meta = {b"vislens.schema_version": str(TOPK_SCHEMA_VERSION).encode(), b"vislens.k": str(k).encode(),
            b"vislens.reduce": reduce.encode()}  # fmt: skip
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp)
    return Path(path)
