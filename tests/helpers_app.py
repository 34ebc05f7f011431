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
