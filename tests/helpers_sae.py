"""Shared pieces of the SAE tests: random SAEs, slow reference formulas, planted data."""

from __future__ import annotations

import numpy as np
import torch

from vislens.sae.base import BaseSAE
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec

ARCHS = ("standard", "topk", "jumprelu")
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
               norm: str = "none", apply_b_dec: bool = True) -> np.ndarray:  # fmt: skip
    """The SAELens / ViT-Prisma formula written out token by token in float64 numpy."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros((x.shape[0], W_enc.shape[1]))
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
        if arch == "standard":
            f = np.maximum(h, 0)
        elif arch == "jumprelu":
            f = np.where(h > threshold, np.maximum(h, 0), 0.0)
        else:
            f = np.zeros_like(h)
            top = np.argsort(-h, kind="stable")[:k]
            f[top] = np.maximum(h[top], 0)
        out[i] = f
    return out


def sae_ref_encode(sae: BaseSAE, x: np.ndarray) -> np.ndarray:
    s = sae.spec
    thr = sae.threshold.detach().double().numpy() if s.architecture == "jumprelu" else None  # type: ignore[union-attr]
    return ref_encode(x, sae.W_enc.detach().double().numpy(), sae.b_enc.detach().double().numpy(),
                      sae.b_dec.detach().double().numpy(), arch=s.architecture, k=s.k, threshold=thr,
                      norm=s.normalize_activations, apply_b_dec=s.apply_b_dec_to_input)  # fmt: skip


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
