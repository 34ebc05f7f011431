"""Where the shipped toy VLM lives. A leaf module: the VLM loader (``models/vlm/load.py``)
resolves the name ``toy`` through it without importing the toy package's loaders."""

from __future__ import annotations

from pathlib import Path

from vislens.errors import ModelError

WEIGHTS_DIR = Path(__file__).parent / "weights"


def toy_model_dir() -> Path:
    """The shipped toy VLM's directory: ``LlavaForConditionalGeneration.from_pretrained``
    and ``AutoProcessor.from_pretrained`` both read it (its vision tower is a plain
    ``CLIPVisionModel`` under ``vision_tower``)."""
    if (
        not (WEIGHTS_DIR / "config.json").is_file()
        or not (WEIGHTS_DIR / "model.safetensors").is_file()
    ):
        raise ModelError(
            f"the toy VLM's weights are missing from {WEIGHTS_DIR}; reinstall vislens or run "
            "`vislens toy train --out DIR` and load DIR"
        )
    return WEIGHTS_DIR
