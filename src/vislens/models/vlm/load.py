"""Load any supported VLM by hub id, local directory or ``toy``, wrapped in its adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vislens.errors import ModelError
from vislens.models.toy.paths import TOY_VARIANTS
from vislens.models.vlm.base import VLMAdapter
from vislens.models.vlm.llava import LlavaAdapter
from vislens.models.vlm.qwen import QwenVLAdapter, load_qwen_processor

#: Adapter classes; adding an architecture means adding its class here (and to the
#: contract tests' parameter list).
ADAPTERS: tuple[type[VLMAdapter], ...] = (LlavaAdapter, QwenVLAdapter)

TOY_NAMES = (*TOY_VARIANTS, *(f"vislens/{n}" for n in TOY_VARIANTS))


def adapter_for(model_type: str) -> type[VLMAdapter]:
    """The adapter class serving a transformers ``model_type``."""
    for cls in ADAPTERS:
        if model_type in cls.model_types:
            return cls
    supported = sorted(t for cls in ADAPTERS for t in cls.model_types)
    raise ModelError(f"model type {model_type!r} has no VLM adapter; supported: {supported}")


def resolve_vlm_path(name_or_path: str | Path) -> tuple[str, bool]:
    """``(path or hub id, is_toy)``: ``toy`` names the VLM shipped with vislens."""
    if str(name_or_path) in TOY_NAMES:
        from vislens.models.toy.paths import toy_model_dir

        return str(toy_model_dir(str(name_or_path))), True
    return str(name_or_path), False


def _model_type(path: str) -> str:
    local = Path(path)
    if local.is_dir():
        cfg_path = local / "config.json"
        if not cfg_path.is_file():
            raise ModelError(f"{local}: no config.json; not a transformers model directory")
        return str(json.loads(cfg_path.read_text(encoding="utf-8")).get("model_type", ""))
    try:
        from transformers import AutoConfig

        return str(AutoConfig.from_pretrained(path).model_type)
    except Exception as e:  # hub ids fail in many ways offline; one message covers them
        raise ModelError(
            f"unknown model {path!r}: not a local directory and not loadable from the hub "
            f"({type(e).__name__}); give a directory written by save_pretrained, a hub id "
            "reachable from here, or 'toy'"
        ) from None


def load_vlm(
    name_or_path: str | Path,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    attn_implementation: str = "eager",
    image_size: tuple[int, int] | None = None,
) -> VLMAdapter:
    """Load a VLM (``LlavaForConditionalGeneration``, Qwen2-VL, Qwen2.5-VL) and its processor
    through ``from_pretrained`` and wrap it in its adapter.

    ``toy`` loads the toy VLM shipped with vislens (pinned to 280x280 images).
    ``image_size=(w, h)`` pins the image size: other sizes are an error, and Qwen's pixel
    bounds are fixed so the grid cannot drift.
    """
    import torch

    path, is_toy = resolve_vlm_path(name_or_path)
    model_type = _model_type(path)
    cls = adapter_for(model_type)
    if is_toy and image_size is None:
        from vislens.models.toy.build import IMAGE_SIZE

        image_size = (IMAGE_SIZE, IMAGE_SIZE)
    try:
        torch_dtype = getattr(torch, dtype)
    except AttributeError:
        raise ModelError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16") from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model_cls: Any
    if model_type == "llava":
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        model_cls = LlavaForConditionalGeneration
        processor = AutoProcessor.from_pretrained(path)
    else:
        from transformers import AutoModelForImageTextToText

        model_cls = AutoModelForImageTextToText
        processor = load_qwen_processor(path)
    model = model_cls.from_pretrained(
        path, dtype=torch_dtype, attn_implementation=attn_implementation
    )
    model.to(device).eval()
    name = str(name_or_path).removeprefix("vislens/") if is_toy else str(name_or_path)
    return cls(model, processor, name, image_size=image_size)
