"""Build the toy VLM's architecture and processor from standard transformers classes.

A LLaVA model (``LlavaForConditionalGeneration``): a small CLIP vision tower with 28-px
patches on 280x280 images (one token per grid cell plus CLS; ``vision_feature_select_strategy
= "default"`` drops CLS, so exactly 100 image tokens), LLaVA's 2-layer MLP connector, a
small Llama LM and the word-level tokenizer of ``vocab.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.models.toy.vocab import IMAGE, VOCAB, build_tokenizer

if TYPE_CHECKING:
    from PIL import Image
    from transformers import LlavaForConditionalGeneration, LlavaProcessor

IMAGE_SIZE = 280
PATCH_SIZE = 28
GRID = IMAGE_SIZE // PATCH_SIZE
N_IMAGE_TOKENS = GRID * GRID

# CLIP's normalisation constants (as in transformers' OPENAI_CLIP_MEAN / _STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# The prompt the toy model was trained on: the question, the image tokens, "answer:".
CHAT_TEMPLATE = (
    "{% for message in messages %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }} {% endif %}{% endfor %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>"
    "{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} answer:{% endif %}"
)


@dataclass(frozen=True)
class ToyArch:
    """Sizes of the toy VLM."""

    vision_hidden: int = 96
    """Width of the CLIP vision tower."""
    vision_layers: int = 2
    """Transformer blocks in the vision tower."""
    vision_heads: int = 4
    """Attention heads per vision block."""
    vision_intermediate: int = 384
    """MLP width of the vision blocks (shape recognition lives mostly here)."""
    text_hidden: int = 96
    """Width of the Llama LM."""
    text_layers: int = 4
    """Decoder blocks in the LM."""
    text_heads: int = 4
    """Attention heads per LM block."""
    text_intermediate: int = 192
    """MLP width of the LM."""
    max_positions: int = 512
    """Longest sequence (image tokens included) the LM accepts."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_toy_vlm(arch: ToyArch | None = None, seed: int = 0) -> LlavaForConditionalGeneration:
    """A randomly initialised toy VLM (deterministic for ``seed``)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    arch = arch or ToyArch()
    vision = CLIPVisionConfig(
        hidden_size=arch.vision_hidden,
        intermediate_size=arch.vision_intermediate,
        num_hidden_layers=arch.vision_layers,
        num_attention_heads=arch.vision_heads,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        projection_dim=arch.vision_hidden,
    )
    text = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=arch.text_hidden,
        intermediate_size=arch.text_intermediate,
        num_hidden_layers=arch.text_layers,
        num_attention_heads=arch.text_heads,
        num_key_value_heads=arch.text_heads,
        max_position_embeddings=arch.max_positions,
        pad_token_id=VOCAB["<pad>"],
        bos_token_id=VOCAB["<s>"],
        eos_token_id=VOCAB["</s>"],
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=VOCAB[IMAGE],
        image_seq_length=N_IMAGE_TOKENS,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        projector_hidden_act="gelu",
    )
    config.pad_token_id = VOCAB["<pad>"]
    config.eos_token_id = VOCAB["</s>"]
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    # Llama's embedding init (std 0.02) leaves word identity tiny next to the image tokens
    # in this small model; unit-scale embeddings keep both at the same scale.
    with torch.no_grad():
        model.model.language_model.embed_tokens.weight.normal_(0.0, 1.0)
    model.generation_config.pad_token_id = VOCAB["<pad>"]
    model.generation_config.eos_token_id = VOCAB["</s>"]
    model.generation_config.bos_token_id = None
    model.eval()
    return model


def build_toy_processor() -> LlavaProcessor:
    """The toy VLM's processor: CLIP image preprocessing at 280x280, word-level tokenizer,
    ``<image>`` expanded to 100 placeholders (10x10 patches, CLS dropped)."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        do_resize=True,
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_center_crop=False,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def toy_prompt(question: str) -> str:
    """The text the toy VLM reads for one question (what ``CHAT_TEMPLATE`` renders)."""
    return f"{question} {IMAGE} answer:"


def pixel_values_for(images: list[Image.Image]) -> np.ndarray:
    """``(n, 3, 280, 280)`` float32 pixels normalised as the processor does, without its
    per-image overhead (used in training; a test checks equality with the processor)."""
    arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images]) / 255.0
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)
    std = np.asarray(CLIP_STD, dtype=np.float32)
    return np.ascontiguousarray(((arr - mean) / std).transpose(0, 3, 1, 2), dtype=np.float32)
