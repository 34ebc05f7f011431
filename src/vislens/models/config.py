"""The ``[model]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from vislens.config_base import Section


class ModelConfig(Section):
    name_or_path: str = ""
    """A transformers hub id (e.g. openai/clip-vit-base-patch32) or a local directory
    written by save_pretrained."""

    kind: Literal["auto", "vision", "vlm"] = "auto"
    """``vision`` for an image encoder (CLIP, SigLIP, DINOv2, ViT), ``vlm`` for a
    vision-language model; ``auto`` reads the checkpoint's config."""

    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Dtype the model runs in."""

    device: str = "auto"
    """Torch device: ``auto`` picks cuda when available, else cpu."""
