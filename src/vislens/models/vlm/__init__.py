"""VLM adapters: one interface over LLaVA-style and Qwen2-VL / Qwen2.5-VL models."""

from __future__ import annotations

from vislens.models.vlm.base import Capture, VLMAdapter, VLMInputs
from vislens.models.vlm.llava import LlavaAdapter
from vislens.models.vlm.load import ADAPTERS, adapter_for, load_vlm, resolve_vlm_path
from vislens.models.vlm.qwen import QwenVLAdapter

__all__ = [
    "ADAPTERS",
    "Capture",
    "LlavaAdapter",
    "QwenVLAdapter",
    "VLMAdapter",
    "VLMInputs",
    "adapter_for",
    "load_vlm",
    "resolve_vlm_path",
]
