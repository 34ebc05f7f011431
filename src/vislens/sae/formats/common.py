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


def read_torch_checkpoint(path: Path) -> tuple[dict[str, Tensor], Any]:
    """A ``.pt`` checkpoint's tensors and, when it pickles one, its config as plain data.

    Plain state dicts load with ``torch.load(weights_only=True)``. A file that also pickles
    objects (ViT-Prisma's ``{"cfg": <config>, "state_dict": …}``) is read with the
    restricted unpickler of :mod:`vislens.sae.formats.safe_pickle`, which never imports or
    calls anything the file names. The state dict may be flat or under ``"state_dict"``.
    """
    import pickle

    from vislens.sae.formats.safe_pickle import load_checkpoint, to_plain

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        try:
            obj = load_checkpoint(path)
        except Exception as e:
            raise InputError(
                f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})"
            ) from None
    except Exception as e:
        raise InputError(
            f"{path}: not a readable torch checkpoint ({type(e).__name__}: {e})"
        ) from None
    cfg = None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        cfg = to_plain(obj["cfg"]) if "cfg" in obj else None
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a state dict of tensors, found {type(obj).__name__}")
    return {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}, cfg


def torch_load_tensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a ``.pt`` state dict (see :func:`read_torch_checkpoint`)."""
    return read_torch_checkpoint(path)[0]


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


# Hook points of a TransformerLens / ViT-Prisma block, by where they sit relative to the
# residual stream. Block B reads vislens layer B (hidden_states[B]) and writes layer B + 1.
RESIDUAL_SUBTYPES: dict[str, int] = {"hook_resid_pre": 0, "hook_resid_post": 1}
"""Subtypes that *are* residual-stream positions → offset from the block index."""

BLOCK_INPUT_SUBTYPES = ("ln1.", "attn.")
"""Non-residual subtypes computed from the block's input (nearest layer: B); every other
subtype (``hook_resid_mid``, ``hook_attn_out``, ``ln2.*``, ``mlp.*``, ``hook_mlp_out``, …)
sits inside the block after attention (nearest layer: B + 1)."""


def hook_position(block: int, subtype: str) -> tuple[int, bool]:
    """``(vislens layer, is a residual-stream position)`` for hook ``blocks.{block}.{subtype}``.

    ``hook_resid_pre`` of block B is layer B, ``hook_resid_post`` layer B + 1; any other
    subtype is not a residual position and maps to the nearest residual layer.
    """
    if subtype in RESIDUAL_SUBTYPES:
        return block + RESIDUAL_SUBTYPES[subtype], True
    return (block if subtype.startswith(BLOCK_INPUT_SUBTYPES) else block + 1), False


def parse_hook_name(hook_name: str) -> tuple[int | None, bool]:
    """``blocks.9.hook_resid_post`` → ``(10, True)``; ``blocks.5.ln2.hook_normalized`` →
    ``(6, False)``; a name without a block (``hook_embed``, an HF module path) → ``(None, True)``."""
    parts = hook_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blocks" and parts[1].isdigit():
        return hook_position(int(parts[1]), parts[2])
    return None, True


def layer_from_hook_name(hook_name: str) -> int | None:
    """The vislens layer of a hook name (see :func:`parse_hook_name`)."""
    return parse_hook_name(hook_name)[0]
