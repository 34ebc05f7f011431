"""Encode stored activations (or images) with an SAE into the sparse-code store.

One code shard per activation shard, so an interrupted run resumes shard by shard. The
encoder runs on batches of token rows small enough that the dense ``[rows, d_sae]``
pre-activation stays within ``max_dense_elems``; each batch is turned into CSR at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file
from torch import Tensor

from vislens.errors import InputError, ModelError
from vislens.progress import make_progress
from vislens.sae.base import BaseSAE
from vislens.sae.topk_sae import TopKSAE
from vislens.store.activations import ActivationStore, shard_path
from vislens.store.codes import CodesInfo, CodesStore, CodesWriter, concat_csr, dense_to_csr

TokenChoice = Literal["auto", "cls", "patches", "all"]


@dataclass(frozen=True)
class TokenPlan:
    """Which stored tokens to encode and how the codes' token layout looks."""

    start: int
    stop: int
    tokens: str
    has_cls: bool
    n_prefix_tokens: int

    @property
    def n_tokens(self) -> int:
        return self.stop - self.start


def plan_tokens(store: ActivationStore, sae: BaseSAE, choice: TokenChoice) -> TokenPlan:
    """Map the user's token choice onto the stored layout, with errors that say what exists."""
    info = store.info
    if choice == "auto":
        choice = "cls" if sae.spec.token_scope == "cls" else "all"
    if info.n_tokens == 1 or info.tokens in ("cls", "mean"):
        if choice == "patches":
            raise InputError(
                f"{store.root}: activations hold one token per item ('{info.tokens}'); re-extract with tokens='all' for patches"
            )
        return TokenPlan(0, 1, info.tokens, info.tokens == "cls", 1 if info.tokens == "cls" else 0)
    if choice == "cls":
        if not (info.has_cls and info.tokens == "all"):
            raise InputError(
                f"{store.root}: no CLS token stored (tokens='{info.tokens}', has_cls={info.has_cls})"
            )
        return TokenPlan(0, 1, "cls", True, 1)
    prefix = info.n_prefix_tokens if info.tokens == "all" else 0
    if choice == "patches":
        return TokenPlan(prefix, info.n_tokens, "patches", False, 0)
    return TokenPlan(0, info.n_tokens, info.tokens, info.has_cls and info.tokens == "all", prefix)


def check_compatible(sae: BaseSAE, store: ActivationStore, layer: int) -> None:
    """A wrong width or hook layer is a clear ModelError rather than garbage codes."""
    if sae.d_in != store.info.d_model:
        raise ModelError(
            f"the SAE reads d_in={sae.d_in} but {store.info.model} stores d_model={store.info.d_model} "
            f"(layer {layer}); use an SAE trained on this model"
        )
    if not sae.spec.hook_residual:
        raise ModelError(
            f"the SAE was trained on '{sae.spec.hook_name}', which is not a residual-stream position; "
            f"vislens stores residual streams, so its codes on layer {layer} would not be the SAE's "
            "features — pass --allow-layer-mismatch to encode anyway"
        )
    if sae.spec.hook_layer is not None and sae.spec.hook_layer != layer:
        raise ModelError(
            f"the SAE was trained on layer {sae.spec.hook_layer} ({sae.spec.hook_name or 'no hook name'}) "
            f"but layer {layer} was requested; pass --layer {sae.spec.hook_layer} (extract it first if needed) "
            "or --allow-layer-mismatch"
        )


@torch.no_grad()
def encode_rows(
    sae: BaseSAE, x_rd: Tensor, *, max_dense_elems: int = 1 << 24
) -> tuple[Tensor, Tensor, Tensor]:
    """Codes of ``x_rd`` ([rows, d_in]) as CSR, in batches that bound the dense temporary."""
    batch = max(1, max_dense_elems // sae.d_sae)
    parts = []
    for s in range(0, x_rd.shape[0], batch):
        x = x_rd[s : s + batch]
        if isinstance(sae, TopKSAE):  # top-k gives the sparse pattern directly: skip the dense scan
            hidden_pre, _ = sae.encode_pre(x)
            assert sae.spec.k is not None
            top = torch.topk(hidden_pre, sae.spec.k, dim=-1, sorted=False)
            vals = torch.relu(top.values)
            keep = vals > 0
            counts = keep.sum(dim=1)
            indptr = torch.zeros(x.shape[0] + 1, dtype=torch.int64)
            torch.cumsum(counts, 0, out=indptr[1:])
            parts.append((indptr, top.indices[keep].to(torch.int32), vals[keep].float()))
        else:
            parts.append(dense_to_csr(sae.encode(x)))
    return concat_csr(parts)


def _check_finite(
    acts: Tensor, store: ActivationStore, layer: int, item_index: Tensor, ids: list[str]
) -> None:
    bad = ~torch.isfinite(acts.reshape(acts.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        first = int(item_index[bad.nonzero()[0, 0]])
        raise InputError(
            f"{store.root}: layer {layer} has NaN/inf activations for {int(bad.sum())} item(s), first "
            f"'{ids[first]}' (item_index {first}); re-extract (a float16 overflow is the usual cause)"
        )


def encode_store(
    sae: BaseSAE,
    store: ActivationStore,
    codes_dir: Path,
    *,
    layer: int | None = None,
    tokens: TokenChoice = "auto",
    sae_name: str = "",
    top_n: int = 10,
    overwrite: bool = False,
    allow_layer_mismatch: bool = False,
    max_dense_elems: int = 1 << 24,
) -> CodesStore:
    """Encode every complete activation shard of ``layer`` into ``codes_dir``; resumable."""
    if layer is None:
        layer = sae.spec.hook_layer if sae.spec.hook_layer is not None else store.layers[-1]
    if layer not in store.layers:
        raise InputError(
            f"{store.root}: layer {layer} was not extracted (stored: {store.layers}); extract it first"
        )
    if not allow_layer_mismatch or sae.d_in != store.info.d_model:
        check_compatible(sae, store, layer)
    plan = plan_tokens(store, sae, tokens)
    ids = store.item_ids
    info = CodesInfo(
        d_sae=sae.d_sae, n_tokens=plan.n_tokens, tokens=plan.tokens, has_cls=plan.has_cls,
        n_prefix_tokens=plan.n_prefix_tokens, grid_h=store.info.grid_h, grid_w=store.info.grid_w,
        n_items=store.info.n_items, shard_size=store.info.shard_size, layer=layer, sae=sae_name, top_n=top_n,
    )  # fmt: skip
    writer = CodesWriter(codes_dir, info, ids, overwrite=overwrite)
    sae.eval()
    todo = [k for k in store.complete_shards if not writer.is_complete(k)]
    with make_progress() as progress:
        task = progress.add_task(f"encode layer {layer}", total=len(todo))
        for k in todo:
            t = load_file(str(shard_path(store.root, layer, k)))
            acts, item_index = t["acts"], t["item_index"]
            if acts.dim() == 2:
                acts = acts[:, None, :]
            acts = acts[:, plan.start : plan.stop]
            _check_finite(acts, store, layer, item_index, ids)
            csr = encode_rows(
                sae, acts.reshape(-1, acts.shape[-1]).float(), max_dense_elems=max_dense_elems
            )
            writer.write_shard(k, item_index, csr)
            progress.advance(task)
    return CodesStore.open(codes_dir)
