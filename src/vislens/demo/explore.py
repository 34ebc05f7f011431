"""The demo's map: tower activations projected to 2-D, with the toy VLM's own answers as
seed 003's mis/correct CSVs, so the explorer shows where the toy goes wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from vislens.study import Study

MAP_NAME = "tower_pca"
MODEL_SLUG = "toy"
"""The mis/correct CSVs are ``mis_toy.csv`` / ``correct_toy.csv`` (seed 003's naming)."""


def _first_objects(study: Study) -> list[dict[str, Any]]:
    table = pd.read_parquet(study.images_path, columns=["item_id", "objects"])
    return [json.loads(raw)[0] for raw in table["objects"]]


def toy_answers(study: Study, *, batch_size: int = 32) -> pd.DataFrame:
    """Per image: the toy's answer to "what shape is in row R, column C?" for its first object."""
    from vislens.data.sources import load_image
    from vislens.models.toy import load_toy_vlm
    from vislens.progress import track
    from vislens.store.extract import ensure_image_table

    vlm = load_toy_vlm()
    records = ensure_image_table(study)
    firsts = _first_objects(study)
    questions = [f"what shape is in row {o['r']}, column {o['c']}?" for o in firsts]
    answers: list[str] = []
    starts = range(0, len(records), batch_size)
    for s in track(starts, "toy answers", total=len(starts)):
        batch = records[s : s + batch_size]
        answers += vlm.generate([load_image(r) for r in batch], questions[s : s + batch_size])
    return pd.DataFrame(
        {
            "item_id": [r.item_id for r in records],
            "question": questions,
            "ground_truth_word_label": [o["shape"] for o in firsts],
            "predicted_label": answers,
        }
    )


def map_stage(study: Study, seed: int) -> dict[str, Any]:
    """``vislens map`` (PCA of the tower's last layer), then the toy's answers beside it."""
    from vislens.io import atomic_path
    from vislens.map.run import map_study
    from vislens.map.write import METADATA_FILE

    coords = map_study(
        study.root, source="activations", method="pca", layer=2, name=MAP_NAME, seed=seed,
        replace=True,
    )  # fmt: skip
    meta_path = study.map_dir / METADATA_FILE
    meta = pd.read_csv(meta_path, dtype={"item_id": str})
    answers = toy_answers(study).set_index("item_id").loc[meta["item_id"]].reset_index()
    meta["ground_truth_word_label"] = answers["ground_truth_word_label"].to_numpy()
    meta["ground_truth_num_label"] = meta.get("n_objects", 0)
    with atomic_path(meta_path) as tmp:
        meta.to_csv(tmp, index=False)
    rows = meta.assign(predicted_label=answers["predicted_label"].to_numpy())
    rows["rationale"] = [
        json.dumps(
            {
                "prediction": pred,
                "score": 1.0 if pred == truth else 0.0,
                "rationale": f"asked {q!r}; the toy VLM answered {pred!r} (truth: {truth})",
            }
        )
        for pred, truth, q in zip(
            rows["predicted_label"],
            rows["ground_truth_word_label"],
            answers["question"],
            strict=True,
        )
    ]
    right = rows["predicted_label"] == rows["ground_truth_word_label"]
    paths = {}
    for kind, part in (("mis", rows[~right]), ("correct", rows[right])):
        paths[kind] = study.map_dir / f"{kind}_{MODEL_SLUG}.csv"
        with atomic_path(paths[kind]) as tmp:
            part.to_csv(tmp, index=False)
    return {
        "coords": str(Path(coords).name),
        "n_items": len(meta),
        "toy_accuracy": float(right.mean()),
        "mis_csv": paths["mis"].name,
        "correct_csv": paths["correct"].name,
    }
