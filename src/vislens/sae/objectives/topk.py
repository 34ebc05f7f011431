"""TopK (Gao et al. 2024): the k largest pre-activations per token, MSE only, AuxK."""

from __future__ import annotations

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE
from vislens.sae.objectives.base import Objective


def topk_codes(hidden_pre: Tensor, k: int) -> Tensor:
    top = torch.topk(hidden_pre, k, dim=-1)
    return torch.zeros_like(hidden_pre).scatter(-1, top.indices, torch.relu(top.values))


class TopKObjective(Objective):
    name = "topk"

    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        return topk_codes(hidden_pre, self.k_at(step))
