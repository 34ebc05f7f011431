"""Fixtures for the explorer: a cache directory in seed 003's exact layout, and a tiny study
with a map. Images are small PNGs; rationale CSVs carry the JSON the seed's viewer parses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

LABELS = ["cat", "dog", "bird", "<b>fish</b>"]
SEED_MODEL = "Qwen_Qwen3-VL-4B-Instruct"


def write_seed003_cache(
    root: Path, n: int = 60, *, n_images: int | None = None, seed: int = 0
) -> tuple[Path, Path]:
    """``(cache_dir, image_dir)``: metadata.csv + vis_umap_coords.npy + mis_/correct_ CSVs
    in the cache dir; PNGs for the first ``n_images`` rows (all by default) in image_dir.
    Clusters per label so a lasso around one cluster selects that label."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    cache = root / "feat_cache_vis" / "hf-hub_timm_ViT-SO400M-16-SigLIP2-384_cs" / "test" / "seed1"
    images = root / "CS_Xplots_2019_2023_test"
    cache.mkdir(parents=True)
    images.mkdir(parents=True)
    lab = np.arange(n) % len(LABELS)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    coords = centres[lab] + rng.normal(0, 1.0, size=(n, 2))
    names = [f"plot_{i:05d}.png" for i in range(n)]
    meta = pd.DataFrame(
        {
            "file_name": names,
            "ground_truth_word_label": [LABELS[k] for k in lab],
            "ground_truth_num_label": lab,
            "quality": rng.random(n).round(3),
        }
    )
    meta.to_csv(cache / "metadata.csv", index=False)
    np.save(cache / "vis_umap_coords.npy", coords.astype(np.float32))
    colours = ["red", "green", "blue", "orange"]
    for i in range(n if n_images is None else n_images):
        Image.new("RGB", (32, 32), colours[lab[i]]).save(images / names[i])
    mis = [
        {
            "file_name": names[i],
            "rationale": json.dumps({"score": 2, "rationale": f"looks like a dog <i>{i}</i>"}),
        }
        for i in range(0, n, 4)
    ]
    correct = [
        {"file_name": names[i], "rationale": json.dumps({"score": 9, "rationale": "clearly a dog"})}
        for i in range(1, n, 4)
    ]
    pd.DataFrame(mis).to_csv(cache / f"mis_{SEED_MODEL}.csv", index=False)
    pd.DataFrame(correct).to_csv(cache / f"correct_{SEED_MODEL}.csv", index=False)
    return cache, images


def write_workbench_study(root: Path) -> Path:
    """A study whose every stage has output, each file in its stage's schema (SAE scores,
    LatentLens neighbours, probe reports, a map), over a 10 × 10 grid world of 4 images."""
    from vislens.data.synthetic import generate_grid_world
    from vislens.data.table import write_image_table
    from vislens.map.write import metadata_table, write_map
    from vislens.probe.reports import PER_CASE_COLUMNS
    from vislens.probe.stats import RANKING_COLUMNS
    from vislens.sae.scoring import CORRELATION_COLUMNS, SCORES_COLUMNS
    from vislens.sae.top_items import TOPK_COLUMNS
    from vislens.study import Study, StudyConfig

    study = Study.init(
        root / "study", StudyConfig(name="workbench", description="every stage, tiny")
    )
    generate_grid_world(root / "world", 4, 0)
    pngs = sorted((root / "world" / "images").glob("*.png"))
    ids = [f"img{i}" for i in range(len(pngs))]
    truth = {}  # the world's own objects per image, as images.parquet's `objects` column
    for line in (root / "world" / "annotations.jsonl").read_text().splitlines():
        rec = json.loads(line)
        truth[rec["image"]] = rec["objects"]
    write_image_table(
        pd.DataFrame({"item_id": ids, "source": [str(p) for p in pngs], "width": 280, "height": 280,
                      "split": "", "shape": ["circle", "square", "circle", "square"],
                      "objects": [json.dumps(truth[f"images/{p.name}"]) for p in pngs]}),
        study.images_path,
    )  # fmt: skip
    study.config.images.source = str(root / "world" / "images")
    study.save()
    rng = np.random.default_rng(0)
    # SAE run "run1": scores, correlations, top-k, labels.
    sae = study.sae_dir("run1")
    sae.mkdir(parents=True)
    n_f = 6
    scores = pd.DataFrame({
        "feature": np.arange(n_f), "n_active": rng.integers(1, 50, n_f), "status": "ok",
        "ms": rng.random(n_f).round(3), "ms_topn": rng.random(n_f).round(3), "ms_band": "high",
        "best_rating": "coherence", "r": rng.random(n_f).round(3), "p": 0.01, "q": 0.02,
        "significant": True, "tier": "A",
    })  # fmt: skip
    assert tuple(scores.columns) == SCORES_COLUMNS
    scores.to_parquet(sae / "scores.parquet")
    corr = pd.DataFrame({"feature": [3, 3], "rating": ["coherence", "label"], "n": [20, 20],
                         "r": [0.5, 0.2], "p": [0.01, 0.3], "q": [0.02, 0.4], "significant": [True, False]})  # fmt: skip
    assert tuple(corr.columns) == CORRELATION_COLUMNS
    corr.to_parquet(sae / "correlations.parquet")
    topk = pd.DataFrame({"feature": [3] * 4, "rank": range(4), "item_index": range(4),
                         "item_id": ids, "value": [4.0, 3.0, 2.0, 1.0]})  # fmt: skip
    assert tuple(topk.columns) == TOPK_COLUMNS
    topk.to_parquet(sae / "topk.parquet")
    (sae / "calibration.json").write_text(json.dumps({"mean": 0.3, "sd": 0.1, "n_pairs": 10,
        "moderate": 0.4, "monosemantic": 0.5, "schema_version": 1}))  # fmt: skip
    (sae / "labels.json").write_text(
        json.dumps({"features": [{"feature": 3, "label": "red <b>circles</b>"}]})
    )
    # LatentLens neighbours: the schema lens/neighbors.parquet is written in.
    rows = []
    for method in ("latentlens", "embeddinglens", "logitlens"):
        for layer in (1, 2):
            for r in range(10):
                for c in range(10):
                    for rank in range(1, 6):
                        word = f"w{r}{c}{rank}" if method == "latentlens" else f"{method[:3]}{rank}"
                        rows.append({
                            "method": method, "item_id": "img0", "image_idx": 0, "visual_layer": layer,
                            "patch_idx": r * 10 + c, "patch_row": r, "patch_col": c, "rank": rank,
                            "token_str": word, "token_id": rank, "score": 1.0 / rank,
                            "contextual_layer": layer + 1 if method == "latentlens" else -1,
                            "caption": f"a red circle near {word} on <i>grey</i>" if method == "latentlens" else "",
                            "position": 4,
                        })  # fmt: skip
    study.lens_dir.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(study.lens_dir / "neighbors.parquet")
    # Probe reports.
    rep = study.probe_dir / "reports"
    (rep / "attn_cache").mkdir(parents=True)
    (rep / "stats").mkdir()
    cases = []
    for k in range(2):
        case = f"case{k}"
        rec = {c: "" for c in PER_CASE_COLUMNS}
        rec.update({"case_id": case, "image": str(pngs[k]), "target": "red circle", "kind": "presence",
                    "question": "Is there a red circle?", "outcome": "TP", "attn_file": f"attn_cache/{case}.npz",
                    "evidence": json.dumps([27])})  # fmt: skip
        cases.append(rec)
        att = rng.random((3, 4, 10, 10)).astype(np.float16)
        np.savez(rep / "attn_cache" / f"{case}.npz", attention=att, generic=att,
                 relative=att.mean(1), meta=np.array(json.dumps({"case_id": case})))  # fmt: skip
    pd.DataFrame(cases, columns=list(PER_CASE_COLUMNS)).to_csv(rep / "per_case.csv", index=False)
    rank = pd.DataFrame([{c: 0 for c in RANKING_COLUMNS} | {"feature": "mass_target", "rank": i + 1, "layer": 2, "head": 3 - i, "q_bh": 0.01 * (i + 1)} for i in range(3)])  # fmt: skip
    rank.to_csv(rep / "stats" / "head_rankings.csv", index=False)
    pd.DataFrame({"group_id": ["g0"], "n_paraphrases": [3], "flips": [1]}).to_csv(rep / "prompt_sensitivity.csv", index=False)  # fmt: skip
    # A map.
    meta = metadata_table(study, ids)
    write_map(study.map_dir, meta, rng.normal(size=(len(ids), 2)), "activations_pca", {"source": "activations", "method": "pca", "layer": None, "sae": None, "seed": 0})  # fmt: skip
    return study.root
