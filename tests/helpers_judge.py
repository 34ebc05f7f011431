"""Test helpers of the judge stage: the scripted OpenAI-compatible server (re-exported from
``vislens.judge.fake_server``), a scripted VLM adapter, and the toy VLM for the local backend."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vislens.judge.fake_server import FakeOpenAIServer, Scripted, body_key, last_user_text

__all__ = [
    "FakeOpenAIServer",
    "Scripted",
    "ScriptedAdapter",
    "body_key",
    "last_user_text",
    "toy_adapter",
]


class ScriptedAdapter:
    """A stand-in VLM adapter: answers JSON derived from the prompt and the image it got."""

    image_size = None

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, int], str, int]] = []

    def answer(self, image: Any, prompt: str, *, max_new_tokens: int = 32) -> str:
        self.calls.append((image.size, prompt, max_new_tokens))
        digest = hashlib.sha256(prompt.encode() + image.tobytes()).hexdigest()[:12]
        return json.dumps({"answer": digest})


def toy_adapter(work_dir: Any) -> Any:
    """The shipped toy VLM when its weights are installed; otherwise a random-weight toy of
    the same architecture, saved and loaded back through the same ``load_vlm`` path."""
    from vislens.errors import ModelError
    from vislens.models.toy import load_toy_vlm, toy_model_dir

    try:
        toy_model_dir()
        return load_toy_vlm()
    except ModelError:
        from vislens.models.toy.build import build_toy_processor, build_toy_vlm

        build_toy_vlm(seed=0).save_pretrained(work_dir)
        build_toy_processor().save_pretrained(work_dir)
        return load_toy_vlm(work_dir)
