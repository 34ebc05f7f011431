"""Qwen2.5-VL specifics: the 2x2 merge grid, pinned pixels, and the grid it reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_vlm import save_tiny_qwen2_5_vl
from vislens.errors import InputError
from vislens.models.vlm import QwenVLAdapter, load_vlm


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen"))


def cell_coded(width: int, height: int, cell: int = 28) -> Image.Image:
    """Each 28-px cell filled with a colour that encodes its (row, col)."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    for r in range(height // cell):
        for c in range(width // cell):
            arr[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = (
                10 + 20 * r,
                10 + 20 * c,
                128,
            )
    return Image.fromarray(arr)


@pytest.mark.parametrize("size", [(280, 280), (280, 196)])
def test_each_llm_token_is_the_28px_cell_at_its_row_col(
    qwen_dir: Path, size: tuple[int, int]
) -> None:
    vlm = load_vlm(qwen_dir, image_size=size)
    assert isinstance(vlm, QwenVLAdapter)
    inputs = vlm.prepare([cell_coded(*size)], ["what color?"])
    w, h = size
    assert inputs.batch["image_grid_thw"].tolist() == [[1, h // 14, w // 14]]
    assert inputs.grid_shape == (h // 28, w // 28)
    # pixel_values rows are 14-px patches in the processor's own order; each LLM token is 4
    # consecutive rows (its 2x2 block). Undo the normalisation and read the cell code back.
    ip = vlm.processor.image_processor
    pv = inputs.batch["pixel_values"].reshape(-1, 4, 3, 2, 14, 14)
    mean = torch.tensor(ip.image_mean).view(1, 1, 3, 1, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 1, 3, 1, 1, 1)
    rgb = ((pv * std + mean) * 255).mean(dim=(1, 3, 4, 5))
    for k, (r, c) in enumerate(inputs.grid_rc_n2.tolist()):
        assert round(float(rgb[k, 0])) == 10 + 20 * r
        assert round(float(rgb[k, 1])) == 10 + 20 * c


def test_280_image_reports_grid_1_20_20_and_10x10_tokens(qwen_dir: Path) -> None:
    vlm = load_vlm(qwen_dir, image_size=(280, 280))
    assert vlm.processor_kwargs() == {
        "size": {"shortest_edge": 280 * 280, "longest_edge": 280 * 280}
    }
    inputs = vlm.prepare([cell_coded(280, 280)], ["is there a red circle?"])
    assert inputs.batch["image_grid_thw"].tolist() == [[1, 20, 20]]
    assert inputs.grid_shape == (10, 10) and inputs.n_image_tokens == 100


def test_wrongly_sized_image_is_an_error_not_a_silent_regrid(qwen_dir: Path) -> None:
    pinned = load_vlm(qwen_dir, image_size=(280, 280))
    with pytest.raises(InputError, match="300x280"):
        pinned.prepare([cell_coded(300, 280)], ["what?"])
    # Unpinned, the processor rescales freely; the grid is still read from what it reports.
    free = load_vlm(qwen_dir)
    inputs = free.prepare([cell_coded(336, 224)], ["what?"])
    _t, h, w = inputs.batch["image_grid_thw"][0].tolist()
    assert inputs.grid_shape == (h // 2, w // 2)
