"""SAELens checkpoints: ``cfg.json`` + ``sae_weights.safetensors`` (read and write).

Reads both the flat cfg of SAELens ≤ 5 (``activation_fn_str``, ``activation_fn_kwargs``,
``hook_name``, ``hook_layer``) and SAELens 6 (``architecture``, ``k``, ``metadata``).
Writes a cfg that both read: the v6 keys plus the flat ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

import vislens
from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic
from vislens.sae.base import BaseSAE
from vislens.sae.formats.common import assemble, layer_from_hook_name, read_json
from vislens.sae.spec import SAESpec

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
_KNOWN = {
    "architecture", "d_in", "d_sae", "dtype", "device", "k", "activation_fn_str",
    "activation_fn_kwargs", "apply_b_dec_to_input", "normalize_activations", "hook_name",
    "hook_layer", "model_name", "metadata", "vislens",
}  # fmt: skip


def is_saelens_dir(path: Path) -> bool:
    return (path / CFG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def spec_from_cfg(cfg: dict[str, Any], cfg_path: Path) -> SAESpec:
    """Translate a SAELens cfg dict into a SAESpec; unsupported settings are InputErrors."""
    meta = cfg.get("metadata") or {}
    act = cfg.get("activation_fn_str", "relu")
    kwargs = cfg.get("activation_fn_kwargs") or {}
    arch: Any = cfg.get("architecture") or ("topk" if act == "topk" else "standard")
    if arch == "standard" and act == "topk":
        arch = "topk"
    if arch not in ("standard", "topk", "jumprelu"):
        raise InputError(
            f"{cfg_path}: architecture '{arch}' is not supported (standard, topk, jumprelu)"
        )
    k = cfg.get("k", kwargs.get("k"))
    norm: Any = cfg.get("normalize_activations") or "none"
    if norm == "expected_average_only_in":
        norm = "none"  # SAELens folds this scaling into the weights for inference
    if norm not in ("none", "layer_norm", "constant_norm_rescale"):
        raise InputError(f"{cfg_path}: normalize_activations '{norm}' is not supported")
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int):
            raise InputError(f"{cfg_path}: key '{key}' must be an integer (got {cfg.get(key)!r})")
    hook_name = str(cfg.get("hook_name") or meta.get("hook_name") or "")
    hook_layer = (cfg.get("vislens") or {}).get("hook_layer")
    if hook_layer is None:
        hook_layer = layer_from_hook_name(hook_name)
    vl = cfg.get("vislens") or {}
    try:
        return SAESpec(
            d_in=cfg["d_in"],
            d_sae=cfg["d_sae"],
            architecture=arch,
            k=int(k) if k is not None else None,
            normalize_activations=norm,
            apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
            hook_layer=hook_layer,
            hook_name=hook_name,
            token_scope=vl.get("token_scope", "all"),
            model_name=str(cfg.get("model_name") or meta.get("model_name") or ""),
            dtype=str(cfg.get("dtype") or "float32").replace("torch.", ""),
            source_format="saelens",
            extra={k2: v for k2, v in cfg.items() if k2 not in _KNOWN},
        )
    except ValueError as e:
        raise InputError(f"{cfg_path}: {e}") from None


def load_saelens(path: Path) -> BaseSAE:
    """Load an SAE from a SAELens directory."""
    path = Path(path)
    spec = spec_from_cfg(read_json(path / CFG_FILE), path / CFG_FILE)
    if spec.dtype not in ("float32", "float16", "bfloat16", "float64"):
        spec = SAESpec(**{**spec.to_dict(), "dtype": "float32"})
    tensors = load_file(str(path / WEIGHTS_FILE))
    return assemble(spec, tensors, path / WEIGHTS_FILE)


def saelens_cfg(spec: SAESpec) -> dict[str, Any]:
    """The cfg.json SAELens 5 and 6 both read for ``spec``."""
    # SAELens counts blocks: vislens layer L (output of block L-1) is blocks.{L-1}.hook_resid_post
    layer_block = None if spec.hook_layer is None else max(spec.hook_layer - 1, 0)
    if spec.hook_name or spec.hook_layer is None:
        hook_name = spec.hook_name
    elif spec.hook_layer == 0:
        hook_name = "blocks.0.hook_resid_pre"
    else:
        hook_name = f"blocks.{layer_block}.hook_resid_post"
    cfg: dict[str, Any] = {
        "architecture": spec.architecture,
        "d_in": spec.d_in,
        "d_sae": spec.d_sae,
        "dtype": spec.dtype,
        "device": "cpu",
        "apply_b_dec_to_input": spec.apply_b_dec_to_input,
        "normalize_activations": spec.normalize_activations,
        "activation_fn_str": "topk" if spec.architecture == "topk" else "relu",
        "activation_fn_kwargs": {"k": spec.k} if spec.architecture == "topk" else {},
        "model_name": spec.model_name,
        "hook_name": hook_name,
        "hook_layer": layer_block,
        "metadata": {"model_name": spec.model_name, "hook_name": hook_name},
        "vislens": {
            "version": vislens.__version__,
            "hook_layer": spec.hook_layer,
            "token_scope": spec.token_scope,
        },
    }
    if spec.architecture == "topk":
        cfg["k"] = spec.k
    cfg.update({k: v for k, v in spec.extra.items() if k not in cfg})
    return cfg


def save_saelens(sae: BaseSAE, path: Path) -> Path:
    """Write ``sae`` as a SAELens directory (weights first, cfg.json last, both atomic)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in sae.state_dict().items()}
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(path / CFG_FILE, saelens_cfg(sae.spec))
    return path
