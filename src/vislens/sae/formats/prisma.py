"""ViT-Prisma / Prisma-Multimodal checkpoints: ``config.json`` + ``weights.pt`` or ``n_images_*.pt``.

ViT-Prisma's trainer (``VisionSAETrainer.checkpoint``) writes, into ``checkpoint_path``:

- ``config.json``: ``dataclasses.asdict(VisionModelSAERunnerConfig)``, with ``torch.device``
  and ``torch.dtype`` values as ``{"__type__": …, "value": …}``. The hook is given by
  ``hook_point_layer`` (a block index) and ``layer_subtype`` (``hook_resid_post``,
  ``hook_resid_pre``, ``ln2.hook_normalized``, …); ``hook_point`` is set in
  ``__post_init__``, not a field, so it is *not* in the file.
- ``n_images_<N>.pt``: ``torch.save({"cfg": <the pickled config object>, "state_dict":
  {W_dec, W_enc, b_enc, b_dec}})``. The pickled config is read with the restricted
  unpickler (``safe_pickle``): nothing from ViT-Prisma is imported or run.

Prisma-Multimodal's releases use ``weights.pt`` (a plain state dict) beside ``config.json``.
ViT-Prisma always subtracts ``b_dec`` from the (normalised) input before encoding.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vislens.errors import InputError
from vislens.sae.base import BaseSAE
from vislens.sae.formats.common import (
    assemble,
    hook_position,
    parse_hook_name,
    read_json,
    read_torch_checkpoint,
)
from vislens.sae.spec import SAESpec

CONFIG_FILE = "config.json"
_N_IMAGES = re.compile(r"n_images_(\d+)\.pt$")

# Config fields that decide the encode arithmetic or the hook; everything else (training
# settings, paths, logging) is kept verbatim in ``extra``.
_ENCODE_KEYS = {
    "d_in", "d_sae", "expansion_factor", "activation_fn_str", "activation_fn_kwargs",
    "architecture", "hook_point_layer", "layer_subtype", "hook_point", "hook_point_head_index",
    "normalize_activations", "cls_token_only", "use_patches_only", "model_name", "dtype",
    "device", "apply_b_dec_to_input", "vit_model_cfg",
}  # fmt: skip


def weights_file(path: Path) -> Path | None:
    """``weights.pt`` if present, else the ``n_images_*.pt`` with the most images, else None."""
    if (path / "weights.pt").is_file():
        return path / "weights.pt"
    found = [
        (int(m.group(1)), p) for p in path.glob("n_images_*.pt") if (m := _N_IMAGES.search(p.name))
    ]
    return max(found)[1] if found else None


def is_prisma_dir(path: Path) -> bool:
    """config.json + weights, or a trainer's ``n_images_*.pt`` alone (its config is pickled in it)."""
    found = weights_file(path)
    return found is not None and ((path / CONFIG_FILE).is_file() or found.name != "weights.pt")


def _hook(cfg: dict[str, Any], cfg_path: Path) -> tuple[int | None, str, bool]:
    """``(vislens layer, hook name, is residual)`` from ``hook_point_layer`` + ``layer_subtype``."""
    layer = cfg.get("hook_point_layer")
    if isinstance(layer, list):
        if len(layer) != 1:
            raise InputError(f"{cfg_path}: hook_point_layer lists {layer}; one SAE reads one layer")
        layer = layer[0]
    subtype = cfg.get("layer_subtype")
    if isinstance(layer, int) and isinstance(subtype, str) and subtype:
        vl, residual = hook_position(layer, subtype)
        return vl, f"blocks.{layer}.{subtype}", residual
    hook_point = str(cfg.get("hook_point") or "")  # older pickled configs carry only this
    if hook_point:
        vl_opt, residual = parse_hook_name(hook_point)
        return vl_opt, hook_point, residual
    if isinstance(layer, int):  # RunnerConfig's default subtype
        return layer + 1, f"blocks.{layer}.hook_resid_post", True
    return None, "", True


def spec_from_config(cfg: dict[str, Any], cfg_path: Path) -> SAESpec:
    act = cfg.get("activation_fn_str", "relu")
    arch: Any = cfg.get("architecture") or "standard"
    if act == "topk":
        arch = "topk"
    if arch not in ("standard", "topk", "jumprelu", "gated"):
        raise InputError(
            f"{cfg_path}: architecture '{arch}' is not supported (standard, topk, jumprelu, gated)"
        )
    if act not in ("relu", "topk"):
        raise InputError(
            f"{cfg_path}: key 'activation_fn_str' is '{act}', which vislens does not implement (relu, topk)"
        )
    kwargs = cfg.get("activation_fn_kwargs") or {}
    unknown_kwargs = sorted(set(kwargs) - {"k"})
    if unknown_kwargs:
        raise InputError(
            f"{cfg_path}: key 'activation_fn_kwargs' has {unknown_kwargs}, which change the "
            "activation and are not implemented"
        )
    if cfg.get("hook_point_head_index") is not None:
        raise InputError(
            f"{cfg_path}: key 'hook_point_head_index' is {cfg['hook_point_head_index']}: "
            "per-head SAEs are not supported (vislens stores whole residual streams)"
        )
    d_in = cfg.get("d_in")
    d_sae = cfg.get("d_sae")
    if d_sae is None and isinstance(cfg.get("expansion_factor"), int) and isinstance(d_in, int):
        d_sae = d_in * cfg["expansion_factor"]
    if not isinstance(d_in, int) or not isinstance(d_sae, int):
        raise InputError(f"{cfg_path}: needs integer 'd_in' and 'd_sae' (got {d_in!r}, {d_sae!r})")
    norm: Any = cfg.get("normalize_activations") or "none"
    if norm is True:
        norm = "layer_norm"
    if norm not in ("none", "layer_norm", "constant_norm_rescale"):
        raise InputError(
            f"{cfg_path}: key 'normalize_activations' is '{norm}', which is not supported"
        )
    layer, hook_name, residual = _hook(cfg, cfg_path)
    scope = (
        "cls" if cfg.get("cls_token_only") else "patches" if cfg.get("use_patches_only") else "all"
    )
    try:
        return SAESpec(
            d_in=d_in,
            d_sae=d_sae,
            architecture=arch,
            k=int(kwargs["k"]) if "k" in kwargs else None,
            normalize_activations=norm,
            apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
            hook_layer=layer,
            hook_name=hook_name,
            hook_residual=residual,
            token_scope=scope,  # type: ignore[arg-type]
            model_name=str(cfg.get("model_name") or ""),
            dtype="float32",
            source_format="prisma",
            extra={k: v for k, v in cfg.items() if k not in _ENCODE_KEYS and _jsonable(v)},
        )
    except ValueError as e:
        raise InputError(f"{cfg_path}: {e}") from None


def _jsonable(v: Any) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _jsonable(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_jsonable(x) for x in v)
    return isinstance(v, (str, int, float, bool, type(None)))


def load_prisma(path: Path) -> BaseSAE:
    """Load an SAE from a ViT-Prisma directory (or a ``.pt`` file, config.json beside it).

    The config comes from ``config.json`` when present, else from the config pickled in
    the ``n_images_*.pt`` file (read as plain data).
    """
    path = Path(path)
    if path.is_file():
        weights, path = path, path.parent
    else:
        found = weights_file(path)
        if found is None:
            raise InputError(f"{path}: no weights.pt or n_images_*.pt here")
        weights = found
    tensors, pickled_cfg = read_torch_checkpoint(weights)
    if (path / CONFIG_FILE).is_file():
        cfg, cfg_path = read_json(path / CONFIG_FILE), path / CONFIG_FILE
    elif isinstance(pickled_cfg, dict):
        cfg, cfg_path = pickled_cfg, weights
    else:
        raise InputError(f"{path / CONFIG_FILE}: missing, and {weights.name} pickles no config")
    return assemble(spec_from_config(cfg, cfg_path), tensors, weights)
