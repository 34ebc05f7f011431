"""`vislens label-score STUDY --sae NAME` against the scripted OpenAI-compatible server: the
judge's yes/no answers and confidences give per-feature balanced accuracy, precision,
recall and AUC that are worked out by hand below, and a re-run is served from the cache."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from helpers_judge import FakeOpenAIServer, last_user_text
from vislens.cli import app
from vislens.data.sources import FolderSource
from vislens.data.table import build_image_table, write_image_table
from vislens.errors import InputError
from vislens.judge.messages import message_images
from vislens.judge.tasks.label_score import (
    JUDGEMENT_COLUMNS,
    LABEL_SCORES_COLUMNS,
    LABEL_SCORES_FILE,
    feature_metrics,
    with_label_scores,
)
from vislens.sae.top_items import TOPK_FILE, top_items, write_top_items
from vislens.store.codes import CodesInfo, CodesStore, CodesWriter, dense_to_csr
from vislens.study import Study

N_ITEMS, STEP = 8, 30  # image i is a flat (30·i, 0, 0) square


def make_study(root: Path) -> Study:
    """Feature 0 fires on images 0-3, feature 1 on images 4-7 (more on later images); each
    was labelled from its single strongest image (3 and 7), which must not be judged."""
    study = Study.init(root)
    img_dir = root / "images"
    img_dir.mkdir()
    for i in range(N_ITEMS):
        Image.new("RGB", (32, 32), (STEP * i, 0, 0)).save(img_dir / f"im{i}.png")
    write_image_table(build_image_table(FolderSource(img_dir)), study.images_path)
    codes_rf = torch.zeros(N_ITEMS * 4, 2)
    for i in range(N_ITEMS):
        codes_rf[i * 4, i // 4] = 1.0 + i
    info = CodesInfo(d_sae=2, n_tokens=4, tokens="patches", has_cls=False, n_prefix_tokens=0,
                     grid_h=2, grid_w=2, n_items=N_ITEMS, shard_size=N_ITEMS, sae="s")  # fmt: skip
    codes_dir = study.sae_dir("s") / "codes"
    ids = [f"im{i}.png" for i in range(N_ITEMS)]
    CodesWriter(codes_dir, info, ids).write_shard(0, torch.arange(N_ITEMS), dense_to_csr(codes_rf))
    codes = CodesStore.open(codes_dir)
    write_top_items(
        top_items(codes, k=4, reduce="max"), study.sae_dir("s") / TOPK_FILE, k=4, reduce="max"
    )
    feats = [
        {"feature": 0, "label": "dark red", "description": "", "n_images": 1},
        {"feature": 1, "label": "bright red", "description": "", "n_images": 1},
    ]
    doc = {"schema_version": 1, "task": "label_feature", "template": "label_feature/v1",
           "model": "m", "sae": "s", "features": feats, "failures": []}  # fmt: skip
    (study.sae_dir("s") / "labels.json").write_text(json.dumps(doc))
    return study


# The scripted judge, per label: which images it calls a match, and its confidence.
DARK_CONF = {0: 0.9, 1: 0.8, 2: 0.4, 4: 0.6, 5: 0.3, 6: 0.2, 7: 0.1}


def shown_item(body: dict[str, Any]) -> int:
    user = next(m for m in body["messages"] if m["role"] == "user")
    [image] = message_images(user)
    return int(image.getpixel((0, 0))[0]) // STEP


def label_of(body: dict[str, Any]) -> str:
    m = re.search(r'this label: "([^"]+)"', last_user_text(body))
    assert m is not None
    return m.group(1)


def responder(body: dict[str, Any]) -> str:
    i = shown_item(body)
    if label_of(body) == "dark red":
        return json.dumps({"matches": i <= 4, "confidence": DARK_CONF[i]})
    return json.dumps({"matches": i >= 6, "confidence": i / 10})


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder) as srv:
        yield srv


def invoke(study: Study, server: FakeOpenAIServer, command: str = "label-score") -> Any:
    return CliRunner().invoke(
        app,
        [*command.split(), str(study.root), "--sae", "s", "--n-negative", "4",
         "--model", "m", "--base-url", server.base_url],
    )  # fmt: skip


def test_scores_match_hand_computed_metrics(tmp_path: Path, server: FakeOpenAIServer) -> None:
    study = make_study(tmp_path / "study")
    res = invoke(study, server)
    assert res.exit_code == 0, res.output
    # Held out: the image each label was written from is never shown with that label.
    seen = {(label_of(b), shown_item(b)) for b in server.received}
    assert seen == {("dark red", i) for i in (0, 1, 2, 4, 5, 6, 7)} | {
        ("bright red", i) for i in (0, 1, 2, 3, 4, 5, 6)
    }
    n_sent = len(server.received)
    assert n_sent == 14
    table = pd.read_parquet(study.sae_dir("s") / LABEL_SCORES_FILE)
    assert tuple(table.columns) == LABEL_SCORES_COLUMNS
    f0, f1 = table.set_index("feature").loc[0], table.set_index("feature").loc[1]
    # "dark red": positives 0,1,2 all yes; negatives 4 yes, 5,6,7 no → TP 3, FP 1, TN 3, FN 0.
    assert (f0.tp, f0.fp, f0.tn, f0.fn) == (3, 1, 3, 0)
    assert f0.balanced_accuracy == pytest.approx((1 + 3 / 4) / 2)  # 0.875
    assert (f0.precision, f0.recall) == (pytest.approx(0.75), 1.0)
    # Confidence ranks: .9 and .8 beat all four negatives, .4 beats three of them → 11/12.
    assert f0.auc == pytest.approx(11 / 12)
    # "bright red": positives 4,5,6 → only 6 yes; negatives 0-3 all no → TP 1, FN 2, TN 4.
    assert (f1.tp, f1.fp, f1.tn, f1.fn) == (1, 0, 4, 2)
    assert f1.balanced_accuracy == pytest.approx((1 / 3 + 1) / 2)
    assert (f1.precision, f1.recall, f1.auc) == (1.0, pytest.approx(1 / 3), 1.0)
    assert set(table["negatives"]) == {"codes"} and (table["n_failed"] == 0).all()
    judged = pd.read_parquet(study.sae_dir("s") / "label_judgements.parquet")
    assert tuple(judged.columns) == JUDGEMENT_COLUMNS and len(judged) == 14
    assert study.judge_cache_path.is_file()
    meta = pq.read_schema(study.sae_dir("s") / LABEL_SCORES_FILE).metadata
    assert (
        meta[b"vislens.task"] == b"label_score" and meta[b"vislens.template"] == b"label_score/v1"
    )

    # A re-run (through the `label score` spelling) asks nothing new and writes the same scores.
    res = invoke(study, server, "label score")
    assert res.exit_code == 0, res.output
    assert len(server.received) == n_sent and "0 requests sent, 14 from cache" in res.output
    pd.testing.assert_frame_equal(pd.read_parquet(study.sae_dir("s") / LABEL_SCORES_FILE), table)


def test_metrics_agree_with_sklearn_and_handle_one_class() -> None:
    from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score

    y = [True, True, False, False, False, True]
    p = [True, False, False, True, False, True]
    c = [0.9, 0.3, 0.2, 0.7, 0.1, 0.8]
    m = feature_metrics(y, p, c)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["precision"] == pytest.approx(precision_score(y, p))
    assert m["recall"] == pytest.approx(recall_score(y, p))
    only_pos = feature_metrics([True, True], [True, False], [0.9, 0.2])
    assert math.isnan(only_pos["auc"]) and math.isnan(only_pos["balanced_accuracy"])
    assert only_pos["recall"] == 0.5


def test_with_label_scores_puts_them_beside_ms() -> None:
    scores = pd.DataFrame({"feature": [0, 1, 2], "ms": [0.5, 0.6, 0.7]})
    ls = pd.DataFrame({"feature": [1], "label": ["x"], "balanced_accuracy": [0.8], "auc": [0.9]})
    out = with_label_scores(scores, ls)
    assert list(out["label_auc"].isna()) == [True, False, True]
    assert out.loc[1, "label_balanced_accuracy"] == 0.8 and out.loc[1, "ms"] == 0.6


def test_without_labels_is_one_clear_error(tmp_path: Path) -> None:
    study = Study.init(tmp_path / "empty")
    res = CliRunner().invoke(app, ["label-score", str(study.root), "--sae", "s", "--model", "m"])
    assert isinstance(res.exception, InputError)  # the CLI's entry point prints it as one line
    assert "labels.json" in str(res.exception) and "vislens label STUDY" in str(res.exception)


def _doc_names(heading: str) -> list[str]:
    doc = Path(__file__).resolve().parents[1] / "docs" / "formats" / "judge-label-scores.md"
    section = doc.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_format_doc_names_the_written_fields() -> None:
    from vislens.judge.tasks.label_score import Detection

    assert _doc_names("`label_scores.parquet`") == list(LABEL_SCORES_COLUMNS)
    assert _doc_names("`label_judgements.parquet`") == list(JUDGEMENT_COLUMNS)
    assert _doc_names("Answer") == list(Detection.model_fields)


def test_failed_answers_and_no_code_store(tmp_path: Path) -> None:
    """Without a code store, images outside the top-k are the negatives; an answer that never
    parses is counted in n_failed and left out of the metrics."""
    import shutil

    study = make_study(tmp_path / "study")
    shutil.rmtree(study.sae_dir("s") / "codes")

    def garbled(body: dict[str, Any]) -> str:
        if label_of(body) == "dark red" and shown_item(body) == 0:
            return "no idea"  # and again when re-asked
        return responder(body)

    with FakeOpenAIServer(garbled) as srv:
        res = CliRunner().invoke(
            app,
            ["label-score", str(study.root), "--sae", "s", "--features", "0",
             "--n-negative", "4", "--model", "m", "--base-url", srv.base_url],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    row = pd.read_parquet(study.sae_dir("s") / LABEL_SCORES_FILE).iloc[0]
    assert (row.feature, row.negatives, row.n_failed) == (0, "not_in_topk", 1)
    assert (row.tp, row.fp, row.tn, row.fn) == (2, 1, 3, 0)
    assert row.auc == pytest.approx(7 / 8)  # .8 beats all four negatives, .4 beats three
    judged = pd.read_parquet(study.sae_dir("s") / "label_judgements.parquet")
    bad = judged[judged["status"] != "ok"]
    assert list(bad["item_id"]) == ["im0.png"] and bad["matches"].isna().all()


def test_unlabelled_feature_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    res = CliRunner().invoke(
        app, ["label-score", str(study.root), "--sae", "s", "--features", "0,5", "--model", "m"]
    )
    assert isinstance(res.exception, InputError) and "feature(s) 5" in str(res.exception)
    assert not (study.sae_dir("s") / LABEL_SCORES_FILE).exists()


def test_groundtruth_check_names_the_right_concept() -> None:
    """Feature 0 fires on red cells, feature 1 on circles: "red blobs" names feature 0's
    concept, "blue circles" names feature 1's (circle); "blue things" names neither."""
    import numpy as np

    from vislens.judge.tasks.label_score import groundtruth_label_check, label_concepts
    from vislens.sae.groundtruth import CellLabels

    red, blue, circle, square = 0, 2, 0, 1  # indices in COLORS / SHAPES
    color = np.array([[red, blue, red, -1], [blue, red, -1, blue]])
    shape = np.array([[circle, circle, square, -1], [square, square, -1, circle]])
    labels = CellLabels(color, shape)
    codes = np.zeros((2, 4, 2))
    codes[..., 0] = (color == red) * 2.0
    codes[..., 1] = (shape == circle) * 1.0
    out = groundtruth_label_check(codes, labels, {0: "Red blobs", 1: "blue circles"})
    assert list(out["best_concept"]) == ["red", "circle"]
    assert list(out["best_auroc"]) == [1.0, 1.0] and list(out["named"]) == [True, True]
    assert list(out["label_concepts"][1]) == ["blue", "circle"]
    wrong = groundtruth_label_check(codes, labels, {0: "blue things", 1: "squares"})
    assert not wrong["named"].any()
    assert label_concepts("a cross, not crosses-like crossing") == ["cross"]
