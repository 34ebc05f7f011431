"""The ``teacher`` recipe of ``toy-mlp`` (``ToyMlpConfig(slots="teacher")``).

The text stage of ``toy-mlp`` has to write each scene where the image will go, one
position per cell, so that the LM learns to read a scene laid out like an image. The
``sum`` recipe writes a cell as the sum of its words' input embeddings; its connector then
points image tokens at those embeddings, which EmbeddingLens reads perfectly. This recipe
writes a cell the way LatentLens says image tokens look — as *contextual* states of caption
words:

1. **teacher** — the LM alone learns plain captions (``<s> {caption}</s>``) for
   ``teacher_steps``; a frozen copy of it is kept.
2. **text** — as in ``mlp.py``, but a cell is the sum of the teacher's layer-``slot_layer``
   states of the cell's colour and shape words where the scene's caption names them (an
   empty cell: the state of ``empty`` in ``<s> an empty cell``), computed per batch
   (``TeacherScenes``).
3. **connector** — only the connector trains, on captions; it starts at the RMS of the
   teacher's scenes (``connector_target_rms``).

Each stage runs one forward per step over a batch laid out by ``assemble``. The arithmetic
is fixed — the order of every embedding lookup and sum — because the shipped weights are
reproduced bit for bit from this code (docs/toy.md).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.data.synthetic import COLORS, GridObject, caption_for
from vislens.models.toy import mlp_common
from vislens.models.toy.build import GRID, N_IMAGE_TOKENS
from vislens.models.toy.mlp_common import (
    TextItem,
    ToyMlpConfig,
    _checkpoint,
    _optimise,
    _text_batch,
)
from vislens.models.toy.tower import cosine_lr
from vislens.models.toy.train import _encode
from vislens.models.toy.vocab import BOS, PAD, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration


log = logging.getLogger("vislens.toy.train")

_COLOR_IDS = frozenset(VOCAB[c] for c in COLORS)

Slots = Callable[[list[int]], "torch.Tensor"]
"""Image tokens ``(k, 100, d)`` for the scenes of ``k`` pool indices."""


class TeacherScenes:
    """Scenes written as a frozen LM's contextual states: ``self(indices)`` is
    ``(k, 100, d)``, per cell the sum of the layer-``layer`` states of the cell's colour and
    shape words where the scene's caption (``<s> {caption}``) names them, or, for an empty
    cell, the state of ``empty`` in ``<s> an empty cell``. The captions of one call run as
    one right-padded batch."""

    def __init__(self, lm: torch.nn.Module, objects: list[list[GridObject]], layer: int):
        self.lm, self.layer = lm, layer
        self.captions = [[VOCAB[BOS], *_encode(caption_for(o))] for o in objects]
        self.where = [_word_positions(c, o) for c, o in zip(self.captions, objects, strict=True)]

    def __call__(self, indices: list[int]) -> torch.Tensor:
        import torch

        empty_ids = torch.tensor([[VOCAB[BOS], VOCAB["an"], VOCAB["empty"], VOCAB["cell"]]])
        with torch.no_grad():
            n = max(len(self.captions[i]) for i in indices)
            ids = torch.full((len(indices), n), VOCAB[PAD], dtype=torch.long)
            for j, i in enumerate(indices):
                ids[j, : len(self.captions[i])] = torch.tensor(self.captions[i])
            # Causal attention: the padding on the right changes nothing before it.
            hs = self.lm(input_ids=ids, output_hidden_states=True).hidden_states[self.layer]
            empty = self.lm(input_ids=empty_ids, output_hidden_states=True)
            out = empty.hidden_states[self.layer][0, 2].expand(len(indices), N_IMAGE_TOKENS, -1)
            out = out.clone()
            for j, i in enumerate(indices):
                for cell, p_color, p_shape in self.where[i]:
                    out[j, cell] = hs[j, p_color] + hs[j, p_shape]
        return out


def _word_positions(caption: list[int], objects: list[GridObject]) -> list[tuple[int, int, int]]:
    """``(cell, position of the colour word, position of the shape word)`` per object."""
    at = [p for p, t in enumerate(caption) if t in _COLOR_IDS]
    if len(at) != len(objects):
        raise AssertionError("caption and objects disagree")  # pragma: no cover
    out = []
    for o, p in zip(objects, at, strict=True):
        if (caption[p], caption[p + 1]) != (VOCAB[o.color], VOCAB[o.shape]):
            raise AssertionError("caption and objects disagree")  # pragma: no cover
        out.append((o.r * GRID + o.c, p, p + 1))
    return out


def assemble(
    model: LlavaForConditionalGeneration, items: list[TextItem], slots: Slots | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings ``(b, t, d)`` and labels ``(b, t)`` (-100: no loss) of one batch,
    right-padded with zeros: a plain caption learns every token after ``<s>``; a question
    ``<s> {question} <image> answer: {answer}</s>`` learns its answer, with
    ``slots([its scene, ...])`` where the image goes."""
    import torch

    embed = model.model.language_model.embed_tokens
    lengths = [len(it.ids) if it.ids is not None else it.example.length for it in items]  # type: ignore[union-attr]
    x = embed.weight.new_zeros((len(items), max(lengths), embed.weight.shape[1]))
    labels = torch.full((len(items), max(lengths)), -100, dtype=torch.long)
    asked = [it.example.image for it in items if it.example is not None]
    written = slots(asked) if asked and slots is not None else None
    k = 0
    for j, it in enumerate(items):
        if it.ids is not None:
            n = len(it.ids) - 1
            x[j, :n] = embed(torch.tensor(it.ids[:-1]))
            x[j, n : n + 1] = embed(torch.tensor(it.ids[-1:]))
            labels[j, : len(it.ids) - 1] = torch.tensor(it.ids[1:])
            continue
        ex = it.example
        if ex is None or written is None:
            raise ValueError("a question needs slots for its scene")
        n0 = len(ex.before)
        x[j, :n0] = embed(torch.tensor(ex.before))
        x[j, n0 : n0 + N_IMAGE_TOKENS] = written[k]
        k += 1
        x[j, n0 + N_IMAGE_TOKENS : ex.length] = embed(torch.tensor(ex.after + ex.target))
        first = ex.length - len(ex.target)
        labels[j, first - 1 : ex.length - 1] = torch.tensor(ex.target)
    return x, labels


def frozen_teacher(
    model: LlavaForConditionalGeneration, state: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """A frozen copy of ``model``'s LM holding ``state`` (the LM after the teacher stage)."""
    lm = copy.deepcopy(model.model.language_model)
    lm.load_state_dict(state)
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm


def run_stage(
    model: LlavaForConditionalGeneration,
    objects: list[list[GridObject]],
    cfg: ToyMlpConfig,
    stage: str,
    slots: Slots | None,
    out_dir: Path | None = None,
    *,
    resume: dict[str, Any] | None = None,
    keep: dict[str, Any] | None = None,
) -> dict[str, float]:
    """One stage of the teacher recipe, next-token loss through ``assemble``:

    - ``teacher``: the LM and head on plain captions (``teacher_steps``);
    - ``text``: the LM and head on ``text_task_weights``, questions reading ``slots``
      (a ``TeacherScenes``) (``text_steps``);
    - ``connector``: the connector alone on captions, ``slots`` its image tokens, LM and
      head frozen (``connector_steps``).

    Checkpoints every ``CHECKPOINT_EVERY`` steps; ``resume`` (a checkpoint of this stage)
    continues where it stopped, to the same weights."""
    import torch

    from vislens.progress import track

    lm_params = [*model.model.language_model.parameters(), *model.lm_head.parameters()]
    if stage == "connector":
        for p in lm_params:
            p.requires_grad_(False)
        module: torch.nn.Module = model.model.multi_modal_projector
        params = list(module.parameters())
        mix, n_steps, batch, lr = (
            {"caption": 1.0},
            cfg.connector_steps,
            cfg.connector_batch,
            cfg.connector_lr,
        )
        seed_tag = 7
    else:
        module, params = model.model.language_model, lm_params
        mix = {"plain": 1.0} if stage == "teacher" else cfg.text_task_weights
        n_steps = cfg.teacher_steps if stage == "teacher" else cfg.text_steps
        batch, lr, seed_tag = cfg.text_batch, cfg.text_lr, 9 if stage == "teacher" else 5
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    first = 0
    if resume is not None and resume["stage"] == stage and resume["opt"] is not None:
        opt.load_state_dict(resume["opt"])
        first = int(resume["step"])
    module.train()
    t0, loss_v, accs = time.time(), float("nan"), []
    for step in track(range(first, n_steps), f"toy-mlp: {stage}", total=n_steps - first):
        rng = np.random.default_rng([cfg.seed, seed_tag, step])
        x, labels = assemble(model, _text_batch(objects, rng, mix, batch), slots)
        logits = model.lm_head(model.model.language_model(inputs_embeds=x).last_hidden_state)
        mask = labels != -100
        loss_v = _optimise(opt, params, logits, labels, mask, cosine_lr(step, n_steps, lr))
        with torch.no_grad():
            accs.extend(((logits.argmax(-1) == labels) | ~mask).all(dim=1).float().tolist())
        if step % 100 == 0 or step == n_steps - 1:
            log.info(
                "%s step %d loss %.4f exact %.3f %.0fs",
                stage, step, loss_v, float(np.mean(accs[-500:])), time.time() - t0,
            )  # fmt: skip
        if (step + 1) % mlp_common.CHECKPOINT_EVERY == 0 and step + 1 < n_steps:
            _checkpoint(model, out_dir, cfg, stage, step + 1, opt, keep or {})
    module.eval()
    out = {f"{stage}_final_loss": loss_v}
    if stage == "connector":
        out["train_caption_acc"] = float(np.mean(accs[-500:])) if accs else float("nan")
    return out


def connector_target_rms(scenes: TeacherScenes) -> float:
    """The scale image tokens start at: the RMS of the first 8 pool scenes as the teacher
    writes them."""
    return float(scenes(list(range(8))).pow(2).mean().sqrt())


def scale_connector(
    model: LlavaForConditionalGeneration, feats_bnd: torch.Tensor, target_rms: float
) -> None:
    """Scale the connector's output layer so that its tokens for ``feats_bnd`` have RMS
    ``target_rms``."""
    import torch

    proj = model.model.multi_modal_projector
    with torch.no_grad():
        rms = proj(feats_bnd.float()).pow(2).mean().sqrt()
        proj.linear_2.weight.mul_(target_rms / rms)
        proj.linear_2.bias.mul_(target_rms / rms)


def connector_slots(model: LlavaForConditionalGeneration, feats: torch.Tensor) -> Slots:
    """The connector's image tokens for pool scenes (the connector stage's ``slots``)."""
    import torch

    def slots(indices: list[int]) -> torch.Tensor:
        return model.model.multi_modal_projector(feats[torch.tensor(indices)].float())

    return slots
