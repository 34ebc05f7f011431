"""Stage 1 of toy VLM training: the CLIP vision tower learns each cell's content.

A per-patch linear head on the tower's last hidden state predicts each cell's shape,
colour, row and column; the heads are dropped afterwards. ``tower_features`` then runs the
frozen tower once over the scenes stage 2 (``train.py``) trains on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from vislens.data.synthetic import COLORS, SHAPES, GridObject, WorldSpec, sample_scene
from vislens.models.toy.build import GRID, N_IMAGE_TOKENS, pixel_values_for

if TYPE_CHECKING:
    import torch
    from transformers import LlavaForConditionalGeneration

    from vislens.models.toy.config import ToyTrainConfig

log = logging.getLogger("vislens.toy.train")


def cosine_lr(step: int, n_steps: int, peak: float, warmup: int = 100) -> float:
    """Learning rate at ``step``: linear warm-up, then cosine decay to 5% of ``peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, n_steps - warmup)
    # A Python float: a numpy scalar in the optimiser's state would make the resume file
    # unreadable with torch.load(weights_only=True).
    return float(peak * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * t))))


def cell_targets(objects: list[GridObject]) -> np.ndarray:
    """``(100, 2)`` int64 per cell: shape index and colour index, 0 meaning empty."""
    out = np.zeros((N_IMAGE_TOKENS, 2), dtype=np.int64)
    for o in objects:
        out[o.r * GRID + o.c] = (SHAPES.index(o.shape) + 1, tuple(COLORS).index(o.color) + 1)
    return out


DENSE_WORLD = WorldSpec(min_objects=10, max_objects=40)
"""Crowded scenes for stage 1: ten times the shapes per image, so the tower sees many
more cells with a shape for the same compute (cells are drawn independently)."""


def scenes(
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
        dense_images, dense_objects = scenes(cfg.world_seed, start, half, DENSE_WORLD)
        images, objects = scenes(cfg.world_seed, start + half, cfg.tower_batch - half)
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
            g["lr"] = cosine_lr(step, cfg.tower_steps, p, warmup=20)
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
    return {"tower_occupied_cell_acc": acc}


def tower_features(
    model: LlavaForConditionalGeneration,
    world_seed: int,
    n: int,
    batch: int = 64,
) -> tuple[torch.Tensor, list[list[GridObject]]]:
    """Frozen-tower features ``(n, 100, d_vision)`` (float16 to save memory) and objects
    of ``n`` normal-world scenes."""
    import torch

    from vislens.progress import track

    tower = model.model.vision_tower
    feats: list[torch.Tensor] = []
    all_objects: list[list[GridObject]] = []
    with torch.no_grad():
        for start in track(range(0, n, batch), "toy: tower features"):
            images, objects = scenes(world_seed, start, min(batch, n - start))
            pix = torch.from_numpy(pixel_values_for(images))
            h = tower(pix, output_hidden_states=True).hidden_states[-1][:, 1:]
            feats.append(h.to(torch.float16))
            all_objects.extend(objects)
    return torch.cat(feats), all_objects
