"""The standard (ReLU) SAE of Bricken et al. 2023 / SAELens ``architecture = "standard"``."""

from __future__ import annotations

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE


class StandardSAE(BaseSAE):
    """``f = relu(hidden_pre)``; trained with an L1 penalty on ``f`` weighted by decoder norms."""

    def activation(self, hidden_pre: Tensor) -> Tensor:
        return torch.relu(hidden_pre)
