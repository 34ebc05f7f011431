"""The TopK SAE of Gao et al. 2024 ("Scaling and evaluating sparse autoencoders")."""

from __future__ import annotations

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE


class TopKSAE(BaseSAE):
    """Keep the ``k`` largest pre-activations per token, then ReLU them (SAELens, ViT-Prisma)."""

    def activation(self, hidden_pre: Tensor) -> Tensor:
        k = self.spec.k
        assert k is not None  # SAESpec validates this for topk
        top = torch.topk(hidden_pre, k=k, dim=-1)
        out = torch.zeros_like(hidden_pre)
        return out.scatter_(-1, top.indices, torch.relu(top.values))
