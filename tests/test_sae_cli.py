"""`vislens sae …` end to end on a tiny CLIP study: train → eval → encode → topk → score →
export → heatmap, with every output's columns checked; user mistakes exit 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vislens.cli import app
from vislens.data.setup import init_study
from vislens.data.synthetic import generate_grid_world
from vislens.sae.scoring import CORRELATION_COLUMNS, SCORES_COLUMNS
from vislens.sae.top_items import TOPK_COLUMNS
from vislens.store.extract import extract


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory, tiny_vision):
    root = tmp_path_factory.mktemp("cli")
    generate_grid_world(root / "w", 16, seed=1, show_progress=False)
    study = init_study(
        root / "s", images=str(root / "w"), model=str(tiny_vision("clip")), layers=[2], tokens="all"
    )
    extract(study, batch_size=8, shard_size=6)
    ids = pd.read_parquet(study.images_path)["item_id"].tolist()
    rng = np.random.default_rng(0)
    pd.DataFrame({"item_id": ids, "embedding": list(rng.normal(size=(len(ids), 8)))}).to_parquet(
        root / "emb.parquet"
    )
    pd.DataFrame(
        {
            "item_id": ids,
            "mirror_self": rng.integers(1, 6, len(ids)),
            "drawn_to": rng.normal(size=len(ids)),
        }
    ).to_csv(root / "ratings.csv", index=False)
    return root


def run(*args: str) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.mark.slow
def test_full_pipeline(study_dir):
    s = study_dir / "s"
    run("sae", "train", s, "--name", "mine", "--d-sae", "64", "--k", "4", "--steps", "40", "--batch-size", "64",
        "--checkpoint-every", "20")  # fmt: skip
    assert (s / "sae" / "mine" / "cfg.json").is_file() and (
        s / "sae" / "mine" / "checkpoint" / "optimizer.pt"
    ).is_file()
    out = run("sae", "eval", s, "--name", "mine")
    assert "explained variance" in out and "dense" in out and "cosine" in out
    report = json.loads((s / "sae" / "mine" / "eval" / "eval.json").read_text())
    assert report["site"] == "vision" and "downstream" not in report
    assert (s / "sae" / "mine" / "eval" / "feature_frequency.png").is_file()
    run("sae", "encode", s, "--name", "mine")
    run("sae", "topk", s, "--name", "mine", "--k", "5")
    top = pd.read_parquet(s / "sae" / "mine" / "topk.parquet")
    assert (
        tuple(top.columns) == TOPK_COLUMNS and top["rank"].max() <= 4 and (top["value"] > 0).all()
    )
    run("sae", "score", s, "--name", "mine", "--ratings", study_dir / "ratings.csv", "--embeddings",
        study_dir / "emb.parquet", "--spearman", "--top-n", "5")  # fmt: skip
    scores = pd.read_parquet(s / "sae" / "mine" / "scores.parquet")
    assert tuple(scores.columns) == SCORES_COLUMNS and len(scores) == 64
    assert set(scores["status"]) <= {"ok", "dead", "single", "constant"}
    alive = scores["status"] == "ok"
    assert scores.loc[alive, "ms"].between(-1, 1).all() and scores.loc[~alive, "ms"].isna().all()
    assert set(scores["tier"]) <= {0, 1, 2, 3}
    corr = pd.read_parquet(s / "sae" / "mine" / "correlations.parquet")
    assert set(CORRELATION_COLUMNS) <= set(corr.columns) and len(corr) == 64 * 2
    cal = json.loads((s / "sae" / "mine" / "calibration.json").read_text())
    assert cal["monosemantic"] == pytest.approx(cal["mean"] + 2 * cal["sd"])
    item = top.iloc[0]["item_id"]
    doc = json.loads(run("sae", "export", s, "--name", "mine", "--item", item))
    assert (
        doc["item_id"] == item
        and doc["num_active"] == len(doc["features"])
        and len(doc["patches"]) == 16
    )
    heat = json.loads(
        run("sae", "heatmap", s, "--name", "mine", "--feature", str(int(top.iloc[0]["feature"])))
    )
    assert np.array(heat["items"][0]["heatmap"]).shape == (4, 4)


def test_import_converts_to_saelens(study_dir, tmp_path):
    from helpers_sae import random_sae
    from vislens.sae.formats import save_saelens

    save_saelens(random_sae("topk", d_in=32, d_sae=40, k=3, hook_layer=2), tmp_path / "ext")
    run(
        "sae",
        "encode",
        study_dir / "s",
        "--sae",
        tmp_path / "ext",
        "--name",
        "ext",
        "--tokens",
        "cls",
    )
    info = json.loads(run("sae", "info", study_dir / "s" / "sae" / "ext"))
    assert info["architecture"] == "topk" and info["hook_layer"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["batchtopk", "matryoshka"])
def test_train_architectures(study_dir, arch):
    import json

    s = study_dir / "s"
    run("sae", "train", s, "--name", f"cli-{arch}", "--arch", arch, "--d-sae", "64", "--k", "4", "--steps", "12",
        "--batch-size", "64", "--aux-k", "8", "--warmup", "2", "--matryoshka-widths", "16,32")  # fmt: skip
    cfg = json.loads((s / "sae" / f"cli-{arch}" / "cfg.json").read_text())
    assert cfg["architecture"] == {"batchtopk": "jumprelu", "matryoshka": "topk"}[arch]
    assert cfg["vislens_training_architecture"] == arch


def test_train_refuses_an_unknown_architecture(study_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "vislens.cli", "sae", "train", str(study_dir / "s"), "--name", "x", "--arch", "gated"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "--architecture must be one of" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_user_mistakes_exit_2_with_one_line(study_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,a\nnot-an-item,1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "vislens.cli", "sae", "score", str(study_dir / "s"), "--name", "nope",
         "--ratings", str(bad), "--no-ms"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "sae encode" in proc.stderr
