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
from vislens.sae.formats.common import assemble, parse_hook_name, read_json
from vislens.sae.spec import SAESpec

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SAELENS_FORMAT_VERSION = "6.0.0"
"""Stamped as ``metadata.sae_lens_version``: SAELens reads a cfg stamped ≥ 6 as a v6 config
(no pre-6 key renaming), which is the layout vislens writes."""

_KNOWN = {
    "architecture", "d_in", "d_sae", "dtype", "device", "k", "activation_fn_str", "activation_fn",
    "activation_fn_kwargs", "apply_b_dec_to_input", "normalize_activations", "hook_name",
    "hook_layer", "model_name", "metadata", "vislens", "rescale_acts_by_decoder_norm",
    "reshape_activations", "hook_head_index", "finetuning_scaling_factor", "d_out",
}  # fmt: skip

# Keys that change what the encoder computes, with the only value vislens implements.
# Any other value is an error naming the key, never a silent entry in ``extra``.
_UNIMPLEMENTED_UNLESS = {
    "reshape_activations": ("none", None),
    "hook_head_index": (None,),
    "finetuning_scaling_factor": (False, None),
}
_ARCHS = ("standard", "topk", "jumprelu", "gated")


def is_saelens_dir(path: Path) -> bool:
    return (path / CFG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def spec_from_cfg(cfg: dict[str, Any], cfg_path: Path) -> SAESpec:
    """Translate a SAELens cfg dict into a SAESpec; unsupported settings are InputErrors."""
    meta = cfg.get("metadata") or {}
    act = cfg.get("activation_fn_str", cfg.get("activation_fn", "relu")) or "relu"
    kwargs = cfg.get("activation_fn_kwargs") or {}
    arch: Any = cfg.get("architecture") or ("topk" if act == "topk" else "standard")
    if arch == "standard" and act == "topk":
        arch = "topk"
    if arch not in _ARCHS:
        raise InputError(f"{cfg_path}: architecture '{arch}' is not supported {_ARCHS}")
    if act not in ("relu", "topk"):
        raise InputError(
            f"{cfg_path}: key 'activation_fn_str' is '{act}', which vislens does not implement (relu, topk)"
        )
    for key, allowed in _UNIMPLEMENTED_UNLESS.items():
        if key in cfg and cfg[key] not in allowed:
            raise InputError(
                f"{cfg_path}: key '{key}' is {cfg[key]!r}, which changes the encoding and is "
                f"not implemented by vislens (supported: {allowed[0]!r})"
            )
    if cfg.get("d_out") not in (None, cfg.get("d_in")):
        raise InputError(
            f"{cfg_path}: key 'd_out' is {cfg['d_out']} ≠ d_in: transcoders are not supported"
        )
    rescale = bool(cfg.get("rescale_acts_by_decoder_norm", False))
    if rescale and arch != "topk":
        raise InputError(
            f"{cfg_path}: key 'rescale_acts_by_decoder_norm' is only implemented for topk (architecture '{arch}')"
        )
    k = cfg.get("k", kwargs.get("k"))
    norm: Any = cfg.get("normalize_activations") or "none"
    if norm == "expected_average_only_in":
        norm = "none"  # SAELens folds this scaling into the weights for inference
    if norm not in ("none", "layer_norm", "constant_norm_rescale"):
        raise InputError(
            f"{cfg_path}: key 'normalize_activations' is '{norm}', which is not supported"
        )
    for key in ("d_in", "d_sae"):
        if not isinstance(cfg.get(key), int):
            raise InputError(f"{cfg_path}: key '{key}' must be an integer (got {cfg.get(key)!r})")
    hook_name = str(cfg.get("hook_name") or meta.get("hook_name") or "")
    vl = cfg.get("vislens") or {}
    hook_layer, residual = parse_hook_name(hook_name)
    if vl.get("hook_layer") is not None:
        hook_layer = vl["hook_layer"]
    residual = bool(vl.get("hook_residual", residual))
    try:
        return SAESpec(
            d_in=cfg["d_in"],
            d_sae=cfg["d_sae"],
            architecture=arch,
            k=int(k) if k is not None and arch == "topk" else None,
            normalize_activations=norm,
            apply_b_dec_to_input=bool(cfg.get("apply_b_dec_to_input", True)),
            hook_layer=hook_layer,
            hook_name=hook_name,
            hook_residual=residual,
            rescale_acts_by_decoder_norm=rescale,
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
    parts = spec.hook_name.split(".")
    if len(parts) >= 2 and parts[0] == "blocks" and parts[1].isdigit():
        layer_block = int(parts[1])  # the block the source hook names (resid_pre: block L)
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
        "reshape_activations": "none",
        "metadata": {
            "model_name": spec.model_name,
            "hook_name": hook_name,
            "sae_lens_version": SAELENS_FORMAT_VERSION,
        },
        "vislens": {
            "version": vislens.__version__,
            "hook_layer": spec.hook_layer,
            "hook_residual": spec.hook_residual,
            "token_scope": spec.token_scope,
        },
    }
    if spec.architecture == "topk":
        cfg["k"] = spec.k
        cfg["rescale_acts_by_decoder_norm"] = spec.rescale_acts_by_decoder_norm
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
