"""Shared pieces of the SAE tests: random SAEs, slow reference formulas, planted data."""

from __future__ import annotations

import numpy as np
import torch

from vislens.sae.base import BaseSAE
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec

ARCHS = ("standard", "topk", "jumprelu", "gated")
NORMS = ("none", "layer_norm", "constant_norm_rescale")


def random_sae(arch: str = "standard", *, d_in: int = 12, d_sae: int = 40, k: int = 5, norm: str = "none",
               apply_b_dec: bool = True, hook_layer: int | None = None, seed: int = 0) -> BaseSAE:  # fmt: skip
    """An SAE with random weights and non-zero biases (so b_dec handling matters)."""
    spec = SAESpec(
        d_in=d_in,
        d_sae=d_sae,
        architecture=arch,
        k=k if arch == "topk" else None,  # type: ignore[arg-type]
        normalize_activations=norm,
        apply_b_dec_to_input=apply_b_dec,
        hook_layer=hook_layer,
    )  # type: ignore[arg-type]
    sae = build_sae(spec)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if arch == "jumprelu":
            sae.threshold.copy_(torch.rand(d_sae, generator=g) * 0.5)  # type: ignore[operator]
    return sae.eval().requires_grad_(False)


def ref_encode(x: np.ndarray, W_enc, b_enc, b_dec, *, arch: str, k: int | None = None, threshold=None,
               norm: str = "none", apply_b_dec: bool = True, rescale=None) -> np.ndarray:  # fmt: skip
    """The SAELens / ViT-Prisma formula written out token by token in float64 numpy."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((x.shape[0], W_enc.shape[1]))
    if rescale is not None:  # SAELens TopK rescale_acts_by_decoder_norm: ‖W_dec,i‖ per feature
        W_enc, b_enc = W_enc * rescale, b_enc * rescale
    for i, row in enumerate(x):
        if norm == "layer_norm":
            mu = row.mean()
            std = np.sqrt(((row - mu) ** 2).sum() / (len(row) - 1))  # unbiased, as torch.std
            row = (row - mu) / (std + 1e-5)
        elif norm == "constant_norm_rescale":
            row = row * np.sqrt(len(row)) / np.linalg.norm(row)
        if apply_b_dec:
            row = row - b_dec
        h = row @ W_enc + b_enc
        if arch == "none":  # the processed input itself (for composing other references)
            f = h
        elif arch == "standard":
            f = np.maximum(h, 0)
        elif arch == "jumprelu":
            f = np.where(h > threshold, np.maximum(h, 0), 0.0)
        else:
            f = np.zeros_like(h)
            top = np.argsort(-h, kind="stable")[:k]
            f[top] = np.maximum(h[top], 0)
        out[i] = f
    return out


def ref_encode_gated(x: np.ndarray, sae: BaseSAE) -> np.ndarray:
    """SAELens' GatedSAE.encode (= ViT-Prisma's encode_gated) in float64 numpy."""
    n = {k: v.detach().double().numpy() for k, v in sae.named_parameters()}
    base = ref_encode(x, np.eye(x.shape[1]), np.zeros(x.shape[1]), n["b_dec"], arch="none",
                      norm=sae.spec.normalize_activations, apply_b_dec=sae.spec.apply_b_dec_to_input)  # fmt: skip
    gate = (base @ n["W_enc"] + n["b_gate"]) > 0
    mag = np.maximum(base @ (n["W_enc"] * np.exp(n["r_mag"])) + n["b_mag"], 0)
    return gate * mag


def sae_ref_encode(sae: BaseSAE, x: np.ndarray) -> np.ndarray:
    s = sae.spec
    if s.architecture == "gated":
        return ref_encode_gated(x, sae)
    thr = sae.threshold.detach().double().numpy() if s.architecture == "jumprelu" else None  # type: ignore[union-attr]
    return ref_encode(x, sae.W_enc.detach().double().numpy(), sae.b_enc.detach().double().numpy(),
                      sae.b_dec.detach().double().numpy(), arch=s.architecture, k=s.k, threshold=thr,
                      norm=s.normalize_activations, apply_b_dec=s.apply_b_dec_to_input,
                      rescale=np.linalg.norm(sae.W_dec.detach().double().numpy(), axis=1)
                      if s.rescale_acts_by_decoder_norm else None)  # fmt: skip


def planted_data(
    n_rows: int, d: int, n_dirs: int, k: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows that are sums of ``k`` of ``n_dirs`` unit directions with coefficients in [1, 2]."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(n_dirs, d, generator=g)
    dirs /= dirs.norm(dim=1, keepdim=True)
    idx = torch.argsort(torch.rand(n_rows, n_dirs, generator=g), dim=1)[:, :k]
    coef = torch.rand(n_rows, k, generator=g) + 1.0
    x = (coef[:, :, None] * dirs[idx]).sum(dim=1)
    return x, dirs


def random_sparse(rng: np.random.Generator, n: int, f: int, density: float) -> np.ndarray:
    """A dense non-negative matrix with about ``density`` non-zeros."""
    return (rng.random((n, f)) < density) * rng.random((n, f)).astype(np.float32)
