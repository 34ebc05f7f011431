"""Tiny random-weight vision encoders of the real architectures, built from transformers configs.

There is no model hub in tests or on air-gapped machines, so tests (and the demo) build
small instances of CLIP, SigLIP, DINOv2 and ViT, ``save_pretrained`` them together with a
matching image processor, and load them back through ``load_vision_encoder`` — the same
path a user's hub checkpoint takes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

Arch = Literal["clip", "siglip", "dinov2", "vit"]
ARCHES: tuple[Arch, ...] = ("clip", "siglip", "dinov2", "vit")

_MEAN = [0.5, 0.5, 0.5]
_STD = [0.5, 0.5, 0.5]


def build_tiny_vision(
    arch: Arch,
    out_dir: Path,
    *,
    image_size: int = 56,
    patch_size: int = 14,
    hidden_size: int = 32,
    n_layers: int = 3,
    n_heads: int = 4,
    intermediate_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a random-weight ``arch`` vision encoder + image processor to ``out_dir``.

    ``build_tiny_vision("clip", d, image_size=224, patch_size=32, hidden_size=768,
    n_layers=12, n_heads=12)`` gives a CLIP-ViT-B/32-shaped model.
    """
    import transformers as tf

    out_dir = Path(out_dir)
    inter = intermediate_size or 4 * hidden_size
    common: dict[str, Any] = dict(
        hidden_size=hidden_size,
        intermediate_size=inter,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        image_size=image_size,
        patch_size=patch_size,
    )
    size_hw = {"height": image_size, "width": image_size}
    torch.manual_seed(seed)
    model: torch.nn.Module
    proc: Any
    if arch == "clip":
        model = tf.CLIPVisionModel(tf.CLIPVisionConfig(**common))
        proc = tf.CLIPImageProcessor(
            size={"shortest_edge": image_size}, crop_size=size_hw, image_mean=_MEAN, image_std=_STD
        )
    elif arch == "siglip":
        model = tf.SiglipVisionModel(tf.SiglipVisionConfig(**common))
        proc = tf.SiglipImageProcessor(size=size_hw, image_mean=_MEAN, image_std=_STD)
    elif arch == "dinov2":
        model = tf.Dinov2Model(tf.Dinov2Config(**common))
        proc = tf.BitImageProcessor(
            size={"shortest_edge": image_size},
            crop_size=size_hw,
            do_center_crop=True,
            image_mean=_MEAN,
            image_std=_STD,
        )
    elif arch == "vit":
        model = tf.ViTModel(tf.ViTConfig(**common), add_pooling_layer=False)
        proc = tf.ViTImageProcessor(size=size_hw, image_mean=_MEAN, image_std=_STD)
    else:
        raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHES}")
    model.eval()
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    return out_dir
