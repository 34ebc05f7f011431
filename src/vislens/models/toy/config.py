"""How the toy VLM is trained: ``ToyTrainConfig``, read by both training stages
(``tower.py`` for stage 1, ``train.py`` for stage 2) and written into ``train.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from vislens.models.toy.build import ToyArch

TRAIN_WORLD_SEED = 1000
"""World seed of the training images (eval uses other seeds)."""


@dataclass(frozen=True)
class ToyTrainConfig:
    """How the toy VLM is trained (defaults reproduce the shipped weights)."""

    seed: int = 0
    """Seeds initialisation, data order and question sampling."""
    world_seed: int = TRAIN_WORLD_SEED
    """Seed of the grid-world scenes used for training."""
    tower_steps: int = 600
    """Stage 1 optimiser steps."""
    tower_batch: int = 16
    """Images per stage 1 step (fresh scenes every step)."""
    tower_lr: float = 2e-3
    """Stage 1 peak learning rate."""
    n_pool: int = 6000
    """Scenes (of the normal world, 1-6 shapes) whose frozen-tower features stage 2
    trains on."""
    lm_steps: int = 10000
    """Stage 2 optimiser steps."""
    lm_batch: int = 32
    """Sequences (one image and one question each) per stage 2 step."""
    lm_lr: float = 1e-3
    """Stage 2 peak learning rate."""
    evidence_layer: int = 2
    """LM block after which the evidence loss reads the image tokens."""
    evidence_weight: float = 1.0
    """Weight of the evidence loss next to the answer loss."""
    task_weights: dict[str, float] = field(
        default_factory=lambda: {
            "presence": 0.25,
            "cell_color": 0.18,
            "cell_shape": 0.2,
            "location": 0.2,
            "count": 0.14,
            "caption": 0.03,
        }
    )
    """Relative frequency of each task among training questions."""
    n_threads: int = 2
    """torch CPU threads (the shipped weights were trained with 2)."""
    arch: ToyArch = field(default_factory=ToyArch)
    """Model sizes."""

    def to_json(self) -> dict[str, object]:
        return asdict(self)
