"""Reconstruction and sparsity metrics, accumulated in one streaming pass.

Definitions follow SAELens' evals: explained variance is ``1 - Σ‖x - x̂‖² / Σ‖x - x̄‖²``
(x̄ the mean over all tokens seen) and FVU its complement, MSE is per element, L0 the mean
number of active features per token, a feature is dead when it never fired on the
evaluated tokens and dense when it fired on more than ``DENSE_FREQUENCY`` of them;
``cosine`` is the mean cosine similarity of each token with its reconstruction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

DENSE_FREQUENCY = 0.1
"""A feature firing on more than this fraction of tokens counts as dense."""


@dataclass
class SAEMetrics:
    """Summary of an SAE on a set of tokens."""

    n_tokens: int
    mse: float
    explained_variance: float
    l0: float
    dead_fraction: float
    alive_fraction: float
    fvu: float = float("nan")
    dense_fraction: float = float("nan")
    cosine: float = float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


class MetricsAccumulator:
    """Add batches of ``(x, x_hat, codes)``; ``result()`` gives exact whole-set metrics.

    The total variance is accumulated from running sums (Σx, Σ‖x‖²), so no second pass
    over the data is needed; float64 keeps it exact enough for millions of tokens.
    """

    def __init__(self, d_sae: int) -> None:
        self.n_tokens = 0
        self.d_in = 0
        self.sq_err = 0.0
        self.sum_x: Tensor | None = None
        self.sum_sq_x = 0.0
        self.sum_l0 = 0.0
        self.fire_counts = torch.zeros(d_sae, dtype=torch.int64)
        self.sum_cos = 0.0

    @torch.no_grad()
    def add(
        self,
        x: Float[Tensor, "n d_in"],
        x_hat: Float[Tensor, "n d_in"],
        codes: Float[Tensor, "n d_sae"],
    ) -> None:
        x64 = x.reshape(-1, x.shape[-1]).double()
        xh64 = x_hat.reshape(-1, x_hat.shape[-1]).double()
        c = codes.reshape(-1, codes.shape[-1])
        self.n_tokens += x64.shape[0]
        self.d_in = x64.shape[1]
        self.sq_err += float(((x64 - xh64) ** 2).sum())
        s = x64.sum(dim=0)
        self.sum_x = s if self.sum_x is None else self.sum_x + s
        self.sum_sq_x += float((x64**2).sum())
        active = c != 0
        self.sum_l0 += float(active.sum())
        self.fire_counts += active.sum(dim=0).cpu()
        self.sum_cos += float(torch.nn.functional.cosine_similarity(x64, xh64, dim=-1).sum())

    def frequencies(self) -> Tensor:
        """Per feature, the fraction of tokens it fired on (float64 ``[d_sae]``)."""
        return self.fire_counts.double() / max(self.n_tokens, 1)

    def result(self) -> SAEMetrics:
        if self.n_tokens == 0 or self.sum_x is None:
            raise ValueError("no tokens were added")
        n = self.n_tokens
        total_var = self.sum_sq_x - float((self.sum_x**2).sum()) / n
        ev = 1.0 - self.sq_err / total_var if total_var > 0 else float("nan")
        alive = float((self.fire_counts > 0).float().mean())
        return SAEMetrics(
            n_tokens=n,
            mse=self.sq_err / (n * self.d_in),
            explained_variance=ev,
            l0=self.sum_l0 / n,
            dead_fraction=1.0 - alive,
            alive_fraction=alive,
            fvu=1.0 - ev,
            dense_fraction=float((self.frequencies() > DENSE_FREQUENCY).double().mean()),
            cosine=self.sum_cos / n,
        )
