"""dictionary_learning checkpoints: ``ae.pt`` + ``config.json`` (Marks et al.).

Maps the library's classes onto ours:

- ``AutoEncoder``: ``encoder.weight [d_sae, d_in]``, ``encoder.bias``, ``decoder.weight
  [d_in, d_sae]``, ``bias [d_in]``; ``relu(encoder(x - bias))`` → standard, b_dec = bias.
- ``AutoEncoderTopK`` / ``BatchTopKSAE``: ``encoder.*``, ``decoder.weight``, ``b_dec``, ``k``;
  ``topk(relu(encoder(x - b_dec)))`` → topk (BatchTopK is encoded per token with its k).
- ``JumpReluAutoEncoder``: ``W_enc``, ``b_enc``, ``W_dec``, ``b_dec``, ``threshold``; no b_dec
  subtraction on the input (the library's ``apply_b_dec_to_input = False``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from vislens.errors import InputError
from vislens.sae.base import BaseSAE
from vislens.sae.formats.common import assemble, read_json, torch_load_tensors
from vislens.sae.spec import SAESpec

AE_FILE = "ae.pt"
CONFIG_FILE = "config.json"


def is_dictionary_learning_dir(path: Path) -> bool:
    return (path / AE_FILE).is_file()


def load_dictionary_learning(path: Path) -> BaseSAE:
    """Load an SAE from a dictionary_learning directory (``ae.pt``, optional ``config.json``)."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    sd = torch_load_tensors(path / AE_FILE)
    trainer: dict[str, Any] = {}
    if (path / CONFIG_FILE).is_file():
        trainer = read_json(path / CONFIG_FILE).get("trainer") or {}
    dict_class = str(trainer.get("dict_class", ""))
    layer = trainer.get("layer")
    common: dict[str, Any] = {
        "hook_layer": int(layer) + 1 if isinstance(layer, int) else None,
        "hook_name": str(trainer.get("submodule_name") or ""),
        "model_name": str(trainer.get("lm_name") or ""),
        "source_format": "dictionary_learning",
    }
    src = path / AE_FILE
    if "W_enc" in sd:  # JumpReluAutoEncoder
        d_in, d_sae = sd["W_enc"].shape
        spec = SAESpec(
            d_in=d_in, d_sae=d_sae, architecture="jumprelu", apply_b_dec_to_input=False, **common
        )
        return assemble(spec, sd, src)
    if "encoder.weight" not in sd or "decoder.weight" not in sd:
        raise InputError(f"{src}: not a dictionary_learning state dict (keys: {sorted(sd)[:8]})")
    d_sae, d_in = sd["encoder.weight"].shape
    tensors: dict[str, Tensor] = {
        "W_enc": sd["encoder.weight"].T,
        "b_enc": sd["encoder.bias"],
        "W_dec": sd["decoder.weight"].T,
    }
    if "bias" in sd:  # AutoEncoder
        tensors["b_dec"] = sd["bias"]
        spec = SAESpec(d_in=d_in, d_sae=d_sae, architecture="standard", **common)
    elif "b_dec" in sd:  # AutoEncoderTopK / BatchTopKSAE
        tensors["b_dec"] = sd["b_dec"]
        k = int(sd["k"].item()) if "k" in sd else trainer.get("k")
        if k is None:
            raise InputError(f"{src}: a top-k autoencoder without 'k' in ae.pt or config.json")
        spec = SAESpec(d_in=d_in, d_sae=d_sae, architecture="topk", k=int(k), **common)
    else:
        raise InputError(
            f"{src}: found no decoder bias ('bias' or 'b_dec'); class {dict_class!r} unsupported"
        )
    return assemble(spec, tensors, src)
