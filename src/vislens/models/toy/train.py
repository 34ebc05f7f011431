"""Train the toy VLM from scratch on the synthetic grid world, in two stages.

Stage 1 (``tower``): the CLIP vision tower learns what each cell holds — a per-patch
linear head on the tower's last hidden state predicts the cell's shape, colour, row and
column. End-to-end training from scratch stays at chance for a long time; giving the tower
its own dense signal first makes the second stage quick.

Stage 2 (``lm``): with the tower frozen, the connector and the Llama LM learn captions and
questions (``tasks.py``) in the toy prompt ``<s> {question} <image> answer: {answer}</s>``.
The question comes first so each image token can compare its own content with the words
asked about, and the answer token only has to read the tokens that matched. Answer tokens
(and ``</s>``) carry the language-model loss; an auxiliary *evidence* loss tells the
image tokens, part-way up the LM, which cells the question is about (``evidence_loss``).
Without it stage 2 stayed at chance for thousands of steps. Because the tower is frozen
its features are computed once per image.

Everything is seeded: the same ``ToyTrainConfig`` on the same torch build gives the same
weights.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vislens.data.synthetic import GridObject
from vislens.models.toy.build import (
    N_IMAGE_TOKENS,
    build_toy_processor,
    build_toy_vlm,
)
from vislens.models.toy.config import ToyTrainConfig
from vislens.models.toy.tasks import TASKS, sample_qa
from vislens.models.toy.tower import cosine_lr, tower_features, train_tower
from vislens.models.toy.vocab import BOS, EOS, IMAGE, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

log = logging.getLogger("vislens.toy.train")


class TrainConfig(Protocol):
    """What ``save_toy`` and resuming need of a training configuration."""

    def to_json(self) -> dict[str, object]: ...


CHECKPOINT_EVERY = 500
"""Stage 2 steps between checkpoints (model in the output directory, full state beside it)."""

TRAIN_JSON_VERSION = 1
"""Schema version of ``train.json`` (docs/formats/toy-model.md)."""


@lru_cache(maxsize=100_000)
def _encode(text: str) -> tuple[int, ...]:
    return tuple(_tokenizer()(text, add_special_tokens=False).input_ids)


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    return build_toy_processor().tokenizer


def question_and_answer(qa_question: str, qa_answer: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids of the text before the image (``<s>`` and the question), after it
    (``answer:``), and the supervised answer (ending in ``</s>``), for the toy prompt
    ``<s> {question} <image> answer: {answer}</s>``."""
    before = [VOCAB[BOS], *_encode(qa_question)]
    after = list(_encode(" answer:"))
    target = [*_encode(qa_answer), VOCAB[EOS]]
    return before, after, target


@dataclass(frozen=True)
class Example:
    """One training sequence: a scene from the pool, one question about it, its answer."""

    image: int
    """Index of the scene in the feature pool."""
    kind: str
    """Task (``tasks.TASKS``)."""
    before: list[int]
    after: list[int]
    target: list[int]
    evidence: np.ndarray | None
    """``(100,)`` float 0/1: the cells the answer depends on (None for captions)."""

    @property
    def length(self) -> int:
        return len(self.before) + N_IMAGE_TOKENS + len(self.after) + len(self.target)


def sample_batch(
    objects: list[list[GridObject]], rng: np.random.Generator, cfg: ToyTrainConfig
) -> list[Example]:
    """``cfg.lm_batch`` examples, each a random scene with a question of a task drawn by
    ``cfg.task_weights`` (tasks are mixed within a step)."""
    kinds = list(cfg.task_weights)
    w = np.asarray([cfg.task_weights[k] for k in kinds], dtype=np.float64)
    out = []
    for _ in range(cfg.lm_batch):
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        i = int(rng.integers(len(objects)))
        qa = sample_qa(objects[i], rng, kind)
        flags = None
        if qa.evidence is not None:
            flags = np.zeros(N_IMAGE_TOKENS, dtype=np.float32)
            flags[list(qa.evidence)] = 1.0
        out.append(Example(i, kind, *question_and_answer(qa.question, qa.answer), flags))
    return out


def lm_forward(
    model: LlavaForConditionalGeneration,
    feats_bnd: torch.Tensor,
    examples: list[Example],
    hidden_layer: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the LM on ``before``, the connector's image tokens, ``after`` + ``target`` of each
    example — the model's own forward on the expanded prompt, without re-running the frozen
    tower (a test checks the equality). Rows are right-padded, which causal attention never
    sees. Returns logits ``(b, t, vocab)``, labels ``(b, t)`` (the token each position
    predicts; -100 where no loss) and the hidden state after ``hidden_layer`` LM blocks at
    the image tokens ``(b, 100, d)``."""
    return prompt_forward(
        model, model.model.multi_modal_projector(feats_bnd), examples, hidden_layer
    )


def prompt_forward(
    model: LlavaForConditionalGeneration,
    img: torch.Tensor,
    examples: list[Example],
    hidden_layer: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``lm_forward`` with the image tokens ``img`` ``(b, 100, d)`` given directly (the
    connector's output, or a scene written as word embeddings)."""
    import torch

    embed = model.model.language_model.embed_tokens
    t = max(e.length for e in examples)
    d = img.shape[-1]
    x = img.new_zeros((len(examples), t, d))
    labels = torch.full((len(examples), t), -100, dtype=torch.long)
    for j, e in enumerate(examples):
        n0 = len(e.before)
        text = torch.tensor(e.after + e.target, dtype=torch.long)
        x[j, :n0] = embed(torch.tensor(e.before, dtype=torch.long))
        x[j, n0 : n0 + N_IMAGE_TOKENS] = img[j]
        x[j, n0 + N_IMAGE_TOKENS : e.length] = embed(text)
        first = e.length - len(e.target)
        labels[j, first - 1 : e.length - 1] = torch.tensor(e.target, dtype=torch.long)
    out = model.model.language_model(inputs_embeds=x, output_hidden_states=True)
    hidden = torch.stack(
        [
            out.hidden_states[hidden_layer][j, len(e.before) : len(e.before) + N_IMAGE_TOKENS]
            for j, e in enumerate(examples)
        ]
    )
    return model.lm_head(out.last_hidden_state), labels, hidden


def calibrate_connector(
    model: LlavaForConditionalGeneration, feats_bnd: torch.Tensor, target_rms: float = 1.0
) -> None:
    """Scale the connector's output layer so image tokens enter the LM at ``target_rms``
    (by default unit RMS, the scale of the word embeddings)."""
    import torch

    proj = model.model.multi_modal_projector
    with torch.no_grad():
        rms = proj(feats_bnd.float()).pow(2).mean().sqrt() / target_rms
        proj.linear_2.weight.div_(rms)
        proj.linear_2.bias.div_(rms)


def evidence_loss(
    head: torch.nn.Linear, hidden: torch.Tensor, examples: list[Example]
) -> torch.Tensor:
    """Auxiliary loss: from the LM's hidden state at each image token (RMS-normalised), a
    linear head predicts whether that cell is evidence for the question asked.

    This is what makes stage 2 learn. Answering needs a lookup — each image token must
    compare its content with the question, then the answer token must read the tokens
    that matched — and with only the answer's loss the model sits at chance for thousands
    of steps (no single step of the lookup helps on its own). Telling the image tokens
    which of them match gives the first step a dense signal (100 targets per question);
    the second step, reading the flagged tokens, is then quick to learn. The head is
    dropped after training; the model stays a plain LLaVA.
    """
    import torch

    rows = [j for j, e in enumerate(examples) if e.evidence is not None]
    if not rows:
        return hidden.new_zeros(())
    h = hidden[rows]
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
    target = torch.from_numpy(np.stack([examples[j].evidence for j in rows]))  # type: ignore[misc]
    logits = head(h).squeeze(-1)
    # About 2 of 100 cells are evidence: weigh them up so they are not ignored.
    return torch.nn.functional.binary_cross_entropy_with_logits(
        logits, target, pos_weight=torch.tensor(10.0)
    )


def train_lm(
    model: LlavaForConditionalGeneration,
    feats: torch.Tensor,
    objects: list[list[GridObject]],
    cfg: ToyTrainConfig,
    checkpoint_dir: Path | None = None,
    *,
    resume: dict[str, Any] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    keep: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Stage 2: train connector + LM on single-turn questions (tower frozen), with the
    evidence loss on the LM's image tokens.

    With ``checkpoint_dir``, every ``checkpoint_every`` steps the model is saved there and
    the whole training state to ``resume_path(checkpoint_dir)``; ``resume`` (that file's
    contents) continues from it, giving the same weights as an uninterrupted run; ``keep``
    is stored in that file as it is."""
    import torch

    from vislens.progress import track

    if not 1 <= cfg.evidence_layer <= cfg.arch.text_layers:
        raise ValueError(
            f"evidence_layer={cfg.evidence_layer} must name one of the LM's "
            f"{cfg.arch.text_layers} blocks (1..{cfg.arch.text_layers})"
        )
    torch.manual_seed(cfg.seed + 1)
    head = torch.nn.Linear(cfg.arch.text_hidden, 1)
    params = [
        *model.model.multi_modal_projector.parameters(),
        *model.model.language_model.parameters(),
        *model.lm_head.parameters(),
        *head.parameters(),
    ]
    opt = torch.optim.AdamW(params, lr=cfg.lm_lr, weight_decay=0.01)
    model.model.multi_modal_projector.train()
    model.model.language_model.train()
    running: dict[str, list[float]] = {k: [] for k in TASKS}
    first_step = 0
    if resume is not None:
        head.load_state_dict(resume["head"])
        opt.load_state_dict(resume["opt"])
        running = resume["running"]
        first_step = int(resume["step"])
    t0 = time.time()
    steps = range(first_step, cfg.lm_steps)
    for step in track(steps, "toy: stage 2 (connector + LM)", total=cfg.lm_steps - first_step):
        rng = np.random.default_rng([cfg.seed, 3, step])
        examples = sample_batch(objects, rng, cfg)
        idx = torch.tensor([e.image for e in examples])
        logits, labels, hidden = lm_forward(model, feats[idx].float(), examples, cfg.evidence_layer)
        mask = labels != -100
        answer_loss = torch.nn.functional.cross_entropy(logits[mask], labels[mask])
        aux = evidence_loss(head, hidden, examples)
        loss = answer_loss + cfg.evidence_weight * aux
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, cfg.lm_steps, cfg.lm_lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            # Whole-answer accuracy (every answer token right), the figure eval reports.
            ok = ((logits.argmax(-1) == labels) | ~mask).all(dim=1).tolist()
        for e, good in zip(examples, ok, strict=True):
            running[e.kind].append(float(good))
        if step % 100 == 0 or step == cfg.lm_steps - 1:
            accs = {k: float(np.mean(v[-500:])) for k, v in running.items() if v}
            log.info(
                "lm step %d loss %.4f evidence %.4f %.0fs answer acc %s",
                step,
                float(answer_loss.detach()),
                float(aux.detach()),
                time.time() - t0,
                " ".join(f"{k}={a:.3f}" for k, a in accs.items()),
            )
        if checkpoint_dir is not None and (step + 1) % checkpoint_every == 0:
            save_toy(model, checkpoint_dir, cfg, extra={"step": step + 1})
            state = {
                "config": cfg.to_json(),
                "step": step + 1,
                "model": model.state_dict(),
                "head": head.state_dict(),
                "opt": opt.state_dict(),
                "running": running,
                **(keep or {}),
            }
            _save_atomic(state, resume_path(checkpoint_dir))
    model.eval()
    return {f"train_answer_acc_{k}": float(np.mean(v[-500:])) for k, v in running.items() if v}


def save_toy(
    model: LlavaForConditionalGeneration,
    out_dir: Path,
    cfg: TrainConfig,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write model (safetensors + config), processor and ``train.json`` to ``out_dir``
    atomically (built beside it and renamed into place)."""
    import shutil

    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, safe_serialization=True)
    build_toy_processor().save_pretrained(tmp)
    (tmp / "train.json").write_text(
        json.dumps(
            {"schema_version": TRAIN_JSON_VERSION, "config": cfg.to_json(), **(extra or {})},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    old = out_dir.with_name(f".{out_dir.name}.old")
    if out_dir.exists():
        if old.exists():
            shutil.rmtree(old)
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)
    return out_dir


def resume_path(out_dir: Path) -> Path:
    """Where training keeps the state it resumes from: a hidden file beside ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir.with_name(f".{out_dir.name}.resume.pt")


def _save_atomic(obj: object, path: Path) -> None:
    import os

    import torch

    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_resume(path: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    import torch

    from vislens.errors import InputError

    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if json.loads(json.dumps(state["config"])) != json.loads(json.dumps(cfg.to_json())):
        raise InputError(
            f"{path} holds an interrupted toy training run with another configuration; "
            "re-run with the same options to resume it, or delete the file to start afresh"
        )
    return state


def train_toy_vlm(
    out_dir: Path, cfg: ToyTrainConfig | None = None, *, checkpoints: bool = True
) -> dict[str, float]:
    """Train the toy VLM from scratch (both stages) and save it to ``out_dir``. A run that
    was stopped resumes from its last checkpoint (``resume_path``) when started again with
    the same configuration."""
    import torch

    cfg = cfg or ToyTrainConfig()
    out_dir = Path(out_dir)
    torch.set_num_threads(cfg.n_threads)
    model = build_toy_vlm(cfg.arch, seed=cfg.seed)
    resume = _load_resume(resume_path(out_dir), cfg) if checkpoints else None
    if resume is None:
        metrics = train_tower(model, cfg)
    else:
        log.info("resuming stage 2 at step %d from %s", resume["step"], resume_path(out_dir))
        model.load_state_dict(resume["model"])
        for p in model.model.vision_tower.parameters():
            p.requires_grad_(False)
        metrics = dict(resume["tower_metrics"])
    feats, objects = tower_features(model, cfg.world_seed, cfg.n_pool)
    if resume is None:
        calibrate_connector(model, feats[:256])
    checkpoint_dir = out_dir if checkpoints else None
    metrics |= train_lm(
        model,
        feats,
        objects,
        cfg,
        checkpoint_dir,
        resume=resume,
        checkpoint_every=CHECKPOINT_EVERY,
        keep={"tower_metrics": dict(metrics)},
    )
    save_toy(model, out_dir, cfg, extra={"step": cfg.lm_steps, "metrics": metrics})
    if checkpoints:
        resume_path(out_dir).unlink(missing_ok=True)
    return metrics


def record_eval(model_dir: Path, report: dict[str, object]) -> None:
    """Add an eval report to ``model_dir/train.json`` (atomically)."""
    from vislens.io import write_json_atomic

    path = Path(model_dir) / "train.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    info["eval"] = report
    write_json_atomic(path, info)


__all__ = ["IMAGE", "ToyTrainConfig", "record_eval", "save_toy", "train_toy_vlm"]
