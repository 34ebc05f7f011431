"""Chat requests in the OpenAI message shape, with images carried as PNG data URLs.

One request type for every backend: the OpenAI-compatible client sends it as is, the local
backend turns the data URLs back into images. Because the request is plain JSON, hashing it
gives the judge cache its key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

Message = dict[str, Any]

_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,(?P<b64>.+)$", re.DOTALL)


def image_to_data_url(image: Image.Image) -> str:
    """Encode ``image`` as a PNG ``data:`` URL (lossless, so the same pixels give the same URL)."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def data_url_to_image(url: str) -> Image.Image:
    """Decode a ``data:image/...;base64,`` URL back into an RGB image."""
    m = _DATA_URL.match(url)
    if m is None:
        raise ValueError("not an image data URL (expected data:image/...;base64,...)")
    return Image.open(io.BytesIO(base64.b64decode(m["b64"]))).convert("RGB")


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(image: Image.Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image_to_data_url(image)}}


def user_message(text: str, images: list[Image.Image] | None = None) -> Message:
    """A user turn: the images first (as the seeds' prompts show them), then the text."""
    parts = [image_part(im) for im in images or []]
    parts.append(text_part(text))
    return {"role": "user", "content": parts}


def message_text(message: Message) -> str:
    """All text of one message, parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "\n".join(p["text"] for p in content or [] if p.get("type") == "text")


def message_images(message: Message) -> list[Image.Image]:
    """The images of one message, in order."""
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [
        data_url_to_image(p["image_url"]["url"]) for p in content if p.get("type") == "image_url"
    ]


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion request: what the cache key is computed from."""

    model: str
    messages: list[Message]
    params: dict[str, Any] = field(default_factory=dict)
    """Sampling parameters sent with the request (temperature, max_tokens, ...)."""

    def key(self) -> str:
        """sha256 of the canonical JSON of model + messages + params (the judge cache key)."""
        blob = json.dumps(
            {"model": self.model, "messages": self.messages, "params": self.params},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def with_turns(self, *turns: Message) -> ChatRequest:
        """The same request with ``turns`` appended (used to re-ask after a bad answer)."""
        return ChatRequest(self.model, [*self.messages, *turns], dict(self.params))

    def redacted_messages(self) -> list[Message]:
        """Messages with each image data URL replaced by ``sha256:<digest>``, for storage."""
        out: list[Message] = []
        for m in self.messages:
            content = m.get("content")
            if isinstance(content, list):
                parts = []
                for p in content:
                    if p.get("type") == "image_url":
                        digest = hashlib.sha256(p["image_url"]["url"].encode("ascii")).hexdigest()
                        parts.append(
                            {"type": "image_url", "image_url": {"url": f"sha256:{digest}"}}
                        )
                    else:
                        parts.append(p)
                out.append({**m, "content": parts})
            else:
                out.append(dict(m))
        return out
