"""Rates: ground-truth scoring against a slow reference, the human-majority rule (ties at
0.5 count), judge verdicts, bootstrap CIs; the sample from a synthetic table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vislens.lens.neighbors import COLUMN_DTYPES, NEIGHBOR_COLUMNS
from vislens.lens.rates import (
    BACKGROUND_WORDS,
    bootstrap_ci,
    ground_truth_hits,
    interpretability_rates,
)
from vislens.lens.sample import sample_instances, sample_patches

WORDS = ["red", "blue", "circle", "square", "row", "empty", "3", "grid"]


def random_table(
    rng: np.random.Generator, n_img: int = 3, side: int = 4, k: int = 3
) -> pd.DataFrame:
    rows = []
    for method in ("latentlens", "logitlens"):
        for img in range(n_img):
            for vl in (0, 2):
                for p in range(side * side):
                    for rank in range(1, k + 1):
                        w = str(rng.choice(WORDS))
                        rows.append(
                            {
                                "method": method,
                                "item_id": f"i{img}",
                                "image_idx": img,
                                "visual_layer": vl,
                                "patch_idx": p,
                                "patch_row": p // side,
                                "patch_col": p % side,
                                "rank": rank,
                                "token_str": f" {w}",
                                "token_id": WORDS.index(w),
                                "score": 1.0 / rank,
                                "contextual_layer": 1 if method == "latentlens" else -1,
                                "caption": f"a {w} thing" if method == "latentlens" else "",
                                "position": 2 if method == "latentlens" else -1,
                            }
                        )
    return pd.DataFrame(rows, columns=list(NEIGHBOR_COLUMNS)).astype(COLUMN_DTYPES)


def random_images(rng: np.random.Generator, n_img: int = 3, grid: int = 4) -> pd.DataFrame:
    recs = []
    for i in range(n_img):
        objs = []
        for r in range(grid):
            for c in range(grid):
                if rng.random() < 0.4:
                    objs.append(
                        {
                            "shape": str(rng.choice(["circle", "square"])),
                            "color": str(rng.choice(["red", "blue"])),
                            "r": r,
                            "c": c,
                        }
                    )
        recs.append(
            {
                "item_id": f"i{i}",
                "source": f"/nowhere/{i}.png",
                "grid": grid,
                "objects": json.dumps(objs),
                "caption": "",
            }
        )
    return pd.DataFrame(recs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ground_truth_hits_equal_a_slow_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table, images = random_table(rng), random_images(rng)
    got = ground_truth_hits(table, images).set_index(
        ["method", "visual_layer", "contextual_layer", "image_idx", "patch_idx"]
    )
    control = slow_control(table, images)
    n = 0
    for key, g in table.groupby(
        ["method", "visual_layer", "contextual_layer", "image_idx", "patch_idx"]
    ):
        objs = {(o["r"], o["c"]): o for o in json.loads(images.loc[key[3], "objects"])}
        o = objs.get((int(g["patch_row"].iloc[0]), int(g["patch_col"].iloc[0])))
        words = {t.strip() for t in g["token_str"]}
        first = {t.strip() for t in g.loc[g["rank"] == 1, "token_str"]}
        want = (o["shape"] in words or o["color"] in words) if o else bool(words & BACKGROUND_WORDS)
        want1 = (
            (o["shape"] in first or o["color"] in first) if o else bool(first & BACKGROUND_WORDS)
        )
        assert bool(got.loc[key, "hit"]) == want
        assert bool(got.loc[key, "hit_top1"]) == want1
        assert bool(got.loc[key, "object"]) == (o is not None)
        c = control.get(key)
        assert bool(got.loc[key, "control"]) == (c is not None and bool({*c} & words))
        n += 1
    assert n == len(got)


def slow_control(
    table: pd.DataFrame, images: pd.DataFrame, seed: int = 0
) -> dict[tuple, tuple[str, str]]:
    """The control's pairing, spelled out: per method x visual layer x contextual layer, the
    object patches in (image, patch) order; a seeded permutation ``p``; patch ``p[i]`` gets the
    shape and colour of patch ``p[i + 1]`` (cyclically)."""
    out = {}
    for (m, vl, cl), g in table.groupby(["method", "visual_layer", "contextual_layer"]):
        objs = []
        for (img, patch), h in g.groupby(["image_idx", "patch_idx"]):
            cells = {(o["r"], o["c"]): o for o in json.loads(images.loc[img, "objects"])}
            o = cells.get((int(h["patch_row"].iloc[0]), int(h["patch_col"].iloc[0])))
            if o:
                objs.append(((m, vl, cl, img, patch), (o["shape"], o["color"])))
        p = np.random.default_rng(seed).permutation(len(objs))
        for i in range(len(objs)):
            out[objs[p[i]][0]] = objs[p[(i + 1) % len(objs)]][1]
    return out


def test_the_control_pairs_each_object_with_another_and_a_blind_lens_scores_its_control() -> None:
    rng = np.random.default_rng(5)
    table, images = random_table(rng, k=5), random_images(rng)
    control = slow_control(table, images)
    # a blind lens listing the five shape words names every object, and its control as often
    table["token_str"] = np.resize(
        [" circle", " square", " triangle", " diamond", " cross"], len(table)
    )
    hits = ground_truth_hits(table, images)
    objs = hits[hits["object"]]
    assert objs["hit"].all() and objs["control"].all()
    # a lens that always says "red" names exactly the red objects, and red controls
    table["token_str"] = " red"
    hits = ground_truth_hits(table, images).set_index(
        ["method", "visual_layer", "contextual_layer", "image_idx", "patch_idx"]
    )
    for key, (_, color) in control.items():
        assert bool(hits.loc[key, "control"]) == (color == "red")
    # ... and its control differs from its rate: patches are scored against other patches
    objs = hits[hits["object"]]
    assert (objs["control"] != objs["hit"]).any()


def test_cells_map_onto_a_coarser_token_grid() -> None:
    table = random_table(np.random.default_rng(0), n_img=1, side=2, k=1)
    table["token_str"] = " red"
    images = pd.DataFrame(
        [{"grid": 4, "objects": json.dumps([{"shape": "circle", "color": "red", "r": 3, "c": 2}])}]
    )
    hits = ground_truth_hits(table, images)
    # token (1, 1) of a 2x2 grid covers cell (2, 2) of the 4x4 world: empty; so no patch hits
    assert not hits["object"].any()
    images = pd.DataFrame(
        [{"grid": 4, "objects": json.dumps([{"shape": "circle", "color": "red", "r": 2, "c": 2}])}]
    )
    hits = ground_truth_hits(table, images)
    assert hits.loc[hits["object"], "patch_idx"].unique().tolist() == [3]
    assert hits.loc[hits["object"], "hit"].all()


def test_bootstrap_ci() -> None:
    assert bootstrap_ci(np.ones(10)) == (1.0, 1.0)
    lo, hi = bootstrap_ci(np.array([0, 1] * 50, dtype=float), n_resamples=500)
    assert lo < 0.5 < hi and hi - lo < 0.3


def _sample(tmp_path: Path) -> tuple[pd.DataFrame, dict[str, Path]]:
    rng = np.random.default_rng(0)
    table = random_table(rng)
    imgs = [{"source": "", "caption": ""} for _ in range(3)]
    files = sample_instances(
        table, tmp_path, model="m", images=imgs, grid_rows=4, n_images=2, n_patches=3, seed=1
    )
    return table, files


def test_sample_is_seeded_and_sized(tmp_path: Path) -> None:
    table = random_table(np.random.default_rng(0))
    a = sample_patches(table, n_images=2, n_patches=3, seed=1)
    assert a.equals(sample_patches(table, n_images=2, n_patches=3, seed=1))
    assert len(a) == 6 and a.groupby("image_idx").size().tolist() == [3, 3]
    assert not a.equals(sample_patches(table, n_images=2, n_patches=3, seed=2))
    assert len(sample_patches(table, n_images=60, n_patches=6)) == 3 * 6


def test_rates_from_judge_and_human_majority(tmp_path: Path) -> None:
    _, files = _sample(tmp_path)
    d = files["latentlens_visual2"].parent
    insts = json.loads(files["latentlens_visual2"].read_text())["instances"]
    ids = [i["instance_id"] for i in insts]
    verdicts = [True, False, True, True, False, False]
    (d / "llm_judge_results").mkdir()
    (d / "llm_judge_results" / "human_study_llm_results.json").write_text(
        json.dumps(
            {
                "results": [
                    {"instance_id": i, "gpt_response": {"interpretable": v}}
                    for i, v in zip(ids, verdicts, strict=True)
                ]
            }
        )
    )
    judge = interpretability_rates(tmp_path / "sample", source="judge", n_resamples=200)
    assert judge[["method", "visual_layer", "n", "n_interpretable"]].values.tolist() == [
        ["latentlens", 2, 6, 3]
    ]
    # Two annotators: they agree on items 0-1, split 1-1 on items 2-5 -> a tie counts at 0.5.
    word = insts[0]["neighbors"][0]["token_str"]
    for user, picks in (("a", [1, 0, 1, 1, 0, 0]), ("b", [1, 0, 0, 0, 1, 1])):
        res = [
            {"instanceId": i, "selectedWords": [{"word": inst["neighbors"][0]["token_str"], "relation": "concrete"}] if p else [],
             "noneSelected": not p, "timestamp": "t"}
            for i, inst, p in zip(ids, insts, picks, strict=True)
        ]  # fmt: skip
        (d / f"evaluation_{user}_s.json").write_text(
            json.dumps({"userId": user, "sessionId": "s", "timestamp": "t", "results": res})
        )
    assert word
    human = interpretability_rates(
        tmp_path / "sample", source="human", threshold=0.5, n_resamples=200
    )
    assert human["n_interpretable"].tolist() == [5]
    strict = interpretability_rates(
        tmp_path / "sample", source="human", threshold=0.75, n_resamples=200
    )
    assert strict["n_interpretable"].tolist() == [1]
