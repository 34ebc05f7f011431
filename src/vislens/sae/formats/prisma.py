"""ViT-Prisma / Prisma-Multimodal checkpoints: ``config.json`` + ``weights.pt`` or ``n_images_*.pt``.

The weight file is a state dict with ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``,
``b_enc``, ``b_dec`` (and ``threshold`` for JumpReLU). ViT-Prisma always subtracts
``b_dec`` from the input before encoding; its ``hook_point_layer`` counts blocks, so the
output of block L is vislens layer L + 1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vislens.errors import InputError
from vislens.sae.base import BaseSAE
from vislens.sae.formats.common import assemble, read_json, torch_load_tensors
from vislens.sae.spec import SAESpec

CONFIG_FILE = "config.json"
_N_IMAGES = re.compile(r"n_images_(\d+)\.pt$")


def weights_file(path: Path) -> Path | None:
    """``weights.pt`` if present, else the ``n_images_*.pt`` with the most images, else None."""
    if (path / "weights.pt").is_file():
        return path / "weights.pt"
    found = [
        (int(m.group(1)), p) for p in path.glob("n_images_*.pt") if (m := _N_IMAGES.search(p.name))
    ]
    return max(found)[1] if found else None


def is_prisma_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and weights_file(path) is not None


def spec_from_config(cfg: dict[str, Any], cfg_path: Path) -> SAESpec:
    act = cfg.get("activation_fn_str", "relu")
    arch: Any = cfg.get("architecture") or "standard"
    if act == "topk":
        arch = "topk"
    if arch not in ("standard", "topk", "jumprelu"):
        raise InputError(
            f"{cfg_path}: architecture '{arch}' is not supported (standard, topk, jumprelu)"
        )
    if act not in ("relu", "topk"):
        raise InputError(f"{cfg_path}: activation_fn_str '{act}' is not supported (relu, topk)")
    d_in = cfg.get("d_in")
    d_sae = cfg.get("d_sae")
    if d_sae is None and isinstance(cfg.get("expansion_factor"), int) and isinstance(d_in, int):
        d_sae = d_in * cfg["expansion_factor"]
    if not isinstance(d_in, int) or not isinstance(d_sae, int):
        raise InputError(f"{cfg_path}: needs integer 'd_in' and 'd_sae' (got {d_in!r}, {d_sae!r})")
    layer = cfg.get("hook_point_layer")
    if isinstance(layer, list):
        if len(layer) != 1:
            raise InputError(f"{cfg_path}: hook_point_layer lists {layer}; one SAE reads one layer")
        layer = layer[0]
    norm: Any = cfg.get("normalize_activations") or "none"
    if norm is True:
        norm = "layer_norm"
    if norm not in ("none", "layer_norm", "constant_norm_rescale"):
        raise InputError(f"{cfg_path}: normalize_activations '{norm}' is not supported")
    kwargs = cfg.get("activation_fn_kwargs") or {}
    known = {"d_in", "d_sae", "expansion_factor", "activation_fn_str", "activation_fn_kwargs",
             "architecture", "hook_point_layer", "hook_point", "normalize_activations",
             "cls_token_only", "model_name", "dtype", "apply_b_dec_to_input"}  # fmt: skip
    try:
        return SAESpec(
            d_in=d_in,
            d_sae=d_sae,
            architecture=arch,
            k=int(kwargs["k"]) if "k" in kwargs else None,
            normalize_activations=norm,
            apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
            hook_layer=_vislens_layer(layer, str(cfg.get("hook_point") or "")),
            hook_name=str(cfg.get("hook_point") or ""),
            token_scope="cls" if cfg.get("cls_token_only") else "all",
            model_name=str(cfg.get("model_name") or ""),
            dtype="float32",
            source_format="prisma",
            extra={k: v for k, v in cfg.items() if k not in known and _jsonable(v)},
        )
    except ValueError as e:
        raise InputError(f"{cfg_path}: {e}") from None


def _vislens_layer(block: object, hook_point: str) -> int | None:
    """Block L's output is vislens layer L + 1; a ``hook_resid_pre`` hook reads block L's input (layer L)."""
    if not isinstance(block, int):
        return None
    return block if hook_point.endswith("hook_resid_pre") else block + 1


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None), list, dict))


def load_prisma(path: Path) -> BaseSAE:
    """Load an SAE from a ViT-Prisma directory (or a ``.pt`` file with config.json beside it)."""
    path = Path(path)
    if path.is_file():
        weights, path = path, path.parent
    else:
        found = weights_file(path)
        if found is None:
            raise InputError(f"{path}: no weights.pt or n_images_*.pt here")
        weights = found
    spec = spec_from_config(read_json(path / CONFIG_FILE), path / CONFIG_FILE)
    return assemble(spec, torch_load_tensors(weights), weights)
