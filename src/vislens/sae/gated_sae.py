"""The Gated SAE of Rajamanoharan et al. 2024 ("Improving dictionary learning with gated
sparse autoencoders"), for loading SAELens / ViT-Prisma checkpoints (encode only)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from vislens.sae.base import BaseSAE, NormState, normalize_in
from vislens.sae.spec import SAESpec


class GatedSAE(BaseSAE):
    """``f = 1[x̃ W_enc + b_gate > 0] · relu(x̃ (W_enc ⊙ exp(r_mag)) + b_mag)``, x̃ the
    normalised input minus ``b_dec``; weights ``W_enc``, ``b_gate``, ``r_mag``, ``b_mag``,
    ``W_dec``, ``b_dec`` (no ``b_enc``), as both libraries name them."""

    def __init__(self, spec: SAESpec) -> None:
        super().__init__(spec)
        del self.b_enc
        dtype = self.W_enc.dtype
        self.b_gate = nn.Parameter(torch.zeros(spec.d_sae, dtype=dtype))
        self.r_mag = nn.Parameter(torch.zeros(spec.d_sae, dtype=dtype))
        self.b_mag = nn.Parameter(torch.zeros(spec.d_sae, dtype=dtype))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.W_dec)
        self.W_enc.copy_(self.W_dec.T)
        self.b_dec.zero_()

    def activation(self, hidden_pre: Tensor) -> Tensor:
        return torch.relu(hidden_pre)

    def _gated(self, x: Tensor) -> tuple[Tensor, NormState]:
        if x.shape[-1] != self.d_in:
            raise ValueError(
                f"activations have width {x.shape[-1]} but the SAE reads d_in={self.d_in}"
            )
        sae_in, state = normalize_in(
            x.to(self.W_enc.dtype), self.spec.normalize_activations, self.d_in
        )
        if self.spec.apply_b_dec_to_input:
            sae_in = sae_in - self.b_dec
        gate = (sae_in @ self.W_enc + self.b_gate) > 0
        magnitude = torch.relu(sae_in @ (self.W_enc * self.r_mag.exp()) + self.b_mag)
        return magnitude * gate, state

    def encode(self, x: Float[Tensor, "*b d_in"]) -> Float[Tensor, "*b d_sae"]:
        return self._gated(x)[0]

    def forward(self, x: Float[Tensor, "*b d_in"]) -> tuple[Tensor, Tensor]:
        codes, state = self._gated(x)
        return self.decode(codes, state), codes
