"""The four judging tasks end to end against the scripted server: inputs in, seed layouts out."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers_judge import FakeOpenAIServer, Scripted, last_user_text
from vislens.data.synthetic import WorldSpec, sample_scene
from vislens.judge.cache import JudgeCache
from vislens.judge.config import JudgeConfig
from vislens.judge.openai_client import OpenAIJudge, RetryPolicy
from vislens.judge.tasks.classify import classify_descriptions, default_out_path
from vislens.judge.tasks.images import classify_images
from vislens.judge.tasks.label import (
    FEATURE_KEYS,
    LABELS_KEYS,
    FeatureEvidence,
    label_features,
    make_grid,
)
from vislens.judge.tasks.latentlens import RESULT_KEYS, full_word, judge_latentlens, patch_box


def images_in(body: dict[str, Any]) -> list[Image.Image]:
    out = []
    for m in body["messages"]:
        if isinstance(m["content"], list):
            for p in m["content"]:
                if p["type"] == "image_url":
                    b64 = p["image_url"]["url"].split(",", 1)[1]
                    out.append(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
    return out


def responder(body: dict[str, Any]) -> str:
    """Answers each task from what the request really contains (text and pixels)."""
    text = last_user_text(body)
    if "Is this feature related to" in text:
        desc = text.split('"""')[1]
        if "unanswerable" in desc:
            return "no idea, sorry for the trouble"
        return json.dumps({"label": "related" if "format" in desc else "not-related"})
    if "Candidate words:" in text:
        words = json.loads(re.search(r"Candidate words: (\[.*\])", text).group(1))  # type: ignore[union-attr]
        return json.dumps({"interpretable": True, "concrete_words": words[:1], "abstract_words": [],
                           "global_words": words[1:2], "reasoning": f"{len(images_in(body))} images"})  # fmt: skip
    if "Classify this image" in text:
        r, _g, b = np.asarray(images_in(body)[0]).reshape(-1, 3).mean(0)
        pred = "red" if r > b else "blue"
        return json.dumps({"prediction": pred, "score": 0.9, "rationale": f"mostly {pred} pixels"})
    if "SAE feature #" in text:
        feature = re.search(r"SAE feature #(\d+)", text).group(1)  # type: ignore[union-attr]
        return json.dumps({"label": f"feature {feature} shapes", "description": "d",
                           "visual_elements": ["a", "b"], "rating_rationale": "r"})  # fmt: skip
    return "{}"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder) as srv:
        yield srv


@pytest.fixture
def client(server: FakeOpenAIServer) -> OpenAIJudge:
    return OpenAIJudge("org/judge-1", base_url=server.base_url, retry=RetryPolicy(2, 0.01, 0.02))


# -- description classification (seed 002) ---------------------------------------------------


def test_classify_writes_the_seed_json(tmp_path: Path, client: OpenAIJudge) -> None:
    export = tmp_path / "12-gemmascope-res-65k__l0-21.json"
    recs = [{"modelId": "gemma-2-2b", "layer": "12-res", "index": str(i),
             "description": "markdown format" if i % 2 else "dogs", "explanationModelName": "x"}
            for i in range(6)] + [{"modelId": "gemma-2-2b", "layer": "12-res", "index": "6", "description": ""}]  # fmt: skip
    export.write_text(json.dumps(recs))
    out = default_out_path(export, "formatting", client.model)
    assert out.name == "12-gemmascope-res-65k__l0-21_formatting_classified_org_judge-1.json"
    res = classify_descriptions(
        export, "formatting", client=client, cache=JudgeCache(None), out_path=out
    )
    data = json.loads(out.read_text())
    assert [list(r) for r in data] == [["feature_id", "feature_index", "description", "label"]] * 6
    assert [r["label"] for r in data] == ["not-related", "related"] * 3
    assert [r["feature_index"] for r in data] == list(range(6))
    # seed 002's analysis parses the index back out of feature_id with r"-(\d+)$"
    assert all(
        int(re.search(r"-(\d+)$", r["feature_id"]).group(1)) == r["feature_index"] for r in data
    )  # type: ignore[union-attr]
    assert res.summary.n_skipped == 1 and res.summary.n_ok == 6
    summary = json.loads(out.with_name(out.stem + ".summary.json").read_text())
    assert summary["n_ok"] == 6 and summary["template"] == "classify_description/v1"


def test_classify_sample_is_seeded(tmp_path: Path, client: OpenAIJudge) -> None:
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"index": str(i), "description": f"d{i}"} for i in range(50)]))
    a = classify_descriptions(export, "alignment", client=client, sample=10, seed=42).records
    b = classify_descriptions(export, "alignment", client=client, sample=10, seed=42).records
    c = classify_descriptions(export, "alignment", client=client, sample=10, seed=1).records
    assert [r["feature_index"] for r in a] == [r["feature_index"] for r in b]
    assert [r["feature_index"] for r in a] != [r["feature_index"] for r in c]
    assert len(a) == 10


def test_unclassifiable_features_are_left_out_and_named(
    tmp_path: Path, client: OpenAIJudge, server: FakeOpenAIServer
) -> None:
    export = tmp_path / "e.json"
    export.write_text(
        json.dumps(
            [{"index": "1", "description": "unanswerable"}, {"index": "2", "description": "b"}]
        )
    )
    cfg = JudgeConfig(model=client.model, max_reask=2)
    res = classify_descriptions(
        export, "formatting", client=client, cfg=cfg, out_path=tmp_path / "o.json"
    )
    assert [r["feature_index"] for r in res.records] == [2]
    assert res.summary.n_parse_failures == 1 and res.summary.failures[0].item_id == "feature-1"
    assert res.summary.n_reasks == 2 and len(server.received) == 4


# -- LatentLens judge (seed 000) --------------------------------------------------------------


def test_full_word_expands_subword_tokens() -> None:
    assert full_word("autom", "a red automobile parked outside") == "automobile"
    assert full_word(" colors", "the umbrella has rainbow colors", 4) == "colors"
    assert full_word(" red", "a bored cat on a red mat", 5) == "red"
    assert full_word("xyz", "nothing here") == "xyz"
    assert full_word(" cat", None) == "cat"


def test_patch_box_is_3x3_cells_kept_inside() -> None:
    assert patch_box(5, 5, 24) == (85, 85, 149, 149)
    assert patch_box(0, 0, 24) == (0, 0, 64, 64)
    assert patch_box(23, 23, 24) == (448, 448, 512, 512)


def _instances(tmp_path: Path) -> Path:
    spec = WorldSpec()
    img, _ = sample_scene(spec, 0, 0)
    img.save(tmp_path / "img_0.png")
    inst = {
        "instance_id": "toy_0_patch12", "model": "toy", "image_idx": 0, "patch_row": 1, "patch_col": 2,
        "layer": 2, "visual_layer": 0, "image_url": "https://example.org/x/img_0.png", "caption": "shapes",
        "neighbors": [
            {"rank": 1, "token_str": " circ", "similarity": 0.2, "source_caption": "a red circle", "position": 2},
            {"rank": 2, "token_str": " red", "similarity": 0.1, "source_caption": "a red circle", "position": 1},
            {"rank": 3, "token_str": "red", "similarity": 0.1, "source_caption": "red things", "position": 0},
        ],
    }  # fmt: skip
    missing = {
        **inst,
        "instance_id": "toy_1_patch0",
        "image_idx": 1,
        "image_url": "https://example.org/x/img_1.png",
    }
    path = tmp_path / "human_study_similarities_contextual.json"
    path.write_text(
        json.dumps({"description": "d", "total_instances": 2, "instances": [inst, missing]})
    )
    return path


def test_latentlens_writes_the_llm_results_layout(
    tmp_path: Path, client: OpenAIJudge, server: FakeOpenAIServer
) -> None:
    out = tmp_path / "llm_judge_results" / "human_study_llm_results.json"
    doc, summary = judge_latentlens(
        _instances(tmp_path), client=client, image_dir=tmp_path, out_path=out
    )
    data = json.loads(out.read_text())
    assert data == doc
    assert data["total_instances"] == 2 and data["evaluated"] == 2
    ok, missing = data["results"]
    assert ok["instance_id"] == "toy_0_patch12" and ok["candidates"] == ["circle", "red"]
    assert ok["gpt_response"] == {"interpretable": True, "concrete_words": ["circle"], "abstract_words": [],
                                  "global_words": ["red"], "reasoning": "2 images"}  # fmt: skip
    assert ok["bbox"] == list(patch_box(1, 2, 24)) and ok["layer"] == 2
    assert set(ok) == {*RESULT_KEYS, "layer"}
    assert "error" in missing and "gpt_response" not in missing
    assert summary.n_ok == 1 and summary.n_errors == 1 and summary.n_items == 2
    boxed, crop = images_in(server.received[0])
    assert boxed.size == (512, 512) and crop.size == (64, 64)
    x0, y0, _x1, y1 = ok["bbox"]
    assert boxed.getpixel((x0 + 1, (y0 + y1) // 2)) == (255, 0, 0)  # the red box is drawn


# -- image classification with rationale (seed 003) -------------------------------------------


def test_images_write_mis_and_correct_csvs(tmp_path: Path, client: OpenAIJudge) -> None:
    rows = []
    for i, (colour, truth) in enumerate(
        [("red", "red"), ("blue", "blue"), ("red", "blue"), ("blue", "blue")]
    ):
        Image.new("RGB", (40, 30), colour).save(tmp_path / f"im{i}.png")
        rows.append(
            {
                "file_name": f"im{i}.png",
                "ground_truth_word_label": truth,
                "ground_truth_num_label": int(truth == "red"),
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "metadata.csv", index=False)
    res = classify_images(tmp_path / "metadata.csv", client=client, out_dir=tmp_path)
    assert res.mis_path == tmp_path / "mis_org_judge-1.csv"
    assert res.correct_path == tmp_path / "correct_org_judge-1.csv"
    mis = pd.read_csv(res.mis_path)
    correct = pd.read_csv(res.correct_path)
    assert list(mis["file_name"]) == ["im2.png"] and sorted(correct["file_name"]) == [
        "im0.png",
        "im1.png",
        "im3.png",
    ]
    assert list(mis.columns) == [
        "file_name",
        "ground_truth_word_label",
        "ground_truth_num_label",
        "predicted_label",
        "rationale",
    ]
    r = json.loads(mis["rationale"][0])
    assert r == {"prediction": "red", "score": 0.9, "rationale": "mostly red pixels"}


def test_images_prediction_outside_the_label_set_is_reasked(
    tmp_path: Path, client: OpenAIJudge, server: FakeOpenAIServer
) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    pd.DataFrame([{"file_name": "a.png", "ground_truth_word_label": "red"}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    server.script = [Scripted(text='{"prediction": "crimson", "score": 0.5, "rationale": "x"}')]
    res = classify_images(
        tmp_path / "m.csv", client=client, labels=["red", "blue"], out_dir=tmp_path
    )
    assert res.summary.n_reasks == 1 and res.n_correct == 1
    assert "crimson" in server.received[1]["messages"][-1]["content"][0]["text"]


# -- feature labelling (seed 001) -------------------------------------------------------------


def test_grid_overlays_heatmaps() -> None:
    imgs = [Image.new("RGB", (50, 50), "gray") for _ in range(5)]
    heat = np.zeros((7, 7), dtype=np.float32)
    heat[0, 0] = 1.0
    plain = make_grid(imgs)
    hot = make_grid(imgs, [heat] * 5)
    assert plain.size == hot.size == (3 * 160 + 2 * 4, 2 * 160 + 4)
    assert hot.getpixel((2, 2))[0] > plain.getpixel((2, 2))[0]  # red where the feature fires
    assert hot.getpixel((150, 150)) == plain.getpixel((150, 150))


def test_label_features_writes_labels_json(
    tmp_path: Path, client: OpenAIJudge, server: FakeOpenAIServer
) -> None:
    evs = [FeatureEvidence(feature=f, images=[Image.new("RGB", (20, 20), "red")] * 4, ms=0.61, corr=-0.3,
                           rating_dim="drawn_to", tier=1) for f in (3, 17)]  # fmt: skip
    out = tmp_path / "sae" / "s" / "labels.json"
    doc, summary = label_features(evs, client=client, out_path=out, sae="s")
    data = json.loads(out.read_text())
    assert (
        data == doc
        and tuple(data) == LABELS_KEYS
        and data["schema_version"] == 1
        and data["template"] == "label_feature/v1"
    )
    assert [f["feature"] for f in data["features"]] == [3, 17]
    assert tuple(data["features"][0]) == FEATURE_KEYS
    assert (
        data["features"][0]["label"] == "feature 3 shapes" and data["features"][0]["n_images"] == 4
    )
    prompt = last_user_text(server.received[0])
    assert "monosemanticity score 0.61" in prompt and 'correlates -0.30 with "drawn_to"' in prompt
    assert summary.n_ok == 2


# -- the agreement stage reads what the judges write ------------------------------------------


def test_outputs_feed_the_agreement_readers(tmp_path: Path, client: OpenAIJudge) -> None:
    from vislens.human.compare import compare_label_files
    from vislens.human.latentlens import read_llm_results

    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"modelId": "g", "layer": "l", "index": str(i),
                                   "description": "format" if i < 2 else "x"} for i in range(4)]))  # fmt: skip
    out = tmp_path / "model.json"
    classify_descriptions(export, "formatting", client=client, out_path=out)
    human = tmp_path / "human.json"
    human.write_text(json.dumps([{"_row_id": i, "feature_index": i, "feature_id": f"g/l-{i}", "label": lab}
                                 for i, lab in enumerate(["related", "not-related", "not-related", "not-related"])]))  # fmt: skip
    metrics, _, _ = compare_label_files(human, out, tmp_path / "metrics", n_resamples=10)
    assert metrics["samples"] == 4 and (
        metrics["tp"],
        metrics["fp"],
        metrics["tn"],
        metrics["fn"],
    ) == (1, 1, 2, 0)

    ll_out = tmp_path / "human_study_llm_results.json"
    judge_latentlens(_instances(tmp_path), client=client, image_dir=tmp_path, out_path=ll_out)
    verdicts = read_llm_results(ll_out)
    assert verdicts == {"toy_0_patch12": {"interpretable": True, "concrete_words": ["circle"],
                                          "abstract_words": [], "global_words": ["red"]}}  # fmt: skip


def test_read_labels_checks_the_schema(tmp_path: Path) -> None:
    from vislens.errors import InputError
    from vislens.judge.tasks.label import LABELS_SCHEMA_VERSION, read_labels

    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"schema_version": LABELS_SCHEMA_VERSION, "features": []}))
    assert read_labels(path)["features"] == []
    path.write_text(json.dumps({"schema_version": LABELS_SCHEMA_VERSION + 1}))
    with pytest.raises(InputError, match="upgrade vislens"):
        read_labels(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="schema_version"):
        read_labels(path)


def test_an_unreadable_image_fails_its_item_only(tmp_path: Path, client: OpenAIJudge) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rows = [{"file_name": n, "ground_truth_word_label": "red"} for n in ("broken.png", "good.png")]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    res = classify_images(
        tmp_path / "m.csv", client=client, labels=["red", "blue"], out_dir=tmp_path
    )
    assert res.n_correct == 1 and res.summary.n_errors == 1
    assert res.summary.failures[0].item_id == "broken.png"
    assert "could not build the request" in res.summary.failures[0].reason


def test_candidates_from_every_instance_layout() -> None:
    from vislens.judge.tasks.latentlens import candidate_words

    contextual = {
        "candidates": [["a red automobile parked", "autom"], ["the Red sky", " Red"], ["x", "red"]]
    }
    assert candidate_words(contextual) == ["automobile", "Red"]  # de-duplicated, case-blind
    assert candidate_words({"candidates": [" cat", "dog "]}) == ["cat", "dog"]
    ranked = {
        "neighbors": [
            {"rank": 2, "token_str": " blue"},
            {"rank": 1, "token_str": " sq", "source_caption": "a square"},
        ]
    }
    assert candidate_words(ranked) == ["square", "blue"]
