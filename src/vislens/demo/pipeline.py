"""The demo's stages on the toy world, each a plain call into the library.

world → study → tower activations → SAE (train, codes, top-k, MS, correlations, tiers) →
LatentLens → visual-search probe → 2-D map → scorecard. Every stage writes into the
study directory and returns a small summary that the scorecard and the stage record keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vislens.study import Study

SAE_NAME = "toy-patches"
"""The demo's SAE: BatchTopK on the toy tower's last-layer patch tokens."""

TOWER_LAYER = 2
"""The toy tower's last block (it has two); one token per grid cell."""

LENS_MODEL = "toy-mlp"
"""The VLM the demo reads with LatentLens (saved as ``[lens] model``): the toy trained the
LatentLens way; the QA toy answers the questions and the probe."""

SAE_DEAD_WINDOW = 20
"""Steps without firing after which AuxK trains a latent (short: the demo trains 800 steps)."""


@dataclass(frozen=True)
class DemoSettings:
    """What makes one demo run differ from another (a change re-runs the affected stages)."""

    n_images: int = 200
    """Images in the synthetic world."""
    seed: int = 0
    """World seed, and the seed of every sampling step."""
    sae_steps: int = 800
    """SAE optimiser steps (batches of 512 patch tokens)."""
    sae_features: int = 384
    """SAE dictionary size (4 × the tower's 96 dimensions)."""
    sae_k: int = 16
    """Mean active features per token of the BatchTopK SAE, the recipe that finds most toy
    concepts (docs/sae.md, 'Ground truth'); saved as JumpReLU."""
    lens_images: int = 0
    """Images whose visual tokens LatentLens looks up, 0 for all (the bank uses every caption)."""
    probe_images: int = 40
    """Images the visual-search probe asks about, per target."""

    @classmethod
    def quick(cls, seed: int = 0) -> DemoSettings:
        """A one-minute look: a small world, a short SAE, few images for LatentLens and the probe."""
        return cls(n_images=24, seed=seed, sae_steps=300, lens_images=4, probe_images=6)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def make_world(world_dir: Path, s: DemoSettings) -> dict[str, Any]:
    from vislens.data.synthetic import generate_grid_world

    if not (world_dir / "annotations.jsonl").is_file():
        generate_grid_world(world_dir, s.n_images, seed=s.seed, overwrite=True)
    return {"world": str(world_dir), "n_images": s.n_images, "seed": s.seed}


def make_study(study_dir: Path, world_dir: Path) -> dict[str, Any]:
    from vislens.data.setup import init_study
    from vislens.study import STUDY_FILE

    if not (study_dir / STUDY_FILE).is_file():
        init_study(
            study_dir, images=str(world_dir), model="toy", layers=[1, TOWER_LAYER], tokens="all",
            name="demo",
        )  # fmt: skip
    return {"study": str(study_dir)}


def extract_tower(study: Study) -> dict[str, Any]:
    from vislens.store.extract import extract

    res = extract(study)
    return {"n_images": res.n_items, "layers": [1, TOWER_LAYER]}


def _item_ids(study: Study) -> list[str]:
    import pandas as pd

    return pd.read_parquet(study.images_path, columns=["item_id"])["item_id"].astype(str).tolist()


def sae_stage(study: Study, s: DemoSettings) -> dict[str, Any]:
    """Train, encode, top-k and score the demo SAE; ratings and MS embeddings from the truth."""
    import torch

    from vislens.demo.truth import write_ratings, write_scene_embeddings
    from vislens.sae.groundtruth import read_cell_labels
    from vislens.sae.runs import encode_study, score_study, topk_study, train_study

    ids = _item_ids(study)
    labels = read_cell_labels(study.images_path, ids)
    out = study.sae_dir(SAE_NAME)
    out.mkdir(parents=True, exist_ok=True)
    ratings = write_ratings(labels, ids, out / "truth_ratings.csv")
    emb = write_scene_embeddings(labels, ids, out / "truth_embeddings.parquet")
    threads = torch.get_num_threads()
    # [512, 96] x [96, 384] matmuls gain nothing from threads, and on a shared CPU two
    # threads that wait for each other made this stage 9x slower (142 s vs 16.5 s, measured)
    torch.set_num_threads(1)
    try:
        _, metrics = train_study(
            study, name=SAE_NAME, layer=TOWER_LAYER, tokens="patches", architecture="batchtopk",
            d_sae=s.sae_features, k=s.sae_k, dead_window=SAE_DEAD_WINDOW, n_steps=s.sae_steps,
            batch_size=512, seed=s.seed,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    encode_study(study, name=SAE_NAME, layer=TOWER_LAYER, tokens="patches", overwrite=True)
    topk_study(study, name=SAE_NAME)
    score_study(study, name=SAE_NAME, ratings_path=ratings, embeddings_path=emb)
    return {"sae": str(out), "metrics": metrics.as_dict()}


def sae_scorecard(study: Study) -> dict[str, Any]:
    """Best feature per concept (AUROC among occupied cells, vislens.sae.groundtruth) and its
    MS band."""
    import pandas as pd

    from vislens.sae.encode import plan_tokens
    from vislens.sae.groundtruth import AUROC_GOAL, read_cell_labels, sae_concept_auroc
    from vislens.sae.runs import load_study_sae
    from vislens.store.activations import ActivationStore

    sae = load_study_sae(study, SAE_NAME)
    store = ActivationStore.open(study.activations_dir)
    plan = plan_tokens(store, sae, "patches")
    acts = store.load(TOWER_LAYER)[:, plan.start : plan.stop].float().numpy()
    labels = read_cell_labels(study.images_path, store.item_ids)
    table = sae_concept_auroc(sae, acts, labels)
    scores = pd.read_parquet(study.sae_dir(SAE_NAME) / "scores.parquet").set_index("feature")
    ms, band = scores["ms"].to_dict(), scores["ms_band"].to_dict()
    rows: list[dict[str, Any]] = []
    for r in table.to_dict("records"):
        f = int(r["best_feature"])
        rows.append({
            "concept": str(r["concept"]), "best_feature": f, "auroc": float(r["auroc"]),
            "n_cells": int(r["n_cells"]),
            "ms": float(ms[f]) if f >= 0 else float("nan"),
            "ms_band": str(band[f]) if f >= 0 else "undefined",
        })  # fmt: skip
    found = [r for r in rows if r["auroc"] >= AUROC_GOAL]
    return {
        "architecture": sae.spec.architecture,
        "concepts": rows,
        "n_concepts": len(rows),
        "n_found": len(found),
        "n_found_monosemantic": sum(r["ms_band"] == "monosemantic" for r in found),
        "auroc_goal": AUROC_GOAL,
        "dead_fraction": float((scores["status"] == "dead").mean()),
    }


PROBE_TARGETS: tuple[str, ...] = ("red circle", "green square", "blue triangle")
"""The demo's visual-search targets."""


def lens_stage(study: Study, s: DemoSettings) -> dict[str, Any]:
    """LatentLens bank from the world's captions, neighbours of the first images' tokens,
    EmbeddingLens/LogitLens beside them, and the rates scored against the truth."""
    from vislens.lens.run import build_study_bank, load_study_vlm, rates_study, run_neighbors

    vlm = load_study_vlm(study, LENS_MODEL)
    # The stage was not recorded as done: a bank left by a killed run is rebuilt, never
    # trusted half-way (and a complete one would otherwise refuse to be rebuilt).
    build_study_bank(study, None, vlm=vlm, overwrite=True, model=LENS_MODEL)
    res = run_neighbors(study, vlm=vlm, limit=s.lens_images or None)
    rates, _ = rates_study(study, source="truth", n_resamples=200, seed=s.seed)
    return {"n_images": int(res.n_images), "rates": rates.to_dict("records")}


def lens_scorecard(lens: dict[str, Any]) -> dict[str, Any]:
    """Per method and visual layer, the share of object cells whose top-5 names the cell's
    shape or colour (LatentLens over all contextual layers at once)."""
    by: dict[str, dict[str, float]] = {}
    for r in lens["rates"]:
        if r["cells"] == "object" and int(r["contextual_layer"]) == -1:
            by.setdefault(r["method"], {})[str(int(r["visual_layer"]))] = round(float(r["rate"]), 4)
    best = {m: max(v.items(), key=lambda kv: kv[1]) for m, v in by.items()}
    return {
        "n_images": lens["n_images"],
        "rate_by_visual_layer": by,
        "best": {m: {"visual_layer": int(k), "rate": v} for m, (k, v) in best.items()},
    }


def probe_stage(study: Study, s: DemoSettings) -> dict[str, Any]:
    from vislens.probe import run_probe

    return run_probe(study.root, model="toy", targets=list(PROBE_TARGETS), n_images=s.probe_images)


def probe_scorecard(study: Study, summary: dict[str, Any]) -> dict[str, Any]:
    """Presence precision/recall, location accuracy, and whether the heads ranked first
    (TP vs FN) look at the evidence cells (localisation against the truth)."""
    import pandas as pd

    pres = {t: v["overall"] for t, v in summary["presence"].items()}
    trained = {t: v["by_paraphrase"].get("p0", {}) for t, v in summary["presence"].items()}
    loc = {t: v["overall"] for t, v in summary["location"].items()}
    table = pd.read_csv(study.probe_dir / "reports" / "stats" / "head_localisation.csv")
    table = table[(table["kind"] == "all") & (table["head"] >= 0)]
    acc = {
        (int(layer), int(head)): float(a)
        for layer, head, a in zip(table["layer"], table["head"], table["accuracy"], strict=True)
    }
    top = summary["head_ranking"].get("top", [])[:3]
    keep = ("precision", "recall", "f1", "n", "n_unparseable")
    return {
        "presence_all_paraphrases": {t: {k: v.get(k) for k in keep} for t, v in pres.items()},
        "presence_trained_phrasing": {t: {k: v.get(k) for k in keep} for t, v in trained.items()},
        "location": {
            t: {k: v.get(k) for k in ("accuracy", "accuracy_within_one", "n", "n_unparseable")}
            for t, v in loc.items()
        },
        "head_ranking": summary["head_ranking"].get("message", summary["head_ranking"]["status"]),
        "top_heads": [
            {
                "layer": h["layer"],
                "head": h["head"],
                "localisation": acc.get((h["layer"], h["head"])),
            }
            for h in top
        ],
        "localisation_chance": summary["localisation"].get("chance"),
        "best_localising_heads": summary["localisation"].get("best_heads", [])[:3],
    }
