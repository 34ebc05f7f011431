"""The per-batch computation of the bank: kept caption tokens' hidden states, per layer.

A leaf module, so the bank's writer (``bank.py``) and its engines (``bank_engine.py``,
Ray actors) both call it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float

from vislens.lens.textmodel import BankModel


def encode_captions(
    model: BankModel,
    texts: Sequence[str],
    positions: Sequence[Sequence[int]],
    layers: Sequence[int],
) -> dict[int, Float[torch.Tensor, "n d"]]:
    """Hidden states (fp32, on CPU) of the kept tokens of one batch of captions.

    ``positions[i]`` are token positions of caption ``i`` as tokenized unpadded (special
    tokens included); rows come out caption by caption, position by position. This is the
    whole per-batch computation, free of files and state, so a Ray Data actor can call it
    in ``map_batches``.
    """
    enc = model.tokenizer(list(texts), padding=True, return_tensors="pt", add_special_tokens=True)
    mask = enc["attention_mask"]
    hidden = model.hidden_states(enc["input_ids"], mask, layers)
    # Position p of a caption is its p-th real token, whichever side the padding is on.
    flat: list[int] = []
    width = int(mask.shape[1])
    for i, pos in enumerate(positions):
        real = torch.nonzero(mask[i]).flatten()
        flat.extend(i * width + int(real[p]) for p in pos)
    idx = torch.tensor(flat, dtype=torch.long)
    out = {}
    for layer in layers:
        h = hidden[layer]
        out[layer] = h.reshape(-1, h.shape[-1])[idx.to(h.device)].to("cpu", torch.float32)
    return out
