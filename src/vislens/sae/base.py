"""The shared SAE encode/decode path; one subclass per architecture supplies the activation.

Encoding follows SAELens and ViT-Prisma rather than the bare ``relu(x @ W_enc + b_enc)``:
normalise the input (optional), subtract ``b_dec`` (when the checkpoint says so), then
``act(x @ W_enc + b_enc)``; decoding is ``f @ W_dec + b_dec`` followed by undoing the
normalisation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from vislens.sae.spec import SAESpec

LN_EPS = 1e-5


@dataclass
class NormState:
    """What undoing the input normalisation needs: per-token shift and scale."""

    shift: Tensor | None = None
    scale: Tensor | None = None


def normalize_in(x: Tensor, method: str, d_in: int) -> tuple[Tensor, NormState]:
    """Apply the checkpoint's input normalisation, returning what ``normalize_out`` needs.

    ``layer_norm`` matches SAELens: per token, no affine, ``(x - mean) / (std + 1e-5)`` with
    the unbiased std. ``constant_norm_rescale`` scales each token to norm ``sqrt(d_in)``.
    """
    if method == "none":
        return x, NormState()
    if method == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        xc = x - mu
        std = xc.std(dim=-1, keepdim=True)
        return xc / (std + LN_EPS), NormState(shift=mu, scale=std)
    if method == "constant_norm_rescale":
        coeff = (d_in**0.5) / x.norm(dim=-1, keepdim=True)
        return x * coeff, NormState(scale=1.0 / coeff)
    raise ValueError(f"unknown normalisation {method!r}")


def normalize_out(x: Tensor, state: NormState) -> Tensor:
    """Undo ``normalize_in`` on a reconstruction."""
    if state.scale is not None:
        x = x * state.scale
    if state.shift is not None:
        x = x + state.shift
    return x


class BaseSAE(nn.Module, ABC):
    """Weights ``W_enc [d_in, d_sae]``, ``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]``.

    Subclasses implement ``activation(hidden_pre)``. All methods accept any leading shape.
    """

    def __init__(self, spec: SAESpec) -> None:
        super().__init__()
        self.spec = spec
        dtype = getattr(torch, spec.dtype)
        self.W_enc = nn.Parameter(torch.empty(spec.d_in, spec.d_sae, dtype=dtype))
        self.b_enc = nn.Parameter(torch.zeros(spec.d_sae, dtype=dtype))
        self.W_dec = nn.Parameter(torch.empty(spec.d_sae, spec.d_in, dtype=dtype))
        self.b_dec = nn.Parameter(torch.zeros(spec.d_in, dtype=dtype))
        self.reset_parameters()

    @property
    def d_in(self) -> int:
        return self.spec.d_in

    @property
    def d_sae(self) -> int:
        return self.spec.d_sae

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Unit-norm decoder rows and a tied (transposed) encoder, as the TopK paper
        (Gao et al. 2024) and SAELens initialise."""
        nn.init.kaiming_uniform_(self.W_dec)
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        self.W_enc.copy_(self.W_dec.T)
        self.b_enc.zero_()
        self.b_dec.zero_()

    @abstractmethod
    def activation(self, hidden_pre: Tensor) -> Tensor:
        """The architecture's nonlinearity applied to ``x @ W_enc + b_enc``."""

    def encode_pre(
        self, x: Float[Tensor, "*b d_in"]
    ) -> tuple[Float[Tensor, "*b d_sae"], NormState]:
        """Pre-activations ``(norm(x) - b_dec) @ W_enc + b_enc`` and the normalisation state."""
        if x.shape[-1] != self.d_in:
            raise ValueError(
                f"activations have width {x.shape[-1]} but the SAE reads d_in={self.d_in}"
            )
        x = x.to(self.W_enc.dtype)
        sae_in, state = normalize_in(x, self.spec.normalize_activations, self.d_in)
        if self.spec.apply_b_dec_to_input:
            sae_in = sae_in - self.b_dec
        hidden_pre = sae_in @ self.W_enc + self.b_enc
        if self.spec.rescale_acts_by_decoder_norm:  # SAELens TopK: select as if ‖W_dec,i‖ = 1
            hidden_pre = hidden_pre * self.W_dec.norm(dim=-1)
        return hidden_pre, state

    def encode(self, x: Float[Tensor, "*b d_in"]) -> Float[Tensor, "*b d_sae"]:
        """Feature activations (codes); non-negative for every architecture here."""
        hidden_pre, _ = self.encode_pre(x)
        return self.activation(hidden_pre)

    def decode(
        self, codes: Float[Tensor, "*b d_sae"], state: NormState | None = None
    ) -> Float[Tensor, "*b d_in"]:
        """Reconstruction ``codes @ W_dec + b_dec``, de-normalised when ``state`` is given."""
        if self.spec.rescale_acts_by_decoder_norm:
            codes = codes / self.W_dec.norm(dim=-1)
        out = codes @ self.W_dec + self.b_dec
        return normalize_out(out, state) if state is not None else out

    def forward(self, x: Float[Tensor, "*b d_in"]) -> tuple[Tensor, Tensor]:
        """``(reconstruction, codes)``; the reconstruction is in the input's units."""
        hidden_pre, state = self.encode_pre(x)
        codes = self.activation(hidden_pre)
        return self.decode(codes, state), codes

    @torch.no_grad()
    def set_decoder_norm_to_unit_norm(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-8))
