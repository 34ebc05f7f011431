"""A judge that runs a VLM in this process through the vislens model adapters.

Any adapter with ``answer(image, prompt, max_new_tokens=...)`` works — the shipped toy VLM, a LLaVA or a
Qwen2-VL loaded with ``from_pretrained``. Chat turns are flattened into one prompt (system,
then the turns labelled by role), and several images in one request are tiled side by side
into one, since small VLMs take a single image (and fitted to the size a model is pinned
to, such as the toy VLM's 280 x 280). Generation is greedy, so the same request
gives the same answer and caching it is sound.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Protocol

from PIL import Image

from vislens.judge.client import ChatReply, JudgeRequestError
from vislens.judge.messages import ChatRequest, message_images, message_text


class AnswersImages(Protocol):
    """The part of a VLM adapter the local judge needs (``vislens.models.vlm.VLMAdapter``)."""

    def answer(self, image: Image.Image, prompt: str, *, max_new_tokens: int = ...) -> str: ...


def tile_images(images: list[Image.Image]) -> Image.Image:
    """Images side by side at a common height (the first one's), on a white background."""
    if len(images) == 1:
        return images[0]
    h = images[0].height
    scaled = [im.resize((max(1, round(im.width * h / im.height)), h)) for im in images]
    gap = 8
    canvas = Image.new(
        "RGB", (sum(im.width for im in scaled) + gap * (len(scaled) - 1), h), "white"
    )
    x = 0
    for im in scaled:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    return canvas


def fit_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled to fit ``size`` (aspect kept) and centred on black, for pinned models."""
    if image.size == tuple(size):
        return image
    w, h = size
    scale = min(w / image.width, h / image.height)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    canvas = Image.new("RGB", (w, h), (0, 0, 0))
    canvas.paste(scaled, ((w - scaled.width) // 2, (h - scaled.height) // 2))
    return canvas


def flatten_prompt(request: ChatRequest) -> str:
    """One prompt string for models without a chat template of several turns."""
    lines: list[str] = []
    for m in request.messages:
        text = message_text(m).strip()
        if not text:
            continue
        if m["role"] == "system":
            lines.append(text)
        else:
            lines.append(f"{m['role'].upper()}: {text}")
    return "\n\n".join(lines)


class LocalJudge:
    """A ``JudgeClient`` over an in-process VLM adapter (one request at a time)."""

    backend = "local"
    max_concurrency = 1

    def __init__(self, adapter: AnswersImages, model: str, *, max_new_tokens: int = 128) -> None:
        self.adapter = adapter
        self.model = model
        self.max_new_tokens = max_new_tokens
        """Cap on generated tokens (small VLMs have short context windows)."""
        self._lock = threading.Lock()

    def _generate(self, request: ChatRequest) -> ChatReply:
        images = [im for m in request.messages for im in message_images(m)]
        image = tile_images(images) if images else Image.new("RGB", (224, 224), "white")
        pinned = getattr(self.adapter, "image_size", None)
        if pinned:
            image = fit_image(image, tuple(pinned))
        n_new = min(int(request.params.get("max_tokens", self.max_new_tokens)), self.max_new_tokens)
        prompt = flatten_prompt(request)
        with self._lock:
            try:
                text = str(self.adapter.answer(image, prompt, max_new_tokens=n_new))
            except Exception as e:  # a model failure is this item's error, not the run's end
                raise JudgeRequestError(f"local model failed: {type(e).__name__}: {e}") from e
        return ChatReply(
            text=text, prompt_tokens=self._n_tokens(prompt), completion_tokens=self._n_tokens(text)
        )

    def _n_tokens(self, text: str) -> int:
        """Text tokens by the model's own tokenizer (image tokens not included); 0 if it has none."""
        tok = getattr(getattr(self.adapter, "processor", None), "tokenizer", None)
        if tok is None:
            return 0
        return len(tok(text, add_special_tokens=False).input_ids)

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Run the model in a worker thread so the event loop (progress, cache) stays live."""
        return await asyncio.to_thread(self._generate, request)

    async def aclose(self) -> None:
        return None
