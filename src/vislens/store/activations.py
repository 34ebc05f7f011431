"""The sharded activation store: see docs/formats/activations.md.

``ActivationWriter`` writes one shard at a time, each layer's file atomically, and records
the shard in manifest.json only once every layer of it is on disk — so a run killed at any
moment leaves a store that ``pending_shards`` resumes exactly. ``ActivationStore`` reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

import vislens
from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ITEMS = "items.parquet"


@dataclass(frozen=True)
class StoreInfo:
    """What every shard of a store holds (manifest.json minus the progress fields)."""

    model: str
    model_type: str
    layers: list[int]
    tokens: str
    has_cls: bool
    n_prefix_tokens: int
    grid_h: int
    grid_w: int
    n_tokens: int
    d_model: int
    dtype: str
    shard_size: int
    n_items: int
    items_sha256: str

    @property
    def n_shards(self) -> int:
        return -(-self.n_items // self.shard_size)

    def shard_bounds(self, k: int) -> tuple[int, int]:
        """Item range ``[start, stop)`` of shard ``k``."""
        if not 0 <= k < self.n_shards:
            raise IndexError(f"shard {k} out of range 0..{self.n_shards - 1}")
        start = k * self.shard_size
        return start, min(start + self.shard_size, self.n_items)


def items_digest(item_ids: Sequence[str]) -> str:
    """A digest of the item order, so a resumed run can prove it sees the same items."""
    h = hashlib.sha256()
    for item_id in item_ids:
        h.update(item_id.encode("utf-8") + b"\0")
    return h.hexdigest()


def layer_dir(root: Path, layer: int) -> Path:
    return Path(root) / f"layer_{layer:02d}"


def shard_path(root: Path, layer: int, k: int) -> Path:
    return layer_dir(root, layer) / f"shard_{k:05d}.safetensors"


def _read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise InputError(f"{path}: no activation store here — run `vislens extract STUDY` first")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg})") from None
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {version!r}; this vislens reads {SCHEMA_VERSION} — upgrade vislens"
        )
    return manifest


def _info_from_manifest(manifest: dict[str, Any]) -> StoreInfo:
    fields = StoreInfo.__dataclass_fields__
    return StoreInfo(**{k: manifest[k] for k in fields})


class ActivationWriter:
    """Writes shards into ``root`` for a fixed ``StoreInfo``; resumes a compatible store."""

    def __init__(
        self, root: Path, info: StoreInfo, item_ids: Sequence[str], *, overwrite: bool = False
    ) -> None:
        self.root = Path(root)
        self.info = info
        if len(item_ids) != info.n_items:
            raise ValueError("item_ids must have n_items entries")
        manifest_path = self.root / MANIFEST
        if manifest_path.exists() and not overwrite:
            existing = _read_manifest(self.root)
            old = _info_from_manifest(existing)
            if old != info:
                diff = [k for k in asdict(info) if asdict(info)[k] != asdict(old)[k]]
                raise InputError(
                    f"{manifest_path}: the stored activations were made with other settings "
                    f"({', '.join(diff)} differ) — pass --overwrite to replace them"
                )
            self.complete = set(existing.get("complete_shards", []))
            # A killed run can leave temporary files behind; they were never part of the store.
            for tmp in self.root.glob("layer_*/.*.tmp"):
                tmp.unlink()
        else:
            self._clear()
            self.complete = set()
            table = pa.table(
                {
                    "item_index": pa.array(np.arange(len(item_ids)), pa.int64()),
                    "item_id": pa.array(list(item_ids), pa.string()),
                }
            )
            with atomic_path(self.root / ITEMS) as tmp:
                pq.write_table(table, tmp)
            self._write_manifest()

    def _clear(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for p in [self.root / MANIFEST, self.root / ITEMS]:
            p.unlink(missing_ok=True)
        for d in self.root.glob("layer_*"):
            for f in d.glob("*.safetensors"):
                f.unlink()

    def _write_manifest(self) -> None:
        manifest = {"schema_version": SCHEMA_VERSION, "vislens_version": vislens.__version__}
        manifest |= asdict(self.info)
        manifest["complete_shards"] = sorted(self.complete)
        write_json_atomic(self.root / MANIFEST, manifest)

    def pending_shards(self) -> list[int]:
        return [k for k in range(self.info.n_shards) if k not in self.complete]

    def write_shard(self, k: int, acts_by_layer: dict[int, Tensor]) -> None:
        """Write shard ``k`` (every layer), then mark it complete in the manifest."""
        start, stop = self.info.shard_bounds(k)
        item_index = torch.arange(start, stop, dtype=torch.int64)
        if set(acts_by_layer) != set(self.info.layers):
            raise ValueError(
                f"shard {k}: expected layers {self.info.layers}, got {sorted(acts_by_layer)}"
            )
        for layer, acts in acts_by_layer.items():
            if acts.shape[0] != stop - start:
                raise ValueError(
                    f"shard {k}, layer {layer}: {acts.shape[0]} rows, expected {stop - start}"
                )
            path = shard_path(self.root, layer, k)
            with atomic_path(path) as tmp:
                save_file(
                    {"acts": acts.contiguous(), "item_index": item_index},
                    str(tmp),
                    metadata={"layer": str(layer), "shard": str(k)},
                )
        self.complete.add(k)
        self._write_manifest()


class ActivationStore:
    """Read access to a complete (or partially written) activation store."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = Path(root)
        self.info = _info_from_manifest(manifest)
        self.complete_shards: list[int] = sorted(manifest.get("complete_shards", []))

    @classmethod
    def open(cls, root: Path) -> ActivationStore:
        return cls(Path(root), _read_manifest(Path(root)))

    @property
    def layers(self) -> list[int]:
        return list(self.info.layers)

    @property
    def is_complete(self) -> bool:
        return len(self.complete_shards) == self.info.n_shards

    @property
    def item_ids(self) -> list[str]:
        return [str(x) for x in pq.read_table(self.root / ITEMS).column("item_id").to_pylist()]

    def _check_layer(self, layer: int) -> None:
        if layer not in self.info.layers:
            raise InputError(
                f"{self.root}: layer {layer} was not extracted (stored: {self.info.layers})"
            )

    def iter_shards(self, layer: int) -> Iterator[tuple[np.ndarray, Tensor]]:
        """Yield ``(item_index int64[n], acts)`` for every complete shard of ``layer``, in order.

        ``acts`` is ``[n, n_tokens, d_model]`` for tokens patches/all, ``[n, d_model]`` for cls/mean.
        """
        self._check_layer(layer)
        for k in self.complete_shards:
            tensors = load_file(str(shard_path(self.root, layer, k)))
            yield tensors["item_index"].numpy(), tensors["acts"]

    def load(self, layer: int) -> Tensor:
        """Every stored item of ``layer`` as one tensor (rows in item order)."""
        if not self.is_complete:
            raise InputError(
                f"{self.root}: extraction is not finished — re-run `vislens extract` to complete it"
            )
        return torch.cat([acts for _, acts in self.iter_shards(layer)], dim=0)
