"""BatchTopK (Bussmann et al. 2024): the k·B largest activations over the whole batch.

At inference a per-token rule is needed: the threshold θ, an EMA of the smallest
activation kept in each batch (SAELens' ``topk_threshold``), turns the SAE into a JumpReLU
``relu(h)·1[h > θ]``; the trained module *is* a JumpReLU SAE whose ``threshold`` is that
EMA, so it is saved (and SAELens loads it) as ``jumprelu``.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE
from vislens.sae.objectives.base import Objective


def batch_topk_codes(hidden_pre: Tensor, k: int) -> Tensor:
    acts = torch.relu(hidden_pre)
    flat = acts.flatten()
    top = torch.topk(flat, k * hidden_pre.shape[0])
    return torch.zeros_like(flat).scatter(-1, top.indices, top.values).view_as(acts)


class BatchTopKObjective(Objective):
    name = "batchtopk"
    inference_architecture = "jumprelu"

    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        return batch_topk_codes(hidden_pre, self.k_at(step))

    @torch.no_grad()
    def after_step(self, sae: BaseSAE, codes: Tensor) -> None:
        kept = codes[codes > 0]
        if kept.numel():
            thr = cast(Tensor, sae.threshold)
            lr = self.cfg.threshold_lr
            current = thr[0] if bool((thr > 0).any()) else kept.min()  # start at the first batch's
            thr.fill_(float((1 - lr) * current + lr * kept.min()))
