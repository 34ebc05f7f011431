"""The toy VLM: a small LLaVA trained from scratch on the synthetic grid world, shipped
with vislens so every VLM code path runs with no GPU and no network.

>>> from vislens.models.toy import load_toy_vlm, answer
>>> vlm = load_toy_vlm()                       # doctest: +SKIP
>>> answer(vlm, image, "is there a green circle?")  # doctest: +SKIP
'yes'
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vislens.models.toy.paths import WEIGHTS_DIR, toy_model_dir

if TYPE_CHECKING:
    from PIL import Image

    from vislens.models.vlm.base import VLMAdapter


def load_toy_vlm(model_dir: str | Path | None = None, *, device: str = "cpu") -> VLMAdapter:
    """A toy VLM in its adapter: the shipped QA toy (None or ``"toy"``), the shipped
    ``"toy-mlp"`` (LatentLens' recipe), or a directory ``vislens toy train`` wrote. Images
    must be 280x280."""
    from vislens.models.toy.build import IMAGE_SIZE
    from vislens.models.vlm.load import load_vlm

    return load_vlm(
        "toy" if model_dir is None else model_dir,
        device=device,
        image_size=(IMAGE_SIZE, IMAGE_SIZE),
    )


def answer(model: VLMAdapter, image: Image.Image, prompt: str, *, max_new_tokens: int = 48) -> str:
    """The model's greedy answer to ``prompt`` about ``image``."""
    return model.answer(image, prompt, max_new_tokens=max_new_tokens)


__all__ = ["WEIGHTS_DIR", "answer", "load_toy_vlm", "toy_model_dir"]
