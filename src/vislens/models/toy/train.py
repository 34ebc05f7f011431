"""Train the toy VLM from scratch on the synthetic grid world, in two stages.

Stage 1 (``tower``): the CLIP vision tower learns what each cell holds — a per-patch
linear head on the tower's last hidden state predicts the cell's shape, colour, row and
column. End-to-end training from scratch stays at chance for a long time; giving the tower
its own dense signal first makes the second stage quick.

Stage 2 (``lm``): with the tower frozen, the connector and the Llama LM learn captions and
questions (``tasks.py``) in the toy prompt ``{question} <image> answer: {answer}</s>``.
The question comes first so each image token can compare its own content with the words
asked about, and the answer token only has to pool those matches; with the image first
the same model stayed at chance for 600 steps. Only answer tokens (and ``</s>``) carry
loss. Because the tower is frozen its features are computed once per image.

Everything is seeded: the same ``ToyTrainConfig`` on the same torch build gives the same
weights.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.data.synthetic import COLORS, SHAPES, GridObject, WorldSpec, sample_scene
from vislens.models.toy.build import (
    GRID,
    N_IMAGE_TOKENS,
    ToyArch,
    build_toy_processor,
    build_toy_vlm,
    pixel_values_for,
)
from vislens.models.toy.tasks import TASKS, sample_qa
from vislens.models.toy.vocab import EOS, IMAGE, VOCAB

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

log = logging.getLogger("vislens.toy.train")

TRAIN_WORLD_SEED = 1000
"""World seed of the training images (eval uses other seeds)."""

TRAIN_JSON_VERSION = 1
"""Schema version of ``train.json`` (docs/formats/toy-model.md)."""


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
    n_pool: int = 4000
    """Scenes whose frozen-tower features stage 2 trains on."""
    dense_fraction: float = 0.5
    """Share of crowded scenes (10-40 shapes) in the stage 2 pool. With 1-6 shapes, 95 of
    100 image tokens are alike and the LM never learns where to look; crowded scenes make
    every token informative."""
    lm_steps: int = 3000
    """Stage 2 optimiser steps."""
    lm_batch: int = 32
    """Sequences (one image each) per stage 2 step."""
    lm_lr: float = 3e-3
    """Stage 2 peak learning rate."""
    task_weights: dict[str, float] = field(
        default_factory=lambda: {
            "presence": 0.3,
            "cell_color": 0.2,
            "cell_shape": 0.2,
            "location": 0.12,
            "count": 0.12,
            "caption": 0.04,
        }
    )
    """Relative frequency of each task among training questions."""
    n_threads: int = 1
    """torch CPU threads."""
    arch: ToyArch = field(default_factory=ToyArch)
    """Model sizes."""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _cosine_lr(step: int, n_steps: int, peak: float, warmup: int = 100) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, n_steps - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * t)))


def cell_targets(objects: list[GridObject]) -> np.ndarray:
    """``(100, 2)`` int64 per cell: shape index and colour index, 0 meaning empty."""
    out = np.zeros((N_IMAGE_TOKENS, 2), dtype=np.int64)
    for o in objects:
        out[o.r * GRID + o.c] = (SHAPES.index(o.shape) + 1, tuple(COLORS).index(o.color) + 1)
    return out


DENSE_WORLD = WorldSpec(min_objects=10, max_objects=40)
"""Crowded scenes for stage 1: ten times the shapes per image, so the tower sees many
more cells with a shape for the same compute (cells are drawn independently)."""


def _scenes(
    world_seed: int, start: int, n: int, spec: WorldSpec | None = None
) -> tuple[list, list[list[GridObject]]]:
    spec = spec or WorldSpec()
    pairs = [sample_scene(spec, world_seed, i) for i in range(start, start + n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def grid_position_code(d: int, grid: int = GRID) -> np.ndarray:
    """``(grid * grid, d)`` 2-D sine-cosine code of each cell (half the width for the row,
    half for the column), scaled to unit variance."""
    half = d // 2
    n_freq = half // 2
    freqs = 1.0 / (grid ** (np.arange(n_freq) / max(1, n_freq)))
    pos = np.arange(grid)[:, None] * freqs[None, :] * np.pi / 2

    def code(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.sin(x), np.cos(x)], axis=1)

    rows = np.repeat(code(pos), grid, axis=0)
    cols = np.tile(code(pos), (grid, 1))
    out = np.zeros((grid * grid, d), dtype=np.float32)
    out[:, : 2 * n_freq] = rows
    out[:, half : half + 2 * n_freq] = cols
    return out / out.std()


def train_tower(model: LlavaForConditionalGeneration, cfg: ToyTrainConfig) -> dict[str, float]:
    """Stage 1: train the vision tower with per-patch shape/colour/row/column heads."""
    import torch

    tower = model.model.vision_tower
    d = tower.config.hidden_size
    torch.manual_seed(cfg.seed)
    # CLIP's position embeddings start at std 0.02, far below the patch content, and a
    # from-scratch tower takes long to separate cells; a 2-D sine-cosine start fixes that.
    with torch.no_grad():
        pos = tower.embeddings.position_embedding.weight
        pos[1:] = torch.from_numpy(grid_position_code(d))
    heads = torch.nn.ModuleDict(
        {
            "shape": torch.nn.Linear(d, len(SHAPES) + 1),
            "color": torch.nn.Linear(d, len(COLORS) + 1),
            "row": torch.nn.Linear(d, GRID),
            "col": torch.nn.Linear(d, GRID),
        }
    )
    rows = torch.arange(N_IMAGE_TOKENS) // GRID
    cols = torch.arange(N_IMAGE_TOKENS) % GRID
    # Most cells are empty; down-weight "empty" so the few shapes drive learning.
    w_shape = torch.ones(len(SHAPES) + 1)
    w_shape[0] = 0.1
    w_color = torch.ones(len(COLORS) + 1)
    w_color[0] = 0.1
    opt = torch.optim.AdamW(
        [
            {"params": list(tower.parameters()), "lr": cfg.tower_lr},
            {"params": list(heads.parameters()), "lr": 3 * cfg.tower_lr},
        ],
        weight_decay=0.01,
    )
    peak = [g["lr"] for g in opt.param_groups]
    ce = torch.nn.functional.cross_entropy
    tower.train()
    acc = 0.0
    for step in range(cfg.tower_steps):
        # Half crowded scenes (for shape examples), half the normal world.
        half = cfg.tower_batch // 2
        start = 10_000_000 + step * cfg.tower_batch
        dense_images, dense_objects = _scenes(cfg.world_seed, start, half, DENSE_WORLD)
        images, objects = _scenes(cfg.world_seed, start + half, cfg.tower_batch - half)
        images, objects = dense_images + images, dense_objects + objects
        pix = torch.from_numpy(pixel_values_for(images))
        tgt = torch.from_numpy(np.stack([cell_targets(o) for o in objects]))
        h = tower(pix, output_hidden_states=True).hidden_states[-1][:, 1:]
        b = h.shape[0]
        logits = {k: head(h).flatten(0, 1) for k, head in heads.items()}
        loss = (
            2 * ce(logits["shape"], tgt[..., 0].flatten(), weight=w_shape)
            + ce(logits["color"], tgt[..., 1].flatten(), weight=w_color)
            + ce(logits["row"], rows.repeat(b))
            + ce(logits["col"], cols.repeat(b))
        )
        for g, p in zip(opt.param_groups, peak, strict=True):
            g["lr"] = _cosine_lr(step, cfg.tower_steps, p, warmup=20)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == cfg.tower_steps - 1:
            with torch.no_grad():
                ok = (logits["shape"].argmax(-1) == tgt[..., 0].flatten()) & (
                    logits["color"].argmax(-1) == tgt[..., 1].flatten()
                )
                occupied = tgt[..., 0].flatten() > 0
                acc = float(ok[occupied].float().mean())
                pos_ok = (logits["row"].argmax(-1) == rows.repeat(b)) & (
                    logits["col"].argmax(-1) == cols.repeat(b)
                )
                shape_ok = logits["shape"].argmax(-1) == tgt[..., 0].flatten()
                color_ok = logits["color"].argmax(-1) == tgt[..., 1].flatten()
            log.info(
                "tower step %d loss %.4f occupied-cell acc %.4f (shape %.4f colour %.4f) "
                "all-cell acc %.4f row/col acc %.4f",
                step,
                float(loss.detach()),
                acc,
                float(shape_ok[occupied].float().mean()),
                float(color_ok[occupied].float().mean()),
                float(ok.float().mean()),
                float(pos_ok.float().mean()),
            )
    tower.eval()
    for p in tower.parameters():
        p.requires_grad_(False)
    init_connector_from_heads(model, heads)
    return {"tower_occupied_cell_acc": acc}


def init_connector_from_heads(
    model: LlavaForConditionalGeneration, heads: torch.nn.ModuleDict
) -> None:
    """Start the connector as the stage 1 probe: its first layer's leading units are the
    shape, colour, row and column logits of each cell, passed on unchanged by the second.

    A connector and LM both started at random stay at chance on every question for
    hundreds of steps (nothing tells the LM which image features matter); starting from
    the probe hands it clean per-cell content at once. Both layers keep training.
    """
    import torch

    proj = model.model.multi_modal_projector
    linears = [heads[k] for k in ("shape", "color", "row", "col")]
    w = torch.cat([lin.weight for lin in linears if isinstance(lin, torch.nn.Linear)])
    b = torch.cat([lin.bias for lin in linears if isinstance(lin, torch.nn.Linear)])
    n = w.shape[0]
    d_text = proj.linear_2.weight.shape[0]
    if n > d_text:
        return
    with torch.no_grad():
        proj.linear_1.weight[:n] = w
        proj.linear_1.bias[:n] = b
        proj.linear_2.weight.mul_(0.1)
        proj.linear_2.weight[:n, :n] += torch.eye(n)
        proj.linear_2.bias.zero_()


def tower_features(
    model: LlavaForConditionalGeneration,
    world_seed: int,
    n: int,
    batch: int = 64,
    *,
    dense_fraction: float = 0.0,
) -> tuple[torch.Tensor, list[list[GridObject]]]:
    """Frozen-tower features ``(n, 100, d_vision)`` (float16 to save memory) and objects;
    the first ``dense_fraction`` of the scenes are crowded ones."""
    import torch

    from vislens.progress import track

    tower = model.model.vision_tower
    feats: list[torch.Tensor] = []
    all_objects: list[list[GridObject]] = []
    with torch.no_grad():
        for start in track(range(0, n, batch), "toy: tower features"):
            spec = DENSE_WORLD if start < dense_fraction * n else None
            images, objects = _scenes(world_seed, start, min(batch, n - start), spec)
            pix = torch.from_numpy(pixel_values_for(images))
            h = tower(pix, output_hidden_states=True).hidden_states[-1][:, 1:]
            feats.append(h.to(torch.float16))
            all_objects.extend(objects)
    return torch.cat(feats), all_objects


@lru_cache(maxsize=100_000)
def _encode(text: str) -> tuple[int, ...]:
    return tuple(_tokenizer()(text, add_special_tokens=False).input_ids)


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    return build_toy_processor().tokenizer


def question_and_answer(qa_question: str, qa_answer: str) -> tuple[list[int], list[int], list[int]]:
    """Token ids of the text before the image, after it, and the supervised answer (ending
    in ``</s>``), for the toy prompt ``{question} <image> answer: {answer}</s>``."""
    before = list(_encode(qa_question))
    after = list(_encode(" answer:"))
    target = [*_encode(qa_answer), VOCAB[EOS]]
    return before, after, target


def sample_batch(
    objects: list[list[GridObject]], rng: np.random.Generator, cfg: ToyTrainConfig
) -> tuple[np.ndarray, list[tuple[list[int], list[int], list[int]]], str]:
    """One task for the whole step (so every question has the same length and sits right
    before the image without padding): the scenes used and their (before, after, target)."""
    kinds = list(cfg.task_weights)
    w = np.asarray([cfg.task_weights[k] for k in kinds], dtype=np.float64)
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    idx = rng.integers(0, len(objects), size=2 * cfg.lm_batch)
    items = [(int(i), question_and_answer(*_qa_text(objects[int(i)], rng, kind))) for i in idx]
    # Count questions come in two phrasings of different lengths: keep the commoner one.
    lengths = [len(x[1][0]) for x in items]
    keep = max(set(lengths), key=lengths.count)
    items = [x for x in items if len(x[1][0]) == keep][: cfg.lm_batch]
    return np.asarray([i for i, _ in items]), [x for _, x in items], kind


def _qa_text(objects: list[GridObject], rng: np.random.Generator, kind: str) -> tuple[str, str]:
    qa = sample_qa(objects, rng, kind)
    return qa.question, qa.answer


def lm_logits(
    model: LlavaForConditionalGeneration,
    before_bt: torch.Tensor,
    feats_bnd: torch.Tensor,
    after_bt: torch.Tensor,
) -> torch.Tensor:
    """Logits ``(b, t_before + 100 + t_after, vocab)`` for text, image features, text — the
    same computation as the model's own forward on the expanded prompt, without re-running
    the frozen tower (a test checks the equality)."""
    import torch

    embed = model.model.language_model.embed_tokens
    img = model.model.multi_modal_projector(feats_bnd)
    x = torch.cat([embed(before_bt), img, embed(after_bt)], dim=1)
    h = model.model.language_model(inputs_embeds=x).last_hidden_state
    return model.lm_head(h)


def calibrate_connector(model: LlavaForConditionalGeneration, feats_bnd: torch.Tensor) -> None:
    """Scale the connector's output layer so image tokens enter the LM at unit RMS, the
    scale of the word embeddings."""
    import torch

    proj = model.model.multi_modal_projector
    with torch.no_grad():
        rms = proj(feats_bnd.float()).pow(2).mean().sqrt()
        proj.linear_2.weight.div_(rms)
        proj.linear_2.bias.div_(rms)


def train_lm(
    model: LlavaForConditionalGeneration,
    feats: torch.Tensor,
    objects: list[list[GridObject]],
    cfg: ToyTrainConfig,
    checkpoint_dir: Path | None = None,
) -> dict[str, float]:
    """Stage 2: train connector + LM on single-turn questions (tower frozen)."""
    import torch

    torch.manual_seed(cfg.seed + 1)
    params = [
        *model.model.multi_modal_projector.parameters(),
        *model.model.language_model.parameters(),
        *model.lm_head.parameters(),
    ]
    opt = torch.optim.AdamW(params, lr=cfg.lm_lr, weight_decay=0.01)
    model.model.multi_modal_projector.train()
    model.model.language_model.train()
    pad = VOCAB["<pad>"]
    running: dict[str, list[float]] = {k: [] for k in TASKS}
    t0 = time.time()
    for step in range(cfg.lm_steps):
        rng = np.random.default_rng([cfg.seed, 3, step])
        idx, items, kind = sample_batch(objects, rng, cfg)
        n_before = len(items[0][0])
        t_after = max(len(a) + len(tg) for _, a, tg in items)
        before = torch.tensor([b for b, _, _ in items], dtype=torch.long)
        after = torch.full((len(items), t_after), pad, dtype=torch.long)
        lab = torch.full((len(items), n_before + N_IMAGE_TOKENS + t_after), -100, dtype=torch.long)
        first = n_before + N_IMAGE_TOKENS
        for j, (_, a, tg) in enumerate(items):
            after[j, : len(a) + len(tg)] = torch.tensor(a + tg)
            lab[j, first + len(a) : first + len(a) + len(tg)] = torch.tensor(tg)
        # Right padding only follows real tokens, so causal attention needs no mask.
        logits = lm_logits(model, before, feats[torch.from_numpy(idx)].float(), after)
        mask = lab[:, 1:] != -100
        pred_logits = logits[:, :-1][mask]
        target = lab[:, 1:][mask]
        loss = torch.nn.functional.cross_entropy(pred_logits, target)
        for g in opt.param_groups:
            g["lr"] = _cosine_lr(step, cfg.lm_steps, cfg.lm_lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        with torch.no_grad():
            # Whole-answer accuracy (every answer token right), the figure eval reports.
            ok_tok = (logits[:, :-1].argmax(-1) == lab[:, 1:]) | ~mask
            ok = ok_tok.all(dim=1).float().tolist()
        running[kind].extend(ok)
        if step % 50 == 0 or step == cfg.lm_steps - 1:
            accs = {k: float(np.mean(v[-400:])) for k, v in running.items() if v}
            log.info(
                "lm step %d loss %.4f %.0fs answer acc %s",
                step,
                float(loss.detach()),
                time.time() - t0,
                " ".join(f"{k}={a:.3f}" for k, a in accs.items()),
            )
        if checkpoint_dir is not None and (step + 1) % 200 == 0:
            save_toy(model, checkpoint_dir, cfg, extra={"step": step + 1})
    model.eval()
    return {f"train_answer_acc_{k}": float(np.mean(v[-400:])) for k, v in running.items() if v}


def save_toy(
    model: LlavaForConditionalGeneration,
    out_dir: Path,
    cfg: ToyTrainConfig,
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


def train_toy_vlm(
    out_dir: Path, cfg: ToyTrainConfig | None = None, *, checkpoints: bool = True
) -> dict[str, float]:
    """Train the toy VLM from scratch (both stages) and save it to ``out_dir``."""
    import torch

    cfg = cfg or ToyTrainConfig()
    torch.set_num_threads(cfg.n_threads)
    model = build_toy_vlm(cfg.arch, seed=cfg.seed)
    metrics = train_tower(model, cfg)
    feats, objects = tower_features(
        model, cfg.world_seed, cfg.n_pool, dense_fraction=cfg.dense_fraction
    )
    calibrate_connector(model, feats[:256])
    metrics |= train_lm(model, feats, objects, cfg, Path(out_dir) if checkpoints else None)
    save_toy(model, Path(out_dir), cfg, extra={"step": cfg.lm_steps, "metrics": metrics})
    return metrics


def record_eval(model_dir: Path, report: dict[str, object]) -> None:
    """Add an eval report to ``model_dir/train.json`` (atomically)."""
    from vislens.io import write_json_atomic

    path = Path(model_dir) / "train.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    info["eval"] = report
    write_json_atomic(path, info)


__all__ = ["IMAGE", "ToyTrainConfig", "record_eval", "save_toy", "train_toy_vlm"]
