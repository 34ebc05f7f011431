"""ReLU + L1 (Bricken et al. 2023; Anthropic's April 2024 update, SAELens' ``standard``):
MSE + λ Σ_i f_i ‖W_dec,i‖, the decoder free (the penalty weights each code by its row norm)."""

from __future__ import annotations

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE
from vislens.sae.objectives.base import Objective


class StandardObjective(Objective):
    name = "standard"
    inference_architecture = "standard"
    unit_norm_decoder = False
    uses_aux_k = False

    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        return torch.relu(hidden_pre)

    def sparsity(self, sae: BaseSAE, codes: Tensor, hidden_pre: Tensor) -> Tensor:
        return self.cfg.l1_coefficient * (codes * sae.W_dec.norm(dim=-1)).sum(-1).mean()
