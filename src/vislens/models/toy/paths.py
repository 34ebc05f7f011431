"""Where the shipped toy VLM lives. A leaf module: the VLM loader (``models/vlm/load.py``)
resolves the name ``toy`` through it without importing the toy package's loaders.

``toy`` is the QA toy: LM and connector trained together on questions (``train.py``).
``toy-mlp`` was trained LatentLens' way (``mlp.py``, ``vislens toy train --variant mlp``):
a text-pretrained LM, frozen, and a connector trained on captions — the toy whose image
tokens LatentLens reads (docs/toy.md). ``TOY_VARIANTS`` maps each name to its directory.
"""

from __future__ import annotations

from pathlib import Path

from vislens.errors import ModelError

WEIGHTS_DIR = Path(__file__).parent / "weights"

MLP_WEIGHTS_DIR = Path(__file__).parent / "weights_mlp"

TOY_VARIANTS: dict[str, Path] = {"toy": WEIGHTS_DIR, "toy-mlp": MLP_WEIGHTS_DIR}
"""Each shipped toy's name and directory (``vislens/<name>`` is accepted too)."""


def toy_variant(name: object) -> str | None:
    """The shipped toy's name when ``name`` names one (also as ``vislens/<name>``), else
    None."""
    s = str(name)
    s = s.removeprefix("vislens/")
    return s if s in TOY_VARIANTS else None


def is_toy_name(name: object) -> bool:
    """Whether ``name`` names one of the shipped toys."""
    return toy_variant(name) is not None


def toy_model_dir(name: str = "toy") -> Path:
    """A shipped toy VLM's directory: ``LlavaForConditionalGeneration.from_pretrained``
    and ``AutoProcessor.from_pretrained`` both read it (its vision tower is a plain
    ``CLIPVisionModel`` under ``vision_tower``)."""
    variant = toy_variant(name)
    if variant is None:
        raise ModelError(f"{name!r} is not a shipped toy; choose from {sorted(TOY_VARIANTS)}")
    d = TOY_VARIANTS[variant]
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise ModelError(
            f"the {variant} VLM's weights are missing from {d}; reinstall vislens or run "
            f"`vislens toy train{' --variant mlp' if variant == 'toy-mlp' else ''} --out DIR` "
            "and load DIR"
        )
    return d
