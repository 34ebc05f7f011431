"""What the two ``toy-mlp`` recipes share: their config (``ToyMlpConfig``), the text
stage's sequences (``TextItem``, ``text_item``), checkpoints and the optimiser step.

``mlp.py`` (the ``sum`` recipe and the driver) and ``teacher.py`` (the ``teacher``
recipe) both build on this module; neither imports the other's internals back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.data.synthetic import GridObject, caption_for
from vislens.models.toy.build import ToyArch
from vislens.models.toy.config import TRAIN_WORLD_SEED, ToyTrainConfig
from vislens.models.toy.tasks import caption_question, sample_qa
from vislens.models.toy.train import (
    Example,
    _encode,
    _save_atomic,
    question_and_answer,
    resume_path,
)
from vislens.models.toy.vocab import BOS, EOS, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

CHECKPOINT_EVERY = 500
"""Steps between checkpoints in the text and connector stages."""


@dataclass(frozen=True)
class ToyMlpConfig:
    """How ``toy-mlp`` is trained (defaults reproduce its shipped weights)."""

    variant: str = "toy-mlp"
    """Written into ``train.json`` so the two toys' files say which recipe made them."""
    seed: int = 0
    """Seeds initialisation, data order and question sampling."""
    world_seed: int = TRAIN_WORLD_SEED
    """Seed of the grid-world scenes used for training."""
    tower: str = "toy"
    """``toy``: take the shipped QA toy's vision tower, frozen, so that the two toys see
    the same image features; ``train``: train one as the QA toy's stage 1 does."""
    tower_steps: int = 600
    """Stage 1 optimiser steps (as the QA toy; ``tower="train"``)."""
    tower_batch: int = 16
    tower_lr: float = 2e-3
    n_pool: int = 4000
    """Scenes whose frozen-tower features the connector stage trains on (their captions and
    questions also make the text stage's data)."""
    slots: str = "teacher"
    """How the text stage writes a scene where the image goes, one position per cell:
    ``teacher`` — the sum of the layer-``slot_layer`` states that a frozen copy of the LM,
    trained on plain captions first (``teacher_steps``), gives the cell's colour and shape
    words where the scene's caption names them (``teacher.py``; the shipped recipe);
    ``sum`` — the sum of the cell's words' input embeddings (the recipe of the first
    ``toy-mlp``, whose image tokens pointed at the word embeddings)."""
    teacher_steps: int = 800
    """Steps of plain captions before the teacher is copied (``slots="teacher"``)."""
    slot_layer: int = 4
    """The teacher's block whose output writes the scene (1-based; ``slots="teacher"``)."""
    text_steps: int = 3000
    """Text stage optimiser steps (LM alone, text only)."""
    text_batch: int = 32
    text_lr: float = 2e-3
    text_task_weights: dict[str, float] = field(
        default_factory=lambda: {
            "plain": 0.2,
            "caption": 0.4,
            "presence": 0.1,
            "cell_color": 0.1,
            "cell_shape": 0.1,
            "location": 0.05,
            "count": 0.05,
        }
    )
    """Mix of the text stage: ``plain`` captions, and the tasks asked about a written scene."""
    connector_steps: int = 2000
    """Connector stage optimiser steps (connector alone, captions only)."""
    connector_batch: int = 32
    connector_lr: float = 2e-3
    n_threads: int = 2
    """torch CPU threads (the shipped weights were trained with 2; another count changes
    the last bits of every sum, and so the weights)."""
    arch: ToyArch = field(default_factory=lambda: ToyArch(text_layers=8))

    def __post_init__(self) -> None:
        from vislens.errors import InputError

        if self.tower not in ("toy", "train"):
            raise InputError(f"toy-mlp: tower={self.tower!r}; choose 'toy' or 'train'")
        if self.slots not in ("teacher", "sum"):
            raise InputError(f"toy-mlp: slots={self.slots!r}; choose 'teacher' or 'sum'")
        if self.slots == "teacher" and not 1 <= self.slot_layer <= self.arch.text_layers:
            raise InputError(
                f"toy-mlp: slot_layer={self.slot_layer} is not a block of the "
                f"{self.arch.text_layers}-block LM; choose 1..{self.arch.text_layers}"
            )

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    def tower_config(self) -> ToyTrainConfig:
        """The QA toy's config for stage 1 (same tower recipe)."""
        return replace(
            ToyTrainConfig(),
            seed=self.seed,
            world_seed=self.world_seed,
            tower_steps=self.tower_steps,
            tower_batch=self.tower_batch,
            tower_lr=self.tower_lr,
            n_pool=self.n_pool,
            n_threads=self.n_threads,
            arch=self.arch,
        )


@dataclass(frozen=True)
class TextItem:
    """One text-stage sequence: a plain caption (``ids``), or a question about a written
    scene (``example``, whose ``image`` indexes the scene pool)."""

    kind: str
    ids: list[int] | None = None
    example: Example | None = None


def text_item(
    objects: list[list[GridObject]], i: int, rng: np.random.Generator, kind: str
) -> TextItem:
    """A text-stage sequence of ``kind`` about scene ``i``: ``plain`` is ``<s> {caption}
    </s>``; any other kind is the toy prompt ``<s> {question} <image> answer: {answer}
    </s>`` whose image tokens the scene written as words will fill."""
    if kind == "plain":
        return TextItem(kind, ids=[VOCAB[BOS], *_encode(caption_for(objects[i])), VOCAB[EOS]])
    qa = caption_question(objects[i]) if kind == "caption" else sample_qa(objects[i], rng, kind)
    before, after, target = question_and_answer(qa.question, qa.answer)
    return TextItem(kind, example=Example(i, kind, before, after, target, None))


def _text_batch(
    objects: list[list[GridObject]], rng: np.random.Generator, mix: dict[str, float], n: int
) -> list[TextItem]:
    """``n`` text-stage sequences, each of a kind drawn by ``mix`` about a random scene."""
    kinds = list(mix)
    w = np.asarray([mix[k] for k in kinds], dtype=np.float64)
    out = []
    for _ in range(n):
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        out.append(text_item(objects, int(rng.integers(len(objects))), rng, kind))
    return out


def _lm_params(model: LlavaForConditionalGeneration) -> list[torch.nn.Parameter]:
    return [*model.model.language_model.parameters(), *model.lm_head.parameters()]


def _checkpoint(
    model: LlavaForConditionalGeneration,
    out_dir: Path | None,
    cfg: ToyMlpConfig,
    stage: str,
    step: int,
    opt: torch.optim.Optimizer | None,
    keep: dict[str, Any],
) -> None:
    if out_dir is None:
        return
    state = {
        "config": cfg.to_json(),
        "stage": stage,
        "step": step,
        "model": model.state_dict(),
        "opt": None if opt is None else opt.state_dict(),
        **keep,
    }
    _save_atomic(state, resume_path(out_dir))


def _optimise(
    opt: torch.optim.Optimizer,
    params: list[torch.nn.Parameter],
    logits: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    lr: float,
) -> float:
    """One optimiser step on the next-token loss at ``mask``; returns the loss."""
    import torch

    loss = torch.nn.functional.cross_entropy(logits[mask], labels[mask])
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return float(loss.detach())
