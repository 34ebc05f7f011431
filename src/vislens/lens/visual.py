"""Visual tokens of a study's images at chosen visual layers, with their patch row/col.

Through the VLM adapters (``vislens.models.vlm``): visual layer 0 is the connector output
(the LLM's input at the image positions), layer ``L`` the output of decoder block ``L``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int

from vislens.data.sources import ImageRecord, load_image
from vislens.errors import ModelError
from vislens.lens.textmodel import default_layers
from vislens.models.vlm.base import VLMAdapter


def default_visual_layers(n_layers: int) -> list[int]:
    """The paper's visual layers: 0 (connector output) and the contextual default set."""
    return [0, *default_layers(n_layers)]


def check_visual_layers(vlm: VLMAdapter, layers: Sequence[int]) -> list[int]:
    out = sorted(set(int(x) for x in layers))
    bad = [x for x in out if not 0 <= x <= vlm.n_layers]
    if bad:
        raise ModelError(
            f"{vlm.name}: visual layers {bad} out of range; this LLM has visual layers 0..{vlm.n_layers}"
        )
    return out


@dataclass
class VisualBatch:
    """Visual tokens of a group of images."""

    image_idx: list[int]
    """Index of each image in the study's image table."""
    hidden: dict[int, Float[torch.Tensor, "b n d"]]
    """Visual layer -> hidden states at the image positions (fp32, CPU)."""
    grid_rc_n2: Int[torch.Tensor, "n 2"]
    """(row, col) of each image token in the LLM grid, row-major."""
    grid_shape: tuple[int, int]


def visual_tokens(
    vlm: VLMAdapter,
    records: Sequence[ImageRecord],
    layers: Sequence[int],
    *,
    prompt: str = "describe the image.",
    batch_size: int = 8,
    start_idx: int = 0,
) -> Iterator[VisualBatch]:
    """Visual tokens of ``records`` in batches, at ``layers`` (checked against the LLM)."""
    layers = check_visual_layers(vlm, layers)
    for s in range(0, len(records), batch_size):
        group = records[s : s + batch_size]
        images = [load_image(r) for r in group]
        inputs = vlm.prepare(images, [prompt] * len(images))
        hidden = vlm.hidden_states(inputs, layers)
        yield VisualBatch(
            image_idx=list(range(start_idx + s, start_idx + s + len(group))),
            hidden={x: h.to("cpu", torch.float32) for x, h in hidden.items()},
            grid_rc_n2=inputs.grid_rc_n2,
            grid_shape=inputs.grid_shape,
        )
