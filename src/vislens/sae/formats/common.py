"""Helpers every checkpoint reader shares: safe tensor loading and shape-checked assembly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vislens.errors import InputError
from vislens.sae.base import BaseSAE
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a missing or malformed file is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: missing — an SAE checkpoint directory needs this file")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object, found {type(obj).__name__}")
    return obj


def torch_load_tensors(path: Path) -> dict[str, Tensor]:
    """A ``.pt`` state dict, loaded with ``weights_only=True`` (never arbitrary pickles).

    Accepts a flat state dict or one nested under ``"state_dict"``.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler's refusal is the common case: say what to do
        raise InputError(
            f"{path}: cannot be read as plain tensors with torch.load(weights_only=True) ({e}); "
            "re-save it as a state dict of tensors (or safetensors) and retry"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}


def assemble(spec: SAESpec, tensors: dict[str, Tensor], source: Path) -> BaseSAE:
    """Build the module for ``spec`` and copy ``tensors`` into it, checking every shape."""
    sae = build_sae(spec)
    own = dict(sae.named_parameters())
    missing = sorted(set(own) - set(tensors))
    if missing:
        raise InputError(f"{source}: tensors {missing} are missing from the checkpoint")
    with torch.no_grad():
        for name, param in own.items():
            t = tensors[name]
            if tuple(t.shape) != tuple(param.shape):
                raise InputError(
                    f"{source}: tensor '{name}' has shape {tuple(t.shape)} but the config says "
                    f"{tuple(param.shape)} (d_in={spec.d_in}, d_sae={spec.d_sae})"
                )
            param.copy_(t.to(param.dtype))
    sae.eval()
    return sae


def layer_from_hook_name(hook_name: str) -> int | None:
    """``blocks.9.hook_resid_post`` → 10 in vislens' convention (output of block 9 is
    ``hidden_states[10]``); ``…hook_resid_pre`` → 9. None when the name has no block."""
    parts = hook_name.split(".")
    if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        block = int(parts[1])
        return block if hook_name.endswith("hook_resid_pre") else block + 1
    return None
