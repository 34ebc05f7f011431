"""The JumpReLU SAE of Rajamanoharan et al. 2024 (Gemma Scope)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vislens.sae.base import BaseSAE
from vislens.sae.spec import SAESpec


class JumpReLUSAE(BaseSAE):
    """``f = relu(h) * (h > threshold)`` with a per-feature ``threshold [d_sae]``."""

    def __init__(self, spec: SAESpec) -> None:
        super().__init__(spec)
        self.threshold = nn.Parameter(torch.zeros(spec.d_sae, dtype=self.W_enc.dtype))

    def activation(self, hidden_pre: Tensor) -> Tensor:
        return torch.relu(hidden_pre) * (hidden_pre > self.threshold)
