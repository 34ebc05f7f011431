"""The ``toy-mlp`` recipe: the toy VLM trained the way LatentLens' models were
(``vislens toy train --variant mlp``; the shipped ``toy-mlp``, docs/toy.md "LatentLens on
the toy").

LatentLens studies VLMs whose connector alone was trained on captions, in front of a
frozen, pretrained LLM. The QA toy (``train.py``) trains its LM from scratch together
with the connector, so nothing pulls its image tokens towards word-like states, and
LatentLens finds few words there. ``toy-mlp`` follows the paper's recipe instead:

1. **tower** — the shipped QA toy's frozen tower (``tower="toy"``), or stage 1 of the QA
   toy's recipe trained afresh (``tower="train"``).
2. **text** — the Llama LM alone learns the world's language, text only: plain captions
   (``<s> {caption}</s>``) and each task of ``tasks.py`` asked about a scene that is
   *written* where the image will later be, one position per cell:
   ``<s> {question} <100 cells> answer: {answer}</s>``. The LM learns to read a scene laid
   out like an image. How a cell is written is ``slots``:

   - ``teacher`` (``teacher.py``): the sum of the contextual states that a frozen copy of
     the LM, trained on plain captions first, gives the cell's colour and shape words in
     the scene's caption — LatentLens' picture of what image tokens become;
   - ``sum``: the sum of the input embeddings of the cell's words (``red`` + ``circle``, or
     ``empty``) — its image tokens end up pointing at those embeddings.
3. **connector** — LM, word embeddings and head frozen; only LLaVA's MLP connector trains,
   on captions alone: ``<s> describe the image. <image> answer: {caption}</s>``. The
   connector has to turn each cell into something the frozen LM reads as the words that
   describe it.

Writing the scene out as its caption — ten tokens per object — left the connector stage at
chance: a frozen LM that reads scenes by copying caption words offers one image token per
cell nothing to latch onto.

Everything is seeded: the same ``ToyMlpConfig`` on the same torch build and thread count
gives the same weights. A killed run resumes from the last finished stage or checkpoint.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.data.synthetic import GridObject
from vislens.models.toy import mlp_common
from vislens.models.toy.build import GRID, N_IMAGE_TOKENS, build_toy_vlm
from vislens.models.toy.mlp_common import (
    TextItem,
    ToyMlpConfig,
    _checkpoint,
    _lm_params,
    _optimise,
    _text_batch,
)
from vislens.models.toy.tasks import caption_question
from vislens.models.toy.tower import cosine_lr, tower_features, train_tower
from vislens.models.toy.train import (
    Example,
    _load_resume,
    calibrate_connector,
    lm_forward,
    prompt_forward,
    question_and_answer,
    resume_path,
    save_toy,
)
from vislens.models.toy.vocab import PAD, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

log = logging.getLogger("vislens.toy.train")


def scene_words(objects: list[GridObject]) -> np.ndarray:
    """``(100, 2)`` token ids naming each cell of a scene: its colour and shape words, or
    ``empty`` and -1 for a cell with no object."""
    out = np.full((N_IMAGE_TOKENS, 2), -1, dtype=np.int64)
    out[:, 0] = VOCAB["empty"]
    for o in objects:
        out[o.r * GRID + o.c] = (VOCAB[o.color], VOCAB[o.shape])
    return out


def written_scene(model: LlavaForConditionalGeneration, words: torch.Tensor) -> torch.Tensor:
    """The text stage's stand-in for image tokens: per cell, the sum of the input
    embeddings of its words (``words`` from ``scene_words``, ``(b, 100, 2)``) ->
    ``(b, 100, d)``."""
    import torch

    emb = model.model.language_model.embed_tokens.weight
    has_shape = (words[..., 1] >= 0)[..., None]
    shape = emb[words[..., 1].clamp(min=0)]
    return emb[words[..., 0]] + torch.where(has_shape, shape, torch.zeros_like(shape))


def text_forward(
    model: LlavaForConditionalGeneration,
    items: list[TextItem],
    words: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels (flattened over the positions with a loss) of a text-stage batch:
    plain captions learn every token after ``<s>``, questions their answer, with the scene
    written where the image goes: the words ``words[example.image]`` as ``written_scene``."""
    import torch

    lm = model.model.language_model
    logits, labels = [], []
    plain = [it.ids for it in items if it.ids is not None]
    if plain:
        t = max(len(s) for s in plain)
        ids = torch.full((len(plain), t), VOCAB[PAD], dtype=torch.long)
        lab = torch.full((len(plain), t), -100, dtype=torch.long)
        for j, s in enumerate(plain):
            ids[j, : len(s)] = torch.tensor(s)
            lab[j, : len(s) - 1] = torch.tensor(s[1:])
        out = model.lm_head(lm(input_ids=ids).last_hidden_state)
        logits.append(out[lab != -100])
        labels.append(lab[lab != -100])
    asked = [it.example for it in items if it.example is not None]
    if asked:
        which = torch.tensor([e.image for e in asked])
        out, lab, _ = prompt_forward(model, written_scene(model, words[which]), asked, 0)
        logits.append(out[lab != -100])
        labels.append(lab[lab != -100])
    return torch.cat(logits), torch.cat(labels)


def train_text(
    model: LlavaForConditionalGeneration,
    objects: list[list[GridObject]],
    cfg: ToyMlpConfig,
    out_dir: Path | None = None,
    *,
    resume: dict[str, Any] | None = None,
    keep: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Stage 2 (``slots="sum"``): the LM alone, next-token loss on every text token after
    ``<s>``; questions see the scene written as its words' embedding sums."""
    import torch

    from vislens.progress import track

    torch.manual_seed(cfg.seed + 2)
    params = _lm_params(model)
    opt = torch.optim.AdamW(params, lr=cfg.text_lr, weight_decay=0.01)
    first = 0
    if resume is not None and resume["stage"] == "text":
        opt.load_state_dict(resume["opt"])
        first = int(resume["step"])
    lm = model.model.language_model
    lm.train()
    words = torch.from_numpy(np.stack([scene_words(o) for o in objects]))
    t0, loss_v = time.time(), float("nan")
    for step in track(range(first, cfg.text_steps), "toy-mlp: text", total=cfg.text_steps - first):
        rng = np.random.default_rng([cfg.seed, 5, step])
        logits, labels = text_forward(
            model, _text_batch(objects, rng, cfg.text_task_weights, cfg.text_batch), words
        )
        mask = torch.ones_like(labels, dtype=torch.bool)
        loss_v = _optimise(
            opt, params, logits, labels, mask, cosine_lr(step, cfg.text_steps, cfg.text_lr)
        )
        if step % 100 == 0 or step == cfg.text_steps - 1:
            log.info("text step %d loss %.4f %.0fs", step, loss_v, time.time() - t0)
        if (step + 1) % mlp_common.CHECKPOINT_EVERY == 0 and step + 1 < cfg.text_steps:
            _checkpoint(model, out_dir, cfg, "text", step + 1, opt, keep or {})
    lm.eval()
    return {"text_final_loss": loss_v}


def train_connector(
    model: LlavaForConditionalGeneration,
    feats: torch.Tensor,
    objects: list[list[GridObject]],
    cfg: ToyMlpConfig,
    out_dir: Path | None = None,
    *,
    resume: dict[str, Any] | None = None,
    keep: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Stage 3: only the connector trains, on captions, in front of the frozen LM."""
    import torch

    from vislens.progress import track

    for p in [*_lm_params(model), *model.model.vision_tower.parameters()]:
        p.requires_grad_(False)
    proj = model.model.multi_modal_projector
    params = list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.connector_lr, weight_decay=0.01)
    first = 0
    if resume is not None and resume["stage"] == "connector" and resume["opt"] is not None:
        opt.load_state_dict(resume["opt"])
        first = int(resume["step"])
    proj.train()
    t0 = time.time()
    accs: list[float] = []
    loss_v = float("nan")
    steps = range(first, cfg.connector_steps)
    for step in track(steps, "toy-mlp: connector", total=cfg.connector_steps - first):
        rng = np.random.default_rng([cfg.seed, 7, step])
        idx = rng.integers(len(objects), size=cfg.connector_batch)
        examples = []
        for i in idx.tolist():
            qa = caption_question(objects[i])
            examples.append(
                Example(i, "caption", *question_and_answer(qa.question, qa.answer), None)
            )
        logits, labels, _ = lm_forward(model, feats[torch.from_numpy(idx)].float(), examples, 1)
        mask = labels != -100
        lr = cosine_lr(step, cfg.connector_steps, cfg.connector_lr)
        loss_v = _optimise(opt, params, logits, labels, mask, lr)
        with torch.no_grad():
            accs.extend(((logits.argmax(-1) == labels) | ~mask).all(dim=1).float().tolist())
        if step % 100 == 0 or step == cfg.connector_steps - 1:
            log.info(
                "connector step %d loss %.4f caption acc %.3f %.0fs",
                step, loss_v, float(np.mean(accs[-500:])), time.time() - t0,
            )  # fmt: skip
        if (step + 1) % mlp_common.CHECKPOINT_EVERY == 0 and step + 1 < cfg.connector_steps:
            _checkpoint(model, out_dir, cfg, "connector", step + 1, opt, keep or {})
    proj.eval()
    return {"connector_final_loss": loss_v, "train_caption_acc": float(np.mean(accs[-500:]))}


def train_toy_mlp(
    out_dir: Path, cfg: ToyMlpConfig | None = None, *, checkpoints: bool = True
) -> dict[str, float]:
    """Train ``toy-mlp`` (tower, [teacher,] text, connector) and save it to ``out_dir``;
    a stopped run resumes when started again with the same configuration."""
    import torch

    cfg = cfg or ToyMlpConfig()
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.n_threads)
    model = build_toy_vlm(cfg.arch, seed=cfg.seed)
    ckpt = out_dir if checkpoints else None
    resume = _load_resume(resume_path(out_dir), cfg) if checkpoints else None
    if resume is None:
        metrics = _tower_stage(model, cfg)
    else:
        log.info("resuming %s at step %d", resume["stage"], resume["step"])
        model.load_state_dict(resume["model"])
        for p in model.model.vision_tower.parameters():
            p.requires_grad_(False)
        metrics = dict(resume["metrics"])
    feats, objects = tower_features(model, cfg.world_seed, cfg.n_pool)
    if cfg.slots == "teacher":
        metrics = _teacher_recipe(model, feats, objects, cfg, ckpt, resume, metrics)
    else:
        stage = None if resume is None else resume["stage"]
        keep: dict[str, Any] = {"metrics": metrics}
        if stage in (None, "text"):
            metrics |= train_text(model, objects, cfg, ckpt, resume=resume, keep=keep)
            # Image tokens start at the scale of what the LM learned to read there.
            calibrate_connector(model, feats[:256], 1.0)
            _checkpoint(model, ckpt, cfg, "connector", 0, None, {"metrics": metrics})
            resume = None
        metrics |= train_connector(
            model, feats, objects, cfg, ckpt, resume=resume, keep={"metrics": metrics}
        )
    save_toy(model, out_dir, cfg, extra={"metrics": metrics})
    if checkpoints:
        resume_path(out_dir).unlink(missing_ok=True)
    return metrics


def _tower_stage(model: LlavaForConditionalGeneration, cfg: ToyMlpConfig) -> dict[str, float]:
    """Stage 1: train the tower (``tower="train"``), or take the shipped QA toy's."""
    if cfg.tower == "train":
        return train_tower(model, cfg.tower_config())
    from transformers import LlavaForConditionalGeneration

    from vislens.errors import InputError
    from vislens.models.toy.paths import toy_model_dir

    qa = LlavaForConditionalGeneration.from_pretrained(toy_model_dir())
    try:
        model.model.vision_tower.load_state_dict(qa.model.vision_tower.state_dict())
    except RuntimeError as exc:
        raise InputError(
            "toy-mlp: tower='toy' takes the shipped toy's vision tower, whose sizes differ "
            "from this arch's vision_* fields; keep those at their defaults or use "
            f"tower='train' ({str(exc).splitlines()[0]})"
        ) from None
    for p in model.model.vision_tower.parameters():
        p.requires_grad_(False)
    return {}


def _teacher_recipe(
    model: LlavaForConditionalGeneration,
    feats: torch.Tensor,
    objects: list[list[GridObject]],
    cfg: ToyMlpConfig,
    ckpt: Path | None,
    resume: dict[str, Any] | None,
    metrics: dict[str, float],
) -> dict[str, float]:
    """Stages 2a (teacher), 2 (text) and 3 (connector) of ``slots="teacher"``."""
    from vislens.models.toy import teacher as tr

    stage = None if resume is None else resume["stage"]
    keep: dict[str, Any] = {"metrics": metrics}
    if stage in (None, "teacher"):
        metrics |= tr.run_stage(
            model, objects, cfg, "teacher", None, ckpt, resume=resume, keep=keep
        )
        keep["teacher"] = {k: v.clone() for k, v in model.model.language_model.state_dict().items()}
        stage, resume = None, None
    elif resume is not None and "teacher" in resume:
        keep["teacher"] = resume["teacher"]
    if stage in (None, "text"):
        scenes = tr.TeacherScenes(
            tr.frozen_teacher(model, keep["teacher"]), objects, cfg.slot_layer
        )
        metrics |= tr.run_stage(model, objects, cfg, "text", scenes, ckpt, resume=resume, keep=keep)
        # Image tokens start at the scale of what the LM learned to read there.
        tr.scale_connector(model, feats[:256], tr.connector_target_rms(scenes))
        _checkpoint(model, ckpt, cfg, "connector", 0, None, {"metrics": metrics})
        resume = None
    slots = tr.connector_slots(model, feats)
    keep = {"metrics": metrics}
    return metrics | tr.run_stage(
        model, objects, cfg, "connector", slots, ckpt, resume=resume, keep=keep
    )
