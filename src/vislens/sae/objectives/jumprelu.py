"""JumpReLU (Rajamanoharan et al. 2024, Gemma Scope): ``f = h·1[h > θ]`` with a learned
per-feature θ, trained with straight-through estimators (rectangle kernel of bandwidth ε)
and an L0 penalty λ·Σ 1[h > θ]."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

from vislens.sae.base import BaseSAE
from vislens.sae.objectives.base import Objective


def _rect(u: Tensor) -> Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(h, theta)
        ctx.eps = eps
        return h * (h > theta)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        h, theta = ctx.saved_tensors
        eps = ctx.eps
        d_theta = -(theta / eps) * _rect((h - theta) / eps) * grad
        return (h > theta) * grad, d_theta.reshape(-1, theta.shape[-1]).sum(0), None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: Tensor, theta: Tensor, eps: float) -> Tensor:
        ctx.save_for_backward(h, theta)
        ctx.eps = eps
        return (h > theta).to(h.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        h, theta = ctx.saved_tensors
        eps = ctx.eps
        d_theta = -(1.0 / eps) * _rect((h - theta) / eps) * grad
        return torch.zeros_like(h), d_theta.reshape(-1, theta.shape[-1]).sum(0), None


class JumpReLUObjective(Objective):
    name = "jumprelu"
    inference_architecture = "jumprelu"
    uses_aux_k = False

    def activate(self, sae: BaseSAE, hidden_pre: Tensor, step: int) -> Tensor:
        return cast(Tensor, _JumpReLU.apply(hidden_pre, sae.threshold, self.cfg.jumprelu_bandwidth))

    def sparsity(self, sae: BaseSAE, codes: Tensor, hidden_pre: Tensor) -> Tensor:
        l0 = cast(Tensor, _Step.apply(hidden_pre, sae.threshold, self.cfg.jumprelu_bandwidth))
        return self.cfg.l0_coefficient * l0.sum(-1).mean()

    @torch.no_grad()
    def after_step(self, sae: BaseSAE, codes: Tensor) -> None:
        cast(Tensor, sae.threshold).clamp_(min=1e-6)
