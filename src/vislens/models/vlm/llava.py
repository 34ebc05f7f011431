"""LLaVA-style VLMs (``LlavaForConditionalGeneration``): a ViT tower, a connector, an LLM.

The image's patch tokens (CLS dropped under ``vision_feature_select_strategy="default"``)
enter the LLM in raster order, so token ``k`` of the image is grid cell
``(k // cols, k % cols)`` with ``cols = image width // patch size``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vislens.errors import ModelError
from vislens.models.vlm.base import VLMAdapter

if TYPE_CHECKING:
    import torch


class LlavaAdapter(VLMAdapter):
    """Adapter for ``LlavaForConditionalGeneration`` checkpoints (LLaVA-1.5 and the toy VLM)."""

    model_types = ("llava",)

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    @property
    def decoder_layers(self) -> Sequence[torch.nn.Module]:
        return self.model.model.language_model.layers

    def processor_kwargs(self) -> dict[str, Any]:
        return {}

    def grid_shape(self, batch: dict[str, Any]) -> tuple[int, int]:
        h, w = batch["pixel_values"].shape[-2:]
        patch = int(self.model.config.vision_config.patch_size)
        if h % patch or w % patch:
            raise ModelError(
                f"{self.name}: processed image {h}x{w} is not a multiple of patch {patch}"
            )
        return int(h) // patch, int(w) // patch
