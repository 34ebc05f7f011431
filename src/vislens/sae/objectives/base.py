"""What every training objective shares: the step's loss, AuxK on dead latents, dead tracking.

An objective decides the training-time activation, the sparsity term, whether the decoder
rows are kept at unit norm, and which inference SAE it saves as. The loop (``train.py``)
owns data, optimiser, schedule and checkpoints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE, normalize_in

if TYPE_CHECKING:
    from vislens.sae.train import TrainConfig


@dataclass
class StepOut:
    """One training step's loss and the numbers the progress bar shows."""

    loss: Tensor
    mse: Tensor
    codes: Tensor
    recon: Tensor
    target: Tensor
    aux: Tensor


class Objective(ABC):
    """Base objective: MSE (+ the subclass's sparsity term) + AuxK when ``aux_k`` > 0."""

    name = ""
    inference_architecture = "topk"
    """The module trained and saved (``SAESpec.architecture``)."""
    unit_norm_decoder = True
    """Keep ‖W_dec,i‖ = 1 (gradient parallel to each row removed, rows renormalised)."""
    uses_aux_k = True

    def __init__(self, cfg: TrainConfig, d_in: int, d_sae: int) -> None:
        self.cfg, self.d_in, self.d_sae = cfg, d_in, d_sae
        aux = cfg.aux_k if cfg.aux_k >= 0 else d_in // 2  # -1: SAELens' default d_in / 2
        self.aux_k = min(aux, d_sae) if self.uses_aux_k else 0

    def spec_kwargs(self) -> dict[str, Any]:
        """Architecture-specific SAESpec fields of the trained module."""
        return {"k": self.cfg.k} if self.inference_architecture == "topk" else {}

    def k_at(self, step: int) -> int:
        """k of step ``step``: annealed linearly from ``k_start`` over ``k_anneal_steps``."""
        c = self.cfg
        if c.k_start <= 0 or c.k_anneal_steps <= 0 or step >= c.k_anneal_steps:
            return c.k
        return round(c.k_start + (c.k - c.k_start) * step / c.k_anneal_steps)

    @abstractmethod
    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        """Codes from pre-activations at training step ``step`` (each objective's own rule)."""

    def sparsity(self, sae: BaseSAE, codes: Tensor, hidden_pre: Tensor) -> Tensor:
        return hidden_pre.new_zeros(())

    def recon_loss(self, sae: BaseSAE, codes: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(loss, reconstruction)``: squared error summed over d_in, mean over tokens."""
        recon = codes @ sae.W_dec + sae.b_dec
        return ((recon - target) ** 2).sum(-1).mean(), recon

    def step(self, sae: BaseSAE, x: Tensor, step: int, dead: Tensor | None) -> StepOut:
        hidden_pre, _ = sae.encode_pre(x)
        target, _ = normalize_in(x, sae.spec.normalize_activations, sae.d_in)
        codes = self.activate(sae, hidden_pre, step)
        mse, recon = self.recon_loss(sae, codes, target)
        loss = mse + self.sparsity(sae, codes, hidden_pre)
        aux = hidden_pre.new_zeros(())
        if self.aux_k > 0 and dead is not None and bool(dead.any()):
            aux = self.aux_loss(sae, hidden_pre, target - recon.detach(), dead)
            loss = loss + self.cfg.aux_coefficient * aux
        return StepOut(loss, mse, codes, recon, target, aux)

    def aux_loss(self, sae: BaseSAE, hidden_pre: Tensor, residual: Tensor, dead: Tensor) -> Tensor:
        """AuxK (Gao et al. 2024, §A.2): the top ``aux_k`` dead latents reconstruct the residual.

        The loss is the residual's unexplained fraction ``Σ‖e − ê‖² / Σ‖e‖²`` over the batch,
        as OpenAI's reference trainer normalises it, times min(n_dead / aux_k, 1) as SAELens
        and sparsify scale it. Unnormalised, it shrinks with the residual, and the Adam moments a
        latent gathered while it was alive then damp its AuxK steps to nothing: a coefficient of
        1/32 revived too little. Only dead latents learn from it: ``b_dec``, which every latent
        reads, gets no AuxK gradient (letting it through drifted ``b_dec`` away from the data and
        collapsed whole runs).
        """
        n_dead = int(dead.sum())
        k = min(self.aux_k, n_dead)
        pre = hidden_pre.masked_fill(~dead, float("-inf"))
        top = torch.topk(pre, k, dim=-1)
        vals = top.values
        if sae.spec.apply_b_dec_to_input:  # value 0; its b_dec gradient cancels the encoder's
            vals = vals + ((sae.b_dec - sae.b_dec.detach()) @ sae.W_enc)[top.indices]
        # relu in the forward pass, identity in the backward one: a dead latent's
        # pre-activations are mostly negative, and a plain relu would give them no
        # gradient, while raw negative values let them fit the residual with a flipped sign
        vals = vals + (torch.relu(vals) - vals).detach()
        codes = torch.zeros_like(hidden_pre).scatter(-1, top.indices, vals)
        approx = codes @ sae.W_dec  # dense: cheaper than gathering [n, k, d_in] decoder rows
        scale = min(n_dead / self.aux_k, 1.0)
        unexplained = ((approx - residual) ** 2).sum() / (residual**2).sum().clamp_min(1e-12)
        return scale * unexplained

    @torch.no_grad()
    def after_step(self, sae: BaseSAE, codes: Tensor) -> None:
        """Updates outside the gradient (BatchTopK's threshold); none by default."""
        return None

    def extra_cfg(self) -> dict[str, Any]:
        """Keys recorded in the saved cfg.json for reference."""
        return {"vislens_training_architecture": self.name}
