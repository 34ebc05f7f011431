"""`vislens label STUDY --sae NAME --tier 1` on a study whose SAE outputs are written by the
SAE stage's own writers (code store, top-k table) and a scores table in its layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from helpers_judge import FakeOpenAIServer, last_user_text
from vislens.cli import app
from vislens.data.sources import FolderSource
from vislens.data.table import build_image_table, write_image_table
from vislens.judge.tasks.sae_evidence import load_evidence
from vislens.sae.scoring import SCORES_COLUMNS, SCORES_FILE
from vislens.sae.top_items import TOPK_FILE, top_items, write_top_items
from vislens.store.codes import CodesInfo, CodesStore, CodesWriter, dense_to_csr
from vislens.study import Study

N_ITEMS, D_SAE, GRID = 6, 3, 2


def make_study(root: Path) -> Study:
    study = Study.init(root)
    img_dir = root / "images"
    img_dir.mkdir()
    for i in range(N_ITEMS):
        Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(img_dir / f"im{i}.png")
    write_image_table(build_image_table(FolderSource(img_dir)), study.images_path)
    ids = [f"im{i}.png" for i in range(N_ITEMS)]
    # Feature f fires on patch (f % 4) of every image, more strongly on later images.
    codes_rf = torch.zeros(N_ITEMS * GRID * GRID, D_SAE)
    for i in range(N_ITEMS):
        for f in range(D_SAE):
            codes_rf[i * 4 + (f % 4), f] = 1.0 + i
    info = CodesInfo(d_sae=D_SAE, n_tokens=4, tokens="patches", has_cls=False, n_prefix_tokens=0,
                     grid_h=GRID, grid_w=GRID, n_items=N_ITEMS, shard_size=N_ITEMS, sae="s")  # fmt: skip
    codes_dir = study.sae_dir("s") / "codes"
    CodesWriter(codes_dir, info, ids).write_shard(0, torch.arange(N_ITEMS), dense_to_csr(codes_rf))
    codes = CodesStore.open(codes_dir)
    write_top_items(
        top_items(codes, k=4, reduce="max"), study.sae_dir("s") / TOPK_FILE, k=4, reduce="max"
    )
    scores = pd.DataFrame({
        "feature": np.arange(D_SAE, dtype=np.int32), "n_active": N_ITEMS, "status": "ok",
        "ms": [0.7, 0.2, 0.8], "ms_topn": np.nan, "ms_band": "x", "best_rating": "drawn_to",
        "r": [0.3, 0.0, -0.4], "p": 0.01, "q": 0.02, "significant": True, "tier": [1, 3, 1],
    })[list(SCORES_COLUMNS)]  # fmt: skip
    scores.to_parquet(study.sae_dir("s") / SCORES_FILE, index=False)
    return study


def responder(body: dict[str, Any]) -> str:
    return json.dumps({"label": "red squares here", "description": last_user_text(body)[:40],
                       "visual_elements": ["red"], "rating_rationale": "warm"})  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder) as srv:
        yield srv


def test_evidence_follows_tiers_scores_and_heatmaps(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    evs = load_evidence(study, "s", tier=1, n_images=3)
    assert [e.feature for e in evs] == [2, 0]  # tier 1, strongest MS first
    ev = evs[0]
    assert (ev.ms, ev.corr, ev.rating_dim, ev.tier) == (0.8, -0.4, "drawn_to", 1)
    assert len(ev.images) == 3 and ev.images[0].getpixel((0, 0)) == (200, 0, 0)  # top item = im5
    heat = ev.heatmaps[0]
    assert heat is not None and heat.shape == (GRID, GRID)
    assert heat[1, 0] == 6.0 and heat.sum() == 6.0  # feature 2 fires on patch 2 = row 1, col 0


def test_label_command_writes_labels_json(tmp_path: Path, server: FakeOpenAIServer) -> None:
    study = make_study(tmp_path / "study")
    res = CliRunner().invoke(
        app,
        [
            "label",
            str(study.root),
            "--sae",
            "s",
            "--tier",
            "1",
            "--model",
            "m",
            "--base-url",
            server.base_url,
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((study.sae_dir("s") / "labels.json").read_text())
    assert [f["feature"] for f in data["features"]] == [2, 0] and data["sae"] == "s"
    assert data["features"][0]["tier"] == 1 and data["features"][0]["n_images"] == 4
    # Requests run concurrently, so find feature 2's by its text rather than its arrival order.
    prompts = [last_user_text(r) for r in server.received]
    [prompt_2] = [p for p in prompts if "SAE feature #2 " in p]
    assert "monosemanticity score 0.80" in prompt_2
    assert study.judge_cache_path.is_file()


def test_missing_topk_is_a_clear_error(tmp_path: Path) -> None:
    study = Study.init(tmp_path / "empty")
    res = CliRunner().invoke(app, ["label", str(study.root), "--sae", "nope", "--model", "m"])
    assert res.exit_code != 0 and "vislens sae topk" in str(res.exception)
