"""Encode stored activations (or images) with an SAE into the sparse-code store.

One code shard per activation shard, so an interrupted run resumes shard by shard. The
encoder runs on chunks of token rows small enough that the dense ``[rows, d_sae]``
pre-activation stays within ``max_dense_elems``; each chunk goes straight to CSR through
one reused buffer (see ``encode_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import torch
from safetensors.torch import load_file
from torch import Tensor

from vislens.errors import InputError, ModelError
from vislens.progress import make_progress
from vislens.sae.base import BaseSAE, normalize_in
from vislens.sae.gated_sae import GatedSAE
from vislens.sae.jumprelu_sae import JumpReLUSAE
from vislens.sae.standard_sae import StandardSAE
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


def _fast_kind(sae: BaseSAE) -> str | None:
    """Which fused path reproduces ``sae.encode`` exactly; ``None`` for anything overridden."""
    cls = type(sae)
    if cls.encode_pre is not BaseSAE.encode_pre or cls.encode is not BaseSAE.encode:
        return "gated" if cls is GatedSAE else None
    for kind, base in (("topk", TopKSAE), ("standard", StandardSAE), ("jumprelu", JumpReLUSAE)):
        if isinstance(sae, base) and cls.activation is base.activation:
            return kind
    return None


def _sae_in(sae: BaseSAE, x: Tensor) -> Tensor:
    """The encoder's input exactly as ``BaseSAE.encode_pre`` forms it (row-wise, so chunks agree)."""
    if x.shape[-1] != sae.d_in:
        raise ValueError(f"activations have width {x.shape[-1]} but the SAE reads d_in={sae.d_in}")
    x = x.to(sae.W_enc.dtype)
    sae_in, _ = normalize_in(x, sae.spec.normalize_activations, sae.d_in)
    if sae.spec.apply_b_dec_to_input:
        sae_in = sae_in - sae.b_dec
    return sae_in


def _compact(values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CSR of ``values`` where ``mask``; one scan finds the positions, row-major (features ascending)."""
    n, f = mask.shape
    flat = torch.nonzero(mask.view(-1)).view(-1)
    vals = values.reshape(-1).take(flat)
    rows = torch.div(flat, f, rounding_mode="floor")
    cols = (flat - rows * f).to(torch.int32)
    indptr = torch.searchsorted(
        flat, torch.arange(n + 1, dtype=torch.int64, device=flat.device) * f
    )
    return indptr, cols, vals


_COL_BLOCK = 1 << 16
"""Features per block of the ReLU/JumpReLU/gated encoder (``_encode_thresholded``): whole
rows up to 65,536 features, where measured fastest (narrower blocks cost more in per-block
steps than they win in cache); wider SAEs are split so that a chunk still has enough rows
for the matmul to run at full rate."""
_ROW_BLOCK = 4096
"""At most this many rows per chunk there."""
_TOPK_BLOCK = 32
"""Columns per block in the block-maximum pre-selection of ``_topk``."""


def _topk(h: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """``torch.topk(h, k, dim=-1)`` as a set per row, without a full selection over every row.

    The row's k largest values lie in the k blocks (of ``_TOPK_BLOCK`` columns) with the
    largest maxima: the k-th largest value t is at least the k-th largest block maximum M_k
    (those k maxima are k distinct entries), so any entry ≥ t sits in a block whose maximum
    is ≥ M_k. The top-k of those k·32 candidates is then the row's top-k whenever it is
    unique: exactly k candidates ≥ t, and no block left out whose maximum ties M_k = t.
    Rows that fail the check (ties at the k-th value, NaN) take ``torch.topk`` over the
    whole row, as ``TopKSAE.activation`` does, so its tie-breaking is kept.
    """
    r, f = h.shape
    bs = _TOPK_BLOCK
    nb = f // bs
    if f % bs or nb < 4 * (k + 1) or r == 0:
        return torch.topk(h, k, dim=-1)
    blocks = h.view(r, nb, bs)
    bmax = torch.topk(blocks.amax(-1), k + 1, dim=-1)  # sorted: M_1 ≥ … ≥ M_k+1
    chosen = bmax.indices[:, :k]
    cand = blocks.gather(1, chosen[:, :, None].expand(r, k, bs)).view(r, k * bs)
    top = torch.topk(cand, k, dim=-1)
    t = top.values[:, -1:]
    m_k, m_next = bmax.values[:, k - 1 : k], bmax.values[:, k : k + 1]
    unique = ((cand >= t).sum(1, keepdim=True) == k) & ((t > m_k) | (m_next < m_k))
    which = torch.div(top.indices, bs, rounding_mode="floor")
    vals = top.values
    idx = chosen.gather(1, which) * bs + (top.indices - which * bs)
    if not bool(unique.all()):
        redo = (~unique).view(-1).nonzero().view(-1)
        full = torch.topk(h.index_select(0, redo), k, dim=-1)
        vals[redo], idx[redo] = full.values, full.indices
    return vals, idx


def _topk_csr(sae: BaseSAE, hidden_pre: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The k largest per row (``_topk``), ReLU'd, zeros dropped, features ascending."""
    assert sae.spec.k is not None
    k = min(sae.spec.k, hidden_pre.shape[1])
    top_vals, top_idx = _topk(hidden_pre, k)
    idx, order = torch.sort(top_idx, dim=-1)
    vals = top_vals.gather(1, order)
    keep = vals > 0
    counts = keep.sum(dim=1)
    indptr = torch.zeros(hidden_pre.shape[0] + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    if int(indptr[-1]) == keep.numel():  # the usual case: all k active
        return indptr, idx.view(-1).to(torch.int32), vals.view(-1).to(torch.float32)
    return indptr, idx[keep].to(torch.int32), vals[keep].to(torch.float32)


@torch.no_grad()
def encode_rows(
    sae: BaseSAE, x_rd: Tensor, *, max_dense_elems: int = 1 << 26
) -> tuple[Tensor, Tensor, Tensor]:
    """Codes of ``x_rd`` ([rows, d_in]) as CSR: ``indptr`` int64, ``feature`` int32 (ascending
    within a row), ``value`` float32 — exactly ``dense_to_csr(sae.encode(x_rd))``.

    Rows go through the encoder in chunks whose ``[rows, d_sae]`` pre-activation (one reused
    buffer, plus a boolean mask of the same shape) holds at most ``max_dense_elems`` values.
    Per chunk: one matmul into the buffer; then ReLU, JumpReLU and gated SAEs find their
    non-zeros with one comparison and one scan of the mask (ReLU adds ``b_enc`` to those
    non-zeros only), and TopK adds the bias in place and selects the k largest from the
    blocks with the largest maxima (``_topk``; ``torch.topk`` over the row where ties make
    that ambiguous). Each value comes from the same floating-point operations as in
    ``sae.encode``, so the codes are bit-identical to its dense output for the same rows
    (the BLAS may round differently for other row counts only on tiny shapes). Other SAE
    classes are encoded densely per chunk.
    """
    n, f = x_rd.shape[0], sae.d_sae
    kind = _fast_kind(sae)
    chunk = max(1, min(n, max_dense_elems // f))
    if kind is None:
        parts = [dense_to_csr(sae.encode(x_rd[s : s + chunk])) for s in range(0, n, chunk)]
        return concat_csr(parts)
    sae_in = _sae_in(sae, x_rd)
    if kind == "topk":
        return _encode_topk(sae, sae_in, chunk)
    return _encode_thresholded(sae, sae_in, kind, max_dense_elems)


def _encode_topk(sae: BaseSAE, sae_in: Tensor, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """TopK: whole rows per chunk (the selection needs them), the bias added in place."""
    n, f = sae_in.shape[0], sae.d_sae
    buf = torch.empty(chunk, f, dtype=sae.W_enc.dtype, device=sae_in.device)
    dec_norm = sae.W_dec.norm(dim=-1) if sae.spec.rescale_acts_by_decoder_norm else None
    parts = []
    for s in range(0, n, chunk):
        x = sae_in[s : s + chunk]
        h = torch.mm(x, sae.W_enc, out=buf[: x.shape[0]])
        h.add_(sae.b_enc)
        if dec_norm is not None:
            h.mul_(dec_norm)
        parts.append(_topk_csr(sae, h))
    return parts[0] if len(parts) == 1 else concat_csr(parts)  # concat_csr([]) is 0 rows


def _encode_thresholded(
    sae: BaseSAE, sae_in: Tensor, kind: str, max_dense_elems: int
) -> tuple[Tensor, Tensor, Tensor]:
    """ReLU, JumpReLU, gated: each feature decides alone, so the pre-activation can be
    computed in blocks of ``_COL_BLOCK`` features × up to ``_ROW_BLOCK`` rows (at most
    ``max_dense_elems``); the blocks of a row chunk are then interleaved into row-major CSR."""
    n, f = sae_in.shape[0], sae.d_sae
    cb = min(f, _COL_BLOCK)
    chunk = max(1, min(n, _ROW_BLOCK, max_dense_elems // cb))
    dtype, dev = sae.W_enc.dtype, sae_in.device
    buf = torch.empty(chunk * cb, dtype=dtype, device=dev)
    mask = torch.empty(chunk * cb, dtype=torch.bool, device=dev)
    w_enc = sae.W_enc
    bias = cast(Tensor, getattr(sae, "b_gate" if kind == "gated" else "b_enc"))
    neg_bias = -bias
    if kind == "gated":
        assert isinstance(sae, GatedSAE)
        w_mag, b_mag = sae.W_enc * sae.r_mag.exp(), cast(Tensor, sae.b_mag)
        mag = torch.empty(chunk * cb, dtype=dtype, device=dev)
        mag_mask = torch.empty(chunk * cb, dtype=torch.bool, device=dev)
    if kind == "jumprelu":
        assert isinstance(sae, JumpReLUSAE)
        # relu(h) * (h > t) is non-zero exactly where h > max(t, 0), and then equals h
        floor = sae.threshold.detach().clamp_min(0)
    parts = []
    for s in range(0, n, chunk):
        x = sae_in[s : s + chunk]
        r = x.shape[0]
        blocks = []
        for j in range(0, f, cb):
            c = min(cb, f - j)
            cols_j = slice(j, j + c)
            h = torch.mm(x, w_enc[:, cols_j], out=buf[: r * c].view(r, c))
            m = mask[: r * c].view(r, c)
            if kind == "standard":
                # a + b > 0 exactly when a > -b (a rounded sum keeps the sign of the exact
                # one), so the bias is added to the non-zeros only: the same addition
                ptr, cols, vals = _compact(h, torch.gt(h, neg_bias[cols_j], out=m))
                vals = vals + bias[cols_j].index_select(0, cols)
            else:
                h.add_(bias[cols_j])
                if kind == "jumprelu":
                    torch.gt(h, floor[cols_j], out=m)
                else:  # gated: the magnitude where the gate is open and the magnitude positive
                    torch.gt(h, 0, out=m)
                    h = torch.mm(x, w_mag[:, cols_j], out=mag[: r * c].view(r, c))
                    h.add_(b_mag[cols_j])
                    m.logical_and_(torch.gt(h, 0, out=mag_mask[: r * c].view(r, c)))
                ptr, cols, vals = _compact(h, m)
            blocks.append((ptr, cols + j if j else cols, vals.to(torch.float32)))
        parts.append(blocks[0] if len(blocks) == 1 else _merge_column_blocks(blocks))
    return parts[0] if len(parts) == 1 else concat_csr(parts)  # concat_csr([]) is 0 rows


def _merge_column_blocks(
    blocks: list[tuple[Tensor, Tensor, Tensor]],
) -> tuple[Tensor, Tensor, Tensor]:
    """Row-major CSR of the same rows split into consecutive feature blocks (each a CSR)."""
    counts = torch.stack([p[1:] - p[:-1] for p, _, _ in blocks])  # [blocks, rows]
    indptr = torch.zeros(counts.shape[1] + 1, dtype=torch.int64, device=counts.device)
    torch.cumsum(counts.sum(0), 0, out=indptr[1:])
    before = counts.cumsum(0) - counts  # entries of the row in earlier blocks
    nnz = int(indptr[-1])
    feats = torch.empty(nnz, dtype=torch.int32, device=counts.device)
    vals = torch.empty(nnz, dtype=torch.float32, device=counts.device)
    for b, (ptr, f_b, v_b) in enumerate(blocks):
        shift = indptr[:-1] + before[b] - ptr[:-1]
        pos = torch.repeat_interleave(shift, counts[b]) + torch.arange(
            f_b.numel(), dtype=torch.int64, device=counts.device
        )
        feats[pos] = f_b
        vals[pos] = v_b
    return indptr, feats, vals


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
    max_dense_elems: int = 1 << 26,
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
