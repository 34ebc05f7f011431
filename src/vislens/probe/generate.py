"""Greedy answers and their attention to the image from the same ``generate`` call.

``VLMAdapter.capture`` costs one more forward pass per case; here the adapter's attention
hooks ride along on ``model.generate`` instead. The prefill step's weights give the row of
the last prompt token; the first decoding step's (one query: the first answer token,
attending to the prompt and itself) give the first answer token's row. Only the
``[b, heads, n_image]`` slice of each layer is kept. The answers are exactly those of
``VLMAdapter.generate`` (same call, same inputs; the hooks only read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.errors import ModelError
from vislens.probe.attention import tokens_to_grid

if TYPE_CHECKING:
    from PIL import Image

    from vislens.models.vlm.base import VLMAdapter


def generate_with_attention(
    vlm: VLMAdapter,
    images: Sequence[Image.Image],
    prompts: Sequence[str],
    *,
    layers: Sequence[int],
    query: str,
    max_new_tokens: int,
) -> tuple[list[str], np.ndarray | None, tuple[int, int]]:
    """``(answers, attention [b, l, h, rows, cols] float32, grid shape)``.

    ``query`` is ``last`` (last prompt token) or ``answer_start`` (first answer token; an
    answer that ends at once attends from its end-of-sequence token). The attention is
    None when generation ended before the query was reached (every answer empty).
    """
    import torch

    inputs = vlm.prepare(list(images), list(prompts))
    pos_bn = inputs.image_positions_bn.to(vlm.device)
    step_wanted = 0 if query == "last" else 1
    calls: dict[int, int] = {}
    rows: dict[int, torch.Tensor] = {}
    blocks = vlm.decoder_layers

    def hook(module: Any, args: Any, output: Any, layer: int) -> None:
        step = calls.get(layer, 0)
        calls[layer] = step + 1
        if step != step_wanted:
            return
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is None:
            raise ModelError(f"{vlm.name}: layer {layer} returned no attention weights")
        b, h = weights.shape[:2]
        last = weights[:, :, -1, :]  # prefill: the last prompt token; decode: the new token
        idx = pos_bn.view(b, 1, -1).expand(b, h, -1)
        rows[layer] = torch.gather(last, 2, idx).detach().float().cpu()

    handles = [
        vlm._attention_module(blocks[layer - 1]).register_forward_hook(
            lambda m, a, o, layer=layer: hook(m, a, o, layer)
        )
        for layer in layers
    ]
    try:
        with vlm._eager_attention(True), torch.no_grad():
            out = vlm.model.generate(
                **vlm._to_device(inputs.batch), max_new_tokens=max_new_tokens, do_sample=False
            )
    finally:
        for handle in handles:
            handle.remove()
    new = out[:, inputs.input_ids.shape[1] :]
    texts = [t.strip() for t in vlm.processor.tokenizer.batch_decode(new, skip_special_tokens=True)]
    if len(rows) != len(layers):
        return texts, None, inputs.grid_shape
    attn_blhn = torch.stack([rows[x] for x in layers], 1).numpy()
    grid = tokens_to_grid(attn_blhn, inputs.grid_rc_n2.numpy(), inputs.grid_shape)
    return texts, grid, inputs.grid_shape
