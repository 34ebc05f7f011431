"""Training objectives, one file per architecture; adding one means adding one line here."""

from __future__ import annotations

from vislens.sae.objectives.base import Objective, StepOut
from vislens.sae.objectives.batchtopk import BatchTopKObjective
from vislens.sae.objectives.jumprelu import JumpReLUObjective
from vislens.sae.objectives.matryoshka import MatryoshkaObjective
from vislens.sae.objectives.standard import StandardObjective
from vislens.sae.objectives.topk import TopKObjective

OBJECTIVES: dict[str, type[Objective]] = {
    "topk": TopKObjective,
    "batchtopk": BatchTopKObjective,
    "jumprelu": JumpReLUObjective,
    "standard": StandardObjective,
    "matryoshka": MatryoshkaObjective,
}
TRAIN_ARCHITECTURES: tuple[str, ...] = tuple(OBJECTIVES)

__all__ = ["OBJECTIVES", "TRAIN_ARCHITECTURES", "Objective", "StepOut"]
