"""Nearest words of visual tokens: LatentLens, EmbeddingLens and LogitLens, one table.

- **LatentLens** (Krojer et al., 2026): cosine top-k of each visual token against every
  contextual layer of the bank, then the global top-k across layers; each neighbour keeps
  its contextual layer, caption and position.
- **EmbeddingLens**: cosine top-k against the rows of the LLM's input embedding matrix.
- **LogitLens**: the LLM's final norm then its LM head (the last layer is already normed),
  top-k logits.

All three give rows of one table (``NEIGHBOR_COLUMNS``), one per image x patch x visual
layer x rank x method: ``neighbors.parquet``, which the workbench and DuckDB read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import torch

from vislens.lens.bank import Bank
from vislens.lens.search import in_memory_chunks, merge_layers, topk_cosine
from vislens.lens.visual import VisualBatch
from vislens.models.text import TextLM

METHODS = ("latentlens", "embeddinglens", "logitlens")
NEIGHBOR_COLUMNS = (
    "method", "item_id", "image_idx", "visual_layer", "patch_idx", "patch_row", "patch_col",
    "rank", "token_str", "token_id", "score", "contextual_layer", "caption", "position",
)  # fmt: skip
"""Columns of neighbors.parquet, in order (docs/formats/lens-neighbors.md)."""

Searcher = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class SearchSettings:
    top_k: int = 5
    chunk_rows: int = 65536
    query_chunk: int = 4096
    device: str = "cpu"

    @property
    def compute_dtype(self) -> torch.dtype:
        return torch.float16 if str(self.device).startswith("cuda") else torch.float32


def bank_searchers(bank: Bank, settings: SearchSettings) -> dict[int, Searcher]:
    """Exact chunked scan per contextual layer."""

    def make(layer: int) -> Searcher:
        def search(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return topk_cosine(
                q,
                lambda: bank.iter_chunks(layer, settings.chunk_rows),
                settings.top_k,
                query_chunk=settings.query_chunk,
                device=settings.device,
                compute_dtype=settings.compute_dtype,
                owned_chunks=True,
            )

        return search

    return {layer: make(layer) for layer in bank.layers}


@dataclass
class _Columns:
    cols: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {c: [] for c in NEIGHBOR_COLUMNS}
    )

    def add(self, **values: np.ndarray) -> None:
        for c in NEIGHBOR_COLUMNS:
            self.cols[c].append(np.asarray(values[c]))

    def frame(self) -> pd.DataFrame:
        if not self.cols["method"]:
            return empty_table()
        df = pd.DataFrame({c: np.concatenate(v) for c, v in self.cols.items()})
        return df.astype(cast(Any, COLUMN_DTYPES))


COLUMN_DTYPES = {
    "method": str, "item_id": str, "image_idx": "int64", "visual_layer": "int64",
    "patch_idx": "int64", "patch_row": "int64", "patch_col": "int64", "rank": "int64",
    "token_str": str, "token_id": "int64", "score": "float64", "contextual_layer": "int64",
    "caption": str, "position": "int64",
}  # fmt: skip


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts (typed loosely: cells are whatever the column holds)."""
    return cast(list[dict[str, Any]], df.to_dict("records"))


def groups(df: pd.DataFrame, keys: Any) -> list[tuple[Any, pd.DataFrame]]:
    """``df.groupby(keys, sort=True)`` with keys typed loosely."""
    return cast(list[tuple[Any, pd.DataFrame]], list(df.groupby(keys, sort=True)))


def empty_table() -> pd.DataFrame:
    dtypes: dict[str, Any] = COLUMN_DTYPES
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in NEIGHBOR_COLUMNS})


def _add(
    out: _Columns,
    method: str,
    batch: VisualBatch,
    item_ids: Sequence[str],
    visual_layer: int,
    scores_qk: torch.Tensor,
    token_id_qk: np.ndarray,
    token_str_qk: np.ndarray,
    *,
    contextual_layer_qk: np.ndarray | None = None,
    caption_qk: np.ndarray | None = None,
    position_qk: np.ndarray | None = None,
) -> None:
    b = len(batch.image_idx)
    n = int(batch.grid_rc_n2.shape[0])
    k = int(scores_qk.shape[1])
    shape = (b, n, k)
    rc = batch.grid_rc_n2.numpy()

    def bcast(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, shape).reshape(-1)

    out.add(
        method=np.full(b * n * k, method, dtype=object),
        item_id=bcast(np.asarray(list(item_ids), dtype=object)[:, None, None]),
        image_idx=bcast(np.asarray(batch.image_idx)[:, None, None]),
        visual_layer=np.full(b * n * k, visual_layer),
        patch_idx=bcast(np.arange(n)[None, :, None]),
        patch_row=bcast(rc[None, :, 0:1]),
        patch_col=bcast(rc[None, :, 1:2]),
        rank=bcast(np.arange(1, k + 1)[None, None, :]),
        token_str=token_str_qk.reshape(-1),
        token_id=token_id_qk.reshape(-1),
        score=scores_qk.double().numpy().reshape(-1),
        contextual_layer=np.full(b * n * k, -1)
        if contextual_layer_qk is None
        else contextual_layer_qk.reshape(-1),
        caption=np.full(b * n * k, "", dtype=object)
        if caption_qk is None
        else caption_qk.reshape(-1),
        position=np.full(b * n * k, -1) if position_qk is None else position_qk.reshape(-1),
    )


class LensRunner:
    """The three lenses over visual-token batches; call ``run`` per batch, then ``tables``."""

    def __init__(
        self,
        lm: TextLM,
        bank: Bank,
        settings: SearchSettings,
        *,
        searchers: dict[int, Searcher] | None = None,
        methods: Sequence[str] = METHODS,
    ) -> None:
        self.lm = lm
        self.bank = bank
        self.settings = settings
        self.methods = tuple(methods)
        self.searchers = searchers or bank_searchers(bank, settings)
        meta = bank.metadata
        self.meta_token_str = meta["token_str"].to_numpy(dtype=object)
        self.meta_token_id = meta["token_id"].to_numpy()
        self.meta_caption = meta["caption"].to_numpy(dtype=object)
        self.meta_position = meta["position"].to_numpy()
        self.emb = lm.input_embeddings().to("cpu", torch.float32)
        tok = lm.tokenizer
        n_vocab = max(self.emb.shape[0], int(getattr(lm.lm_head, "out_features", 0)))
        self.vocab_str = np.asarray([tok.decode([i]) for i in range(n_vocab)], dtype=object)
        self.global_rows = _Columns()
        self.by_layer_rows = _Columns()

    def run(self, batch: VisualBatch, item_ids: Sequence[str]) -> None:
        k = self.settings.top_k
        for vl, h_bnd in batch.hidden.items():
            q = h_bnd.reshape(-1, h_bnd.shape[-1])
            b, n = h_bnd.shape[:2]
            if "latentlens" in self.methods:
                per_layer = []
                for cl, search in self.searchers.items():
                    v, r = search(q)
                    per_layer.append((cl, v, r))
                    rows = r.numpy().reshape(b, n, -1)
                    _add(
                        self.by_layer_rows, "latentlens", batch, item_ids, vl, v,
                        self.meta_token_id[rows], self.meta_token_str[rows],
                        contextual_layer_qk=np.full(rows.shape, cl), caption_qk=self.meta_caption[rows],
                        position_qk=self.meta_position[rows],
                    )  # fmt: skip
                v, r, lay = merge_layers(per_layer, k)
                rows = r.numpy().reshape(b, n, -1)
                _add(
                    self.global_rows, "latentlens", batch, item_ids, vl, v,
                    self.meta_token_id[rows], self.meta_token_str[rows],
                    contextual_layer_qk=lay.numpy().reshape(b, n, -1),
                    caption_qk=self.meta_caption[rows], position_qk=self.meta_position[rows],
                )  # fmt: skip
            if "embeddinglens" in self.methods:
                v, ids = topk_cosine(
                    q, in_memory_chunks(self.emb, self.settings.chunk_rows), k,
                    query_chunk=self.settings.query_chunk, device=self.settings.device,
                    compute_dtype=self.settings.compute_dtype,
                )  # fmt: skip
                ids_np = ids.numpy().reshape(b, n, -1)
                _add(
                    self.global_rows,
                    "embeddinglens",
                    batch,
                    item_ids,
                    vl,
                    v,
                    ids_np,
                    self.vocab_str[ids_np],
                )
            if "logitlens" in self.methods:
                vals, idxs = [], []
                for s in range(0, q.shape[0], self.settings.query_chunk):
                    part = q[s : s + self.settings.query_chunk].to(self.lm.device)
                    logits = self.lm.logits(part, normed=vl == self.lm.n_layers).float()
                    v_, i_ = torch.topk(logits, k, dim=1)
                    vals.append(v_.cpu())
                    idxs.append(i_.cpu())
                ids_np = torch.cat(idxs).numpy().reshape(b, n, -1)
                _add(
                    self.global_rows,
                    "logitlens",
                    batch,
                    item_ids,
                    vl,
                    torch.cat(vals),
                    ids_np,
                    self.vocab_str[ids_np],
                )

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(all neighbours: global top-k per method; LatentLens top-k per contextual layer)."""
        return self.global_rows.frame(), self.by_layer_rows.frame()
