"""Monosemanticity (MS) of SAE features, after Pach et al., "Sparse Autoencoders Learn
Monosemantic Features in Vision-Language Models" (NeurIPS 2025).

For feature k with activations min-max normalised over the evaluation set
(``a_n = (x_n - min) / (max - min)``) and unit embeddings ``ê_n`` from an independent
encoder,

    MS_k = Σ_{n<m} a_n a_m cos(e_n, e_m) / Σ_{n<m} a_n a_m .

Because the embeddings are unit vectors, ``Σ_{n<m} a_n a_m ê_n·ê_m = (‖Σ_n a_n ê_n‖² - Σ_n a_n²) / 2``
and ``Σ_{n<m} a_n a_m = ((Σ_n a_n)² - Σ_n a_n²) / 2``; and ``Σ_n a_n ê_n`` is one sparse
matrix product ``Aᵀ Ê`` for all features at once. So the exact score costs
O(nnz · d_embed), linear in the number of images, never a pairwise loop. The min-max shift
is folded in algebraically, so implicit zeros stay implicit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vislens.errors import InputError

STATUS_OK = "ok"
STATUS_DEAD = "dead"
"""Never fires on the evaluation set."""
STATUS_CONSTANT = "constant"
"""Fires with the same value on every item: min-max normalisation is undefined."""
STATUS_SINGLE = "single"
"""Only one item has a non-zero normalised activation: there is no pair to score."""


@dataclass
class MSResult:
    """Per-feature scores; ``ms`` is NaN wherever ``status`` is not ``ok``."""

    ms: np.ndarray
    n_active: np.ndarray
    status: np.ndarray


def unit_rows(emb_nd: np.ndarray, *, dtype: type = np.float64) -> np.ndarray:
    """Rows scaled to unit norm; a zero or non-finite embedding is an InputError."""
    emb: np.ndarray = np.asarray(emb_nd, dtype=dtype)
    if emb.ndim != 2:
        raise InputError(f"embeddings must be a 2-D [items, dim] array (got shape {emb.shape})")
    norms = np.linalg.norm(emb, axis=1)
    bad = ~np.isfinite(norms) | (norms == 0)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} embedding(s) are zero or not finite (first row {int(np.argmax(bad))})"
        )
    return emb / norms[:, None]


def _as_csr(acts) -> sp.csr_matrix:  # acts: [items, features], dense or sparse
    return sp.csr_matrix(acts) if not sp.issparse(acts) else acts.tocsr()


def _column_stats(a: sp.csr_matrix) -> tuple[np.ndarray, ...]:
    """Per feature: non-zero count, sum, sum of squares, min and max over all rows (implicit
    zeros included) — O(nnz), straight from the CSR arrays without a transposed copy."""
    n, f = a.shape
    idx, v = a.indices, a.data.astype(np.float64, copy=False)
    nz = v != 0
    n_active = np.bincount(idx[nz], minlength=f)
    sum_x = np.bincount(idx, weights=v, minlength=f)
    sum_x2 = np.bincount(idx, weights=v * v, minlength=f)
    vmax = np.full(f, -np.inf)
    vmin = np.full(f, np.inf)
    np.maximum.at(vmax, idx[nz], v[nz])
    np.minimum.at(vmin, idx[nz], v[nz])
    has_zero = n_active < n
    col_max = np.where(n_active == 0, 0.0, np.where(has_zero, np.maximum(vmax, 0.0), vmax))
    col_min = np.where(n_active == 0, 0.0, np.where(has_zero, np.minimum(vmin, 0.0), vmin))
    return n_active, sum_x, sum_x2, col_min, col_max


def _ms_from_weights(
    s_fd: np.ndarray,
    sum_a: np.ndarray,
    sum_a2: np.ndarray,
    n_active: np.ndarray,
    is_const: np.ndarray,
) -> MSResult:
    num = (np.einsum("fd,fd->f", s_fd, s_fd) - sum_a2) / 2.0
    den = (sum_a**2 - sum_a2) / 2.0
    status = np.full(len(sum_a), STATUS_OK, dtype=object)
    status[den <= 1e-12 * np.maximum(sum_a**2, 1e-300)] = STATUS_SINGLE
    status[is_const] = STATUS_CONSTANT
    status[n_active == 0] = STATUS_DEAD
    ok = status == STATUS_OK
    ms = np.full(len(sum_a), np.nan)
    ms[ok] = num[ok] / den[ok]
    return MSResult(ms=ms, n_active=n_active.astype(np.int64), status=status.astype(str))


def monosemanticity(acts_nf, emb_nd: np.ndarray, *, dtype: type = np.float64) -> MSResult:
    """Exact full-set MS of every feature (columns of ``acts_nf`` [items, features], sparse or
    dense) against embeddings ``emb_nd`` [items, dim]; linear in the number of items.

    ``dtype`` is the precision of the one heavy product (float32 halves its memory traffic,
    at about 1e-6 absolute error); every other sum is float64.
    """
    a = _as_csr(acts_nf)
    n = a.shape[0]
    e = unit_rows(emb_nd, dtype=dtype)
    if e.shape[0] != n:
        raise InputError(f"{n} items of activations but {e.shape[0]} embeddings")
    n_active, sum_x, sum_x2, col_min, col_max = _column_stats(a)
    rng = col_max - col_min
    is_const = (rng <= 0) & (n_active > 0)
    scale = np.where(rng > 0, 1.0 / np.where(rng > 0, rng, 1.0), 0.0)
    # a_n = x_n·scale - min·scale: sums follow from the sparse column sums
    shift = col_min * scale
    sum_a = sum_x * scale - n * shift
    sum_a2 = sum_x2 * scale**2 - 2 * shift * scale * sum_x + n * shift**2
    # the one heavy product, Aᵀ Ê [features, dim]; scipy runs it from the CSR arrays directly
    xt_e = np.asarray(a.astype(dtype, copy=False).T @ e, dtype=np.float64)
    s_fd = xt_e * scale[:, None] - shift[:, None] * e.sum(axis=0, dtype=np.float64)[None, :]
    return _ms_from_weights(s_fd, sum_a, sum_a2, n_active, is_const)


def monosemanticity_topn(
    feature: np.ndarray, item: np.ndarray, value: np.ndarray, emb_nd: np.ndarray, n_features: int
) -> MSResult:
    """The seed's variant: MS over each feature's top-N items only (given as rows of a top-k
    table with rank < N), activations min-max normalised over those N. A different quantity
    from ``monosemanticity`` — report it as ``ms_topn``."""
    e = unit_rows(emb_nd)
    feature = np.asarray(feature, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    counts = np.bincount(feature, minlength=n_features)
    vmax = np.full(n_features, -np.inf)
    vmin = np.full(n_features, np.inf)
    np.maximum.at(vmax, feature, value)
    np.minimum.at(vmin, feature, value)
    rng = np.where(counts > 0, vmax - vmin, 0.0)
    is_const = (rng <= 0) & (counts > 0)
    a = np.where(
        rng[feature] > 0,
        (value - vmin[feature]) / np.where(rng[feature] > 0, rng[feature], 1.0),
        0.0,
    )
    w = sp.csr_matrix(
        (a, (feature, np.asarray(item, dtype=np.int64))), shape=(n_features, e.shape[0])
    )
    s_fd = np.asarray(w @ e)
    sum_a = np.bincount(feature, weights=a, minlength=n_features)
    sum_a2 = np.bincount(feature, weights=a * a, minlength=n_features)
    return _ms_from_weights(s_fd, sum_a, sum_a2, counts, is_const)


@dataclass(frozen=True)
class Calibration:
    """Cosine similarity of random image pairs: the baseline MS is judged against."""

    mean: float
    sd: float
    n_pairs: int

    @property
    def moderate(self) -> float:
        """mean + 1 sd: below it a feature is indistinguishable from random (polysemantic)."""
        return self.mean + self.sd

    @property
    def monosemantic(self) -> float:
        """mean + 2 sd: at or above it a feature is clearly coherent."""
        return self.mean + 2 * self.sd

    def band(self, ms: np.ndarray) -> np.ndarray:
        """``polysemantic`` < mean+1σ ≤ ``moderate`` < mean+2σ ≤ ``monosemantic``; ``undefined`` for NaN."""
        ms = np.asarray(ms, dtype=np.float64)
        out = np.full(ms.shape, "undefined", dtype=object)
        fin = np.isfinite(ms)
        out[fin] = "polysemantic"
        out[fin & (ms >= self.moderate)] = "moderate"
        out[fin & (ms >= self.monosemantic)] = "monosemantic"
        return out.astype(str)


def calibrate(emb_nd: np.ndarray, *, n_pairs: int = 50_000, seed: int = 0) -> Calibration:
    """Mean and sd of the cosine similarity of ``n_pairs`` random pairs of distinct items."""
    e = unit_rows(emb_nd)
    n = e.shape[0]
    if n < 2:
        raise InputError("calibration needs embeddings of at least 2 items")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=n_pairs)
    j = (i + rng.integers(1, n, size=n_pairs)) % n  # never the same item
    cos = np.einsum("pd,pd->p", e[i], e[j])
    return Calibration(mean=float(cos.mean()), sd=float(cos.std(ddof=1)), n_pairs=n_pairs)
