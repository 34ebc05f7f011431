"""The probe end to end on tiny random Qwen2.5-VL and LLaVA: npz shapes, every grid cell
holding its own token's attention, and models whose grid is not the world's refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers_vlm import save_tiny_llava, save_tiny_qwen2_5_vl
from vislens.data.synthetic import WorldSpec, generate_grid_world
from vislens.errors import ModelError
from vislens.models.vlm import load_vlm
from vislens.probe import read_case_npz, run_probe
from vislens.probe.attention import META_KEYS, NPZ_KEYS


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe-vlm") / "world"
    generate_grid_world(out, 4, seed=5, show_progress=False)
    return out


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_qwen2_5_vl(tmp_path_factory.mktemp("qwen"))


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llava(tmp_path_factory.mktemp("llava280"), image_size=280, patch=28)


def first_target(world: Path) -> str:
    o = json.loads((world / "annotations.jsonl").read_text().splitlines()[0])["objects"][0]
    return f"{o['color']} {o['shape']}"


def run(world: Path, model: Path, tmp_path: Path, **kwargs) -> tuple[Path, dict]:  # type: ignore[no-untyped-def]
    import shutil

    w = tmp_path / "w"
    shutil.copytree(world, w)
    summary = run_probe(
        w,
        model=str(model),
        targets=[first_target(world)],
        paraphrases=["p0", "p1", "l1"],
        n_figures=2,
        batch_size=3,
        show_progress=False,
        **kwargs,
    )
    return w / "probe" / "reports", summary


def check_cells(reports: Path, model_dir: Path, world: Path, query: str = "last") -> None:
    """Every npz cell equals the adapter's attention of the token at that (row, col)."""
    per_case = pd.read_csv(reports / "per_case.csv")
    vlm = load_vlm(model_dir, image_size=(280, 280))
    row = per_case.iloc[0]
    data = read_case_npz(reports / row["attn_file"])
    image = Image.open(world / row["image"]).convert("RGB")
    answers = (
        [
            row["answer"]
            if isinstance(row["answer"], str) and row["answer"].strip()
            else vlm.processor.tokenizer.eos_token
        ]
        if query == "answer_start"
        else None
    )
    inputs = vlm.prepare([image], [row["question"]], answers=answers)
    layers = list(range(1, vlm.n_layers + 1))
    attn = vlm.attention_to_image(inputs, layers, query=query)[0, :, :, 0, :].numpy()
    assert inputs.grid_shape == (10, 10)
    for k, (r, c) in enumerate(inputs.grid_rc_n2.tolist()):
        np.testing.assert_array_equal(
            data["attention"][:, :, r, c], attn[:, :, k].astype(np.float16)
        )


def test_qwen2_5_vl_end_to_end(world: Path, qwen_dir: Path, tmp_path: Path) -> None:
    reports, summary = run(world, qwen_dir, tmp_path)
    per_case = pd.read_csv(reports / "per_case.csv")
    assert len(per_case) == summary["n_cases"] > 0
    for f in per_case["attn_file"]:
        data = read_case_npz(reports / f)
        assert data["attention"].shape == (3, 4, 10, 10) and data["attention"].dtype == np.float16
        assert data["generic"].shape == (3, 4, 10, 10)
        assert data["relative"].shape == (3, 10, 10)
        assert list(data["meta"]) == list(META_KEYS)
        with np.load(reports / f) as z:
            assert sorted(z.files) == sorted(NPZ_KEYS)
        # Raw softmax weights: a head's attention to the image is a share of 1.
        total = data["attention"].astype(np.float32).sum((-1, -2))
        assert (total > 0).all() and (total <= 1.001).all()
    check_cells(reports, qwen_dir, world)
    # Each LLM token is the 28-px cell at its (row, col): read the pixels back.
    vlm = load_vlm(qwen_dir, image_size=(280, 280))
    image = Image.open(world / per_case["image"][0]).convert("RGB")
    inputs = vlm.prepare([image], ["?"])
    ip = vlm.processor.image_processor
    pv = inputs.batch["pixel_values"].reshape(-1, 4, 3, 2, 14, 14)
    mean = torch.tensor(ip.image_mean).view(1, 1, 3, 1, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 1, 3, 1, 1, 1)
    rgb_token = ((pv * std + mean) * 255).mean(dim=(1, 3, 4, 5)).numpy()
    arr = np.asarray(image, dtype=np.float64)
    for k, (r, c) in enumerate(inputs.grid_rc_n2.tolist()):
        cell = arr[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28].mean((0, 1))
        np.testing.assert_allclose(rgb_token[k], cell, atol=1.5)
    assert len(list((reports / "figs").glob("*.png"))) == 2


def test_llava_end_to_end_first_answer_token(world: Path, llava_dir: Path, tmp_path: Path) -> None:
    reports, summary = run(world, llava_dir, tmp_path, query="answer_start")
    assert summary["query"] == "answer_start"
    per_case = pd.read_csv(reports / "per_case.csv")
    data = read_case_npz(reports / per_case["attn_file"][0])
    assert data["attention"].shape == (3, 4, 10, 10)
    assert data["meta"]["query_position"].startswith("answer_start")
    check_cells(reports, llava_dir, world, query="answer_start")


def test_model_with_another_grid_is_refused(world: Path, tmp_path: Path) -> None:
    small = save_tiny_llava(tmp_path / "llava56")  # 56-px images of 14-px patches: 4x4 tokens
    with pytest.raises(ModelError, match=r"4x4 token grid.*10x10 grid of 28-px cells"):
        run(world, small, tmp_path)


def test_qwen_refuses_cells_that_are_not_28px(qwen_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "w14"
    generate_grid_world(out, 3, seed=1, spec=WorldSpec(patch=14), show_progress=False)
    o = json.loads((out / "annotations.jsonl").read_text().splitlines()[0])["objects"][0]
    with pytest.raises(ModelError, match="5x5 token grid"):
        run_probe(
            out, model=str(qwen_dir), targets=[f"{o['color']} {o['shape']}"], show_progress=False
        )
    assert not (out / "probe" / "reports" / "per_case.csv").exists()
