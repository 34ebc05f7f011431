"""The sparse-code store: SAE feature activations per item and token, in CSR shards.

Layout and columns are specified in docs/formats/sae-codes.md. A shard holds, for
``n`` items of ``n_tokens`` tokens each, ``R = n * n_tokens`` rows (row = local item ×
n_tokens + token) in compressed sparse row form: ``indptr [R+1]``, ``feature [nnz]``,
``value [nnz]``; plus ``item_index [n]``. Next to it ``summary_{k}.parquet`` has one row
per (item, token) with ``num_active`` and the top features — seed 001's SAEFeatureResult.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from jaxtyping import Float, Int64
from safetensors.torch import load_file, save_file
from torch import Tensor

import vislens
from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ITEMS_FILE = "items.parquet"
Reduce = Literal["cls", "max", "mean"]


@dataclass
class CodesInfo:
    """The manifest of a codes store (docs/formats/sae-codes.md)."""

    d_sae: int
    n_tokens: int
    tokens: str
    """``cls``, ``patches``, ``all`` or ``mean``: which activation tokens were encoded."""
    has_cls: bool
    n_prefix_tokens: int
    grid_h: int
    grid_w: int
    n_items: int
    shard_size: int
    layer: int | None = None
    sae: str = ""
    top_n: int = 10
    schema_version: int = SCHEMA_VERSION
    vislens_version: str = vislens.__version__
    complete_shards: list[int] = field(default_factory=list)

    def default_reduce(self) -> Reduce:
        """``cls`` when there is one token or a CLS token, else ``max`` over patches."""
        return "cls" if self.n_tokens == 1 or self.has_cls else "max"


@dataclass
class CodesShard:
    """One shard in CSR form; rows are ``local_item * n_tokens + token``."""

    item_index: Int64[Tensor, " n"]
    indptr: Int64[Tensor, " r1"]
    feature: Tensor
    value: Float[Tensor, " nnz"]
    n_tokens: int

    def row_ids(self) -> Int64[Tensor, " nnz"]:
        counts = self.indptr[1:] - self.indptr[:-1]
        return torch.repeat_interleave(torch.arange(len(counts), dtype=torch.int64), counts)


def dense_to_csr(codes_rf: Float[Tensor, "r f"]) -> tuple[Tensor, Tensor, Tensor]:
    """``(indptr int64 [r+1], feature int32 [nnz], value float32 [nnz])`` of the non-zeros, row-major."""
    rows, cols = torch.nonzero(codes_rf, as_tuple=True)
    counts = torch.bincount(rows, minlength=codes_rf.shape[0])
    indptr = torch.zeros(codes_rf.shape[0] + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr, cols.to(torch.int32), codes_rf[rows, cols].to(torch.float32)


def concat_csr(parts: list[tuple[Tensor, Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """Stack CSR blocks vertically."""
    indptrs, feats, vals, offset = [torch.zeros(1, dtype=torch.int64)], [], [], 0
    for indptr, feat, val in parts:
        indptrs.append(indptr[1:] + offset)
        offset += int(indptr[-1])
        feats.append(feat)
        vals.append(val)
    cat = torch.cat
    return (
        cat(indptrs),
        cat(feats) if feats else torch.zeros(0, dtype=torch.int32),
        cat(vals) if vals else torch.zeros(0),
    )


def _summary_table(shard: CodesShard, item_ids: list[str], top_n: int) -> pa.Table:
    """One row per (item, token): num_active and the top features by value (ties: lower index)."""
    ptr = shard.indptr.numpy()
    n_rows = len(ptr) - 1
    counts = np.diff(ptr)
    feats, vals = shard.feature.numpy(), shard.value.numpy()
    rows = np.repeat(np.arange(n_rows), counts)
    order = np.lexsort((feats, -vals, rows))  # by row, then value descending
    rank = np.arange(len(order)) - ptr[rows[order]]
    keep = order[rank < top_n]
    n_top = np.minimum(counts, top_n)
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(n_top, out=offsets[1:])
    t = shard.n_tokens
    idx = shard.item_index.numpy()[np.arange(n_rows) // t]
    return pa.table(
        {
            "item_index": pa.array(idx, pa.int64()),
            "item_id": pa.array([item_ids[i] for i in idx], pa.string()),
            "token": pa.array(np.arange(n_rows) % t, pa.int32()),
            "num_active": pa.array(counts, pa.int32()),
            "top_features": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(feats[keep], pa.int32())
            ),
            "top_values": pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(vals[keep], pa.float32())
            ),
        }
    )


class CodesWriter:
    """Writes shards atomically and records them in the manifest; resumes where it stopped."""

    def __init__(
        self, codes_dir: Path, info: CodesInfo, item_ids: list[str], *, overwrite: bool = False
    ) -> None:
        self.dir = Path(codes_dir)
        self.item_ids = list(item_ids)
        if len(self.item_ids) != info.n_items:
            raise ValueError(f"{len(self.item_ids)} item ids for n_items={info.n_items}")
        manifest = self.dir / MANIFEST
        if manifest.is_file() and not overwrite:
            old = CodesStore.open(self.dir).info
            same = {
                k: v
                for k, v in asdict(old).items()
                if k not in ("complete_shards", "vislens_version")
            }
            new = {
                k: v
                for k, v in asdict(info).items()
                if k not in ("complete_shards", "vislens_version")
            }
            if same != new:
                diff = sorted(k for k in same if same[k] != new.get(k))
                raise InputError(
                    f"{manifest}: an existing code store was written with different settings ({diff}); "
                    "pass overwrite=True (--overwrite) to replace it"
                )
            info.complete_shards = list(old.complete_shards)
        else:
            info.complete_shards = []
        self.info = info
        self.dir.mkdir(parents=True, exist_ok=True)
        items = pa.table({"item_index": pa.array(range(len(self.item_ids)), pa.int64()),
                          "item_id": pa.array(self.item_ids, pa.string())})  # fmt: skip
        with atomic_path(self.dir / ITEMS_FILE) as tmp:
            pq.write_table(items, tmp)
        write_json_atomic(manifest, asdict(self.info))

    def is_complete(self, shard: int) -> bool:
        return shard in self.info.complete_shards

    def write_shard(
        self, shard: int, item_index: Tensor, csr: tuple[Tensor, Tensor, Tensor]
    ) -> None:
        """Write shard ``shard`` (rows for ``item_index`` items × n_tokens) and mark it complete."""
        indptr, feature, value = csr
        n_rows = len(item_index) * self.info.n_tokens
        if len(indptr) != n_rows + 1:
            raise ValueError(f"indptr has {len(indptr)} entries for {n_rows} rows")
        data = CodesShard(item_index.to(torch.int64), indptr.to(torch.int64), feature.to(torch.int32),
                          value.to(torch.float32), self.info.n_tokens)  # fmt: skip
        with atomic_path(self.dir / f"shard_{shard:05d}.safetensors") as tmp:
            save_file({"item_index": data.item_index.contiguous(), "indptr": data.indptr.contiguous(),
                       "feature": data.feature.contiguous(), "value": data.value.contiguous()}, str(tmp))  # fmt: skip
        with atomic_path(self.dir / f"summary_{shard:05d}.parquet") as tmp:
            pq.write_table(_summary_table(data, self.item_ids, self.info.top_n), tmp)
        self.info.complete_shards = sorted({*self.info.complete_shards, shard})
        write_json_atomic(self.dir / MANIFEST, asdict(self.info))


class CodesStore:
    """Read side of the code store."""

    def __init__(self, codes_dir: Path, info: CodesInfo, item_ids: list[str]) -> None:
        self.dir = codes_dir
        self.info = info
        self.item_ids = item_ids

    @classmethod
    def open(cls, codes_dir: Path) -> CodesStore:
        codes_dir = Path(codes_dir)
        path = codes_dir / MANIFEST
        if not path.is_file():
            raise InputError(f"{path}: no code store here — run `vislens sae encode` first")
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("schema_version", 0) > SCHEMA_VERSION:
            raise InputError(
                f"{path}: schema_version {raw['schema_version']} is newer than this vislens reads; upgrade vislens"
            )
        known = CodesInfo.__dataclass_fields__
        info = CodesInfo(**{k: v for k, v in raw.items() if k in known})
        ids = pq.read_table(codes_dir / ITEMS_FILE).column("item_id").to_pylist()
        return cls(codes_dir, info, ids)

    @property
    def n_items(self) -> int:
        return self.info.n_items

    def shard_ids(self) -> list[int]:
        return sorted(self.info.complete_shards)

    def read_shard(self, shard: int) -> CodesShard:
        t = load_file(str(self.dir / f"shard_{shard:05d}.safetensors"))
        return CodesShard(
            t["item_index"], t["indptr"], t["feature"], t["value"], self.info.n_tokens
        )

    def iter_shards(self) -> Iterator[CodesShard]:
        for k in self.shard_ids():
            yield self.read_shard(k)

    def summary(self) -> pd.DataFrame:
        """Every (item, token) row's num_active and top features (seed 001's SAEFeatureResult)."""
        paths = [self.dir / f"summary_{k:05d}.parquet" for k in self.shard_ids()]
        return (
            pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
            if paths
            else pd.DataFrame()
        )

    # -- per-item values -----------------------------------------------------------------
    def _check_reduce(self, reduce: Reduce | None) -> Reduce:
        reduce = reduce or self.info.default_reduce()
        if reduce == "cls" and not (self.info.has_cls or self.info.n_tokens == 1):
            raise InputError(
                f"{self.dir}: these codes have no CLS token; use reduce 'max' or 'mean'"
            )
        if reduce not in ("cls", "max", "mean"):
            raise InputError(f"reduce must be cls, max or mean (got {reduce!r})")
        return reduce

    def shard_item_coo(
        self, shard: CodesShard, reduce: Reduce | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Per-item values of one shard as COO ``(item_index, feature, value)``, unique pairs.

        ``cls``: the CLS (or only) token; ``max`` / ``mean``: over the patch-grid tokens.
        """
        reduce = self._check_reduce(reduce)
        t, prefix = self.info.n_tokens, self.info.n_prefix_tokens
        rows = shard.row_ids()
        local, tok = rows // t, rows % t
        feat = shard.feature.to(torch.int64)
        if reduce == "cls" or t == 1:
            keep = tok == 0
            return shard.item_index[local[keep]], feat[keep], shard.value[keep]
        keep = tok >= prefix
        f = self.info.d_sae
        key = local[keep] * f + feat[keep]
        uniq, inv = torch.unique(key, return_inverse=True)
        vals = shard.value[keep]
        if reduce == "max":
            out = torch.zeros(len(uniq), dtype=vals.dtype).scatter_reduce_(
                0, inv, vals, "amax", include_self=False
            )
        else:
            out = torch.zeros(len(uniq), dtype=vals.dtype).index_add_(0, inv, vals) / (t - prefix)
        return shard.item_index[uniq // f], uniq % f, out

    def item_matrix(self, reduce: Reduce | None = None):  # -> scipy.sparse.csr_matrix
        """All items' values as a scipy CSR matrix ``[n_items, d_sae]`` (rows = item_index)."""
        import scipy.sparse as sp

        parts = [self.shard_item_coo(s, reduce) for s in self.iter_shards()]
        if not parts:
            raise InputError(f"{self.dir}: the code store has no complete shards")
        items = torch.cat([p[0] for p in parts]).numpy()
        feats = torch.cat([p[1] for p in parts]).numpy()
        vals = torch.cat([p[2] for p in parts]).numpy()
        return sp.csr_matrix((vals, (items, feats)), shape=(self.n_items, self.info.d_sae))

    def item_rows(self, item: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(features, values)]`` for each token of one item (by item_index)."""
        shard = item // self.info.shard_size
        if shard not in self.info.complete_shards:
            raise InputError(
                f"{self.dir}: item {item} is in shard {shard}, which is not written yet"
            )
        s = self.read_shard(shard)
        local = int(torch.nonzero(s.item_index == item)[0, 0])
        out = []
        for tok in range(self.info.n_tokens):
            r = local * self.info.n_tokens + tok
            a, b = int(s.indptr[r]), int(s.indptr[r + 1])
            out.append((s.feature[a:b].numpy().astype(np.int64), s.value[a:b].numpy()))
        return out

    def item_index_of(self, item_id: str) -> int:
        try:
            return self.item_ids.index(item_id)
        except ValueError:
            raise InputError(f"{self.dir}: no item with id '{item_id}' in the code store") from None
