"""Qwen2-VL and Qwen2.5-VL (``Qwen2VLForConditionalGeneration``,
``Qwen2_5_VLForConditionalGeneration``).

The vision tower cuts the image into 14-px patches (grid ``(t, h, w)`` in
``image_grid_thw``) and merges each 2x2 block into one LLM token, so the LLM sees an
``(h/2) x (w/2)`` grid in raster order: one token per 28-px cell. Pinning the image size
pins ``min_pixels = max_pixels = width * height`` (the processor's
``size`` bounds), so the processor never rescales, and
the grid it reports is asserted against the expected one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vislens.errors import ModelError
from vislens.models.vlm.base import VLMAdapter

if TYPE_CHECKING:
    import torch


class QwenVLAdapter(VLMAdapter):
    """Adapter for Qwen2-VL / Qwen2.5-VL checkpoints."""

    model_types = ("qwen2_vl", "qwen2_5_vl")

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    @property
    def merge_size(self) -> int:
        return int(self.model.config.vision_config.spatial_merge_size)

    @property
    def decoder_layers(self) -> Sequence[torch.nn.Module]:
        return self.model.model.language_model.layers

    def processor_kwargs(self) -> dict[str, Any]:
        if self.image_size is None:
            return {}
        w, h = self.image_size
        # Qwen's processors read size["shortest_edge"] / ["longest_edge"] as min/max pixels.
        return {"size": {"shortest_edge": w * h, "longest_edge": w * h}}

    def grid_shape(self, batch: dict[str, Any]) -> tuple[int, int]:
        thw = batch["image_grid_thw"]
        if bool((thw != thw[0]).any()):
            raise ModelError(
                f"{self.name}: images of different sizes in one batch ({thw.tolist()})"
            )
        t, h, w = (int(x) for x in thw[0])
        m = self.merge_size
        if self.image_size is not None:
            patch = int(self.model.config.vision_config.patch_size)
            expected = (1, self.image_size[1] // patch, self.image_size[0] // patch)
            if (t, h, w) != expected:
                raise ModelError(
                    f"{self.name}: processor reported grid {(t, h, w)} for a pinned "
                    f"{self.image_size[0]}x{self.image_size[1]} image, expected {expected}"
                )
        if t != 1:
            raise ModelError(
                f"{self.name}: image grid {(t, h, w)} has {t} frames; give single images"
            )
        return h // m, w // m


def load_qwen_processor(model_dir: str | Path) -> Any:
    """Qwen's processor from a checkpoint directory.

    transformers' Qwen processors also build a video processor, which needs torchvision.
    Where that is missing, this builds the same processor class without the video part
    (same image processor, tokenizer, chat template and placeholder expansion), since
    vislens only feeds images.
    """
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model_dir)
    except (ImportError, ValueError, AttributeError, TypeError, OSError):
        pass
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    cls = image_only_processor_class(config.model_type)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    image_processor = AutoImageProcessor.from_pretrained(model_dir)
    template = getattr(tokenizer, "chat_template", None)
    tpl_path = Path(model_dir) / "chat_template.jinja"
    if tpl_path.is_file():
        template = tpl_path.read_text(encoding="utf-8")
    return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


def image_only_processor_class(model_type: str) -> type:
    """The Qwen processor class of ``model_type`` with no video processor attribute."""
    from transformers import ProcessorMixin, Qwen2_5_VLProcessor, Qwen2VLProcessor

    base = {"qwen2_vl": Qwen2VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor}.get(model_type)
    if base is None:
        raise ModelError(f"no Qwen processor for model type {model_type!r}")

    class ImageOnlyProcessor(base):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            image_processor: Any = None,
            tokenizer: Any = None,
            chat_template: Any = None,
            **kwargs: Any,
        ) -> None:
            # Mirrors the base __init__ minus the video processor.
            self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
            self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
            self.image_token_id = getattr(
                tokenizer, "image_token_id", None
            ) or tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = getattr(
                tokenizer, "video_token_id", None
            ) or tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    ImageOnlyProcessor.__name__ = f"ImageOnly{base.__name__}"
    return ImageOnlyProcessor
