"""Matryoshka SAEs (Bussmann et al. 2025; Nabeshima 2024): nested prefixes of the
dictionary, each of which must reconstruct on its own; TopK codes, saved as ``topk``.

The loss is the mean over prefix widths m₁ < … < m_n = d_sae of
‖x − (f[:m_j] W_dec[:m_j] + b_dec)‖², so early features learn the coarse, general
directions and later ones refine them.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from vislens.errors import InputError
from vislens.sae.base import BaseSAE
from vislens.sae.objectives.base import Objective
from vislens.sae.objectives.topk import topk_codes


class MatryoshkaObjective(Objective):
    name = "matryoshka"

    def __init__(self, cfg: Any, d_in: int, d_sae: int) -> None:
        super().__init__(cfg, d_in, d_sae)
        widths = [int(w) for w in cfg.matryoshka_widths] or [d_sae // 8, d_sae // 4, d_sae // 2]
        widths = sorted({w for w in widths if 0 < w < d_sae} | {d_sae})
        if any(w <= 0 or w > d_sae for w in cfg.matryoshka_widths):
            raise InputError(
                f"matryoshka widths {list(cfg.matryoshka_widths)} must lie in 1..d_sae={d_sae}"
            )
        self.widths = widths

    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        return topk_codes(hidden_pre, self.k_at(step))

    def recon_loss(self, sae: BaseSAE, codes: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        total = codes.new_zeros(())
        recon = sae.b_dec.expand_as(target)
        start = 0
        for w in self.widths:  # cumulative prefix reconstructions, one matmul per slice
            recon = recon + codes[:, start:w] @ sae.W_dec[start:w]
            total = total + ((recon - target) ** 2).sum(-1).mean()
            start = w
        return total / len(self.widths), recon

    def extra_cfg(self) -> dict[str, Any]:
        return super().extra_cfg() | {"matryoshka_widths": self.widths}
