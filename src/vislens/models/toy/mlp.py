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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.data.synthetic import GridObject, caption_for
from vislens.models.toy.build import GRID, N_IMAGE_TOKENS, ToyArch, build_toy_vlm
from vislens.models.toy.config import TRAIN_WORLD_SEED, ToyTrainConfig
from vislens.models.toy.tasks import caption_question, sample_qa
from vislens.models.toy.tower import cosine_lr, tower_features, train_tower
from vislens.models.toy.train import (
    Example,
    _encode,
    _load_resume,
    _save_atomic,
    calibrate_connector,
    lm_forward,
    prompt_forward,
    question_and_answer,
    resume_path,
    save_toy,
)
from vislens.models.toy.vocab import BOS, EOS, PAD, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

log = logging.getLogger("vislens.toy.train")

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
        if (step + 1) % CHECKPOINT_EVERY == 0 and step + 1 < cfg.text_steps:
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
        if (step + 1) % CHECKPOINT_EVERY == 0 and step + 1 < cfg.connector_steps:
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
