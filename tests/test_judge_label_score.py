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

import numpy as np
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


# -- fuzzing: a red box on the top patch or on a decoy patch of the same image -------------


def box_cell(body: dict[str, Any]) -> tuple[int, int]:
    """Grid cell (2×2) of the red box drawn on the shown image."""
    from vislens.judge.tasks.label_fuzz import BOX_RGB

    user = next(m for m in body["messages"] if m["role"] == "user")
    [image] = message_images(user)
    px = np.asarray(image)
    ys, xs = np.nonzero((px == BOX_RGB).all(axis=2))
    assert len(ys), "no box drawn"
    half = image.size[0] // 2
    return int(ys.min()) // half, int(xs.min()) // half


def fuzz_responder(body: dict[str, Any]) -> str:
    """Feature 0 fires on cell (0, 0) of its images. "dark red": says yes to boxes there,
    except on image 2 (0.4); image 0's decoy gets 0.5. "bright red": yes to everything."""
    user = next(m for m in body["messages"] if m["role"] == "user")
    i = int(message_images(user)[0].getpixel((56, 56))[0]) // STEP  # a cell centre: no box there
    on_top = box_cell(body) == (0, 0)
    if label_of(body) == "dark red":
        if on_top:
            return json.dumps({"matches": i != 2, "confidence": 0.4 if i == 2 else 0.9})
        return json.dumps({"matches": False, "confidence": 0.5 if i == 0 else 0.2})
    return json.dumps({"matches": True, "confidence": 0.6})


def test_fuzzing_scores_match_hand_computed_metrics(tmp_path: Path) -> None:
    from vislens.judge.tasks.label_fuzz import (
        FUZZ_JUDGEMENT_COLUMNS,
        FUZZ_JUDGEMENTS_FILE,
        FUZZ_SCORES_FILE,
    )

    study = make_study(tmp_path / "study")
    with FakeOpenAIServer(responder) as srv:
        assert invoke(study, srv).exit_code == 0
    detection = (study.sae_dir("s") / LABEL_SCORES_FILE).read_bytes()
    with FakeOpenAIServer(fuzz_responder) as srv:
        res = invoke(study, srv, "label score --scorer fuzzing")
        assert res.exit_code == 0, res.output
        assert "2 features scored by fuzzing" in res.output
        # each held-out image twice: boxed on its top patch (0, 0) and on a decoy
        seen = sorted(
            (label_of(b), shown_item_boxed(b), box_cell(b) == (0, 0)) for b in srv.received
        )
        assert seen == sorted(
            (label, i, top) for label, items in (("dark red", (0, 1, 2)), ("bright red", (4, 5, 6)))
            for i in items for top in (True, False)
        )  # fmt: skip
        n_sent = len(srv.received)
        assert n_sent == 12
    # detection's outputs are left as they were
    assert (study.sae_dir("s") / LABEL_SCORES_FILE).read_bytes() == detection
    table = pd.read_parquet(study.sae_dir("s") / FUZZ_SCORES_FILE)
    assert tuple(table.columns) == LABEL_SCORES_COLUMNS
    f0, f1 = table.set_index("feature").loc[0], table.set_index("feature").loc[1]
    # "dark red": true boxes on 0, 1 yes, on 2 no; decoys all no → TP 2, FN 1, TN 3, FP 0.
    assert (f0.tp, f0.fp, f0.tn, f0.fn) == (2, 0, 3, 1)
    assert f0.balanced_accuracy == pytest.approx((2 / 3 + 1) / 2)
    assert (f0.precision, f0.recall) == (1.0, pytest.approx(2 / 3))
    # confidences: true .9 .9 .4 against decoys .5 .2 .2 → (3 + 3 + 2) / 9
    assert f0.auc == pytest.approx(8 / 9)
    # "bright red" says yes to every box: chance.
    assert (f1.tp, f1.fp, f1.balanced_accuracy, f1.auc) == (3, 3, 0.5, 0.5)
    assert set(table["negatives"]) == {"decoy_patch"}
    judged = pd.read_parquet(study.sae_dir("s") / FUZZ_JUDGEMENTS_FILE)
    assert tuple(judged.columns) == FUZZ_JUDGEMENT_COLUMNS and len(judged) == 12
    top = judged[judged["activating"]]
    decoys = judged[~judged["activating"]]
    assert (
        (top["patch_row"] == 0).all() and (top["patch_col"] == 0).all() and (top["value"] > 0).all()
    )
    assert ((decoys["patch_row"] + decoys["patch_col"]) > 0).all() and (decoys["value"] == 0).all()
    meta = pq.read_schema(study.sae_dir("s") / FUZZ_SCORES_FILE).metadata
    assert meta[b"vislens.task"] == b"label_fuzz" and meta[b"vislens.template"] == b"label_fuzz/v1"
    # a re-run is served from the cache
    with FakeOpenAIServer(fuzz_responder) as srv:
        res = invoke(study, srv, "label-score --scorer fuzzing")
        assert res.exit_code == 0 and srv.received == [] and "12 from cache" in res.output


def shown_item_boxed(body: dict[str, Any]) -> int:
    user = next(m for m in body["messages"] if m["role"] == "user")
    return int(message_images(user)[0].getpixel((56, 56))[0]) // STEP


def test_fuzzing_needs_patch_codes(tmp_path: Path) -> None:
    import shutil

    study = make_study(tmp_path / "study")
    res = CliRunner().invoke(
        app, ["label-score", str(study.root), "--sae", "s", "--scorer", "fuzz", "--model", "m"]
    )
    assert isinstance(res.exception, InputError) and "detection or fuzzing" in str(res.exception)
    codes_dir = study.sae_dir("s") / "codes"
    manifest = json.loads((codes_dir / "manifest.json").read_text())
    (codes_dir / "manifest.json").write_text(json.dumps(manifest | {"grid_h": 1, "grid_w": 1, "tokens": "mean", "n_tokens": 1}))  # fmt: skip
    res = CliRunner().invoke(
        app, ["label-score", str(study.root), "--sae", "s", "--scorer", "fuzzing", "--model", "m"]
    )
    assert isinstance(res.exception, InputError)
    assert "'mean'" in str(res.exception) and "--tokens all" in str(res.exception)
    shutil.rmtree(codes_dir)
    res = CliRunner().invoke(
        app, ["label-score", str(study.root), "--sae", "s", "--scorer", "fuzzing", "--model", "m"]
    )
    assert isinstance(res.exception, InputError) and "vislens sae encode" in str(res.exception)
    assert not (study.sae_dir("s") / "label_scores_fuzzing.parquet").exists()


def test_fuzzing_format_doc_names_the_written_fields() -> None:
    from vislens.judge.tasks.label_fuzz import FUZZ_JUDGEMENT_COLUMNS

    assert _doc_names("`label_judgements_fuzzing.parquet`") == list(FUZZ_JUDGEMENT_COLUMNS)


# -- the toy world: a judge that answers by ground truth ---------------------------------


def toy_study(root: Path) -> tuple[Study, Any]:
    """A grid world of 16 images whose SAE has a red-cell feature (0) and a circle-cell
    feature (1), each labelled from its 2 strongest images."""
    from vislens.data.setup import init_study
    from vislens.data.synthetic import generate_grid_world
    from vislens.sae.groundtruth import read_cell_labels

    generate_grid_world(root / "w", 16, seed=1, show_progress=False)
    study = init_study(root / "s", images=str(root / "w"))
    ids = pd.read_parquet(study.images_path)["item_id"].astype(str).tolist()
    cells = read_cell_labels(study.images_path, ids)
    n, c = cells.color_nc.shape
    codes = np.zeros((n, c, 2), np.float32)
    codes[..., 0] = cells.mask("red") * (1.0 + 0.01 * np.arange(c))
    codes[..., 1] = cells.mask("circle") * (2.0 + 0.01 * np.arange(c))
    grid = math.isqrt(c)
    info = CodesInfo(d_sae=2, n_tokens=c, tokens="patches", has_cls=False, n_prefix_tokens=0,
                     grid_h=grid, grid_w=grid, n_items=n, shard_size=n, sae="s")  # fmt: skip
    codes_dir = study.sae_dir("s") / "codes"
    CodesWriter(codes_dir, info, ids).write_shard(
        0, torch.arange(n), dense_to_csr(torch.from_numpy(codes.reshape(n * c, 2)))
    )
    write_top_items(
        top_items(CodesStore.open(codes_dir), k=7, reduce="max"), study.sae_dir("s") / TOPK_FILE,
        k=7, reduce="max",
    )  # fmt: skip
    feats = [{"feature": 0, "label": "red shapes", "description": "", "n_images": 2},
             {"feature": 1, "label": "circles", "description": "", "n_images": 2}]  # fmt: skip
    doc = {"schema_version": 1, "task": "label_feature", "template": "label_feature/v1",
           "model": "m", "sae": "s", "features": feats, "failures": []}  # fmt: skip
    (study.sae_dir("s") / "labels.json").write_text(json.dumps(doc))
    return study, cells


def ground_truth_judge(study: Study, cells: Any) -> Any:
    """A responder that finds the shown image among the study's images (ignoring a box),
    reads the concepts there — the whole image, or the boxed cell — from the world's
    ground truth, and says yes when the label names one of them."""
    from vislens.data.sources import load_image
    from vislens.data.synthetic import COLORS, SHAPES
    from vislens.data.table import read_records
    from vislens.judge.tasks.label_score import TILE, label_concepts

    recs = read_records(study.images_path)
    tiles = np.stack([np.asarray(load_image(r).convert("RGB").resize((TILE, TILE))) for r in recs])
    grid = math.isqrt(cells.color_nc.shape[1])

    colors = list(COLORS)  # name → RGB

    def concepts(item: int, cell: int | None) -> set[str]:
        which = range(cells.color_nc.shape[1]) if cell is None else [cell]
        return {colors[cells.color_nc[item, k]] for k in which if cells.color_nc[item, k] >= 0} | {
            SHAPES[cells.shape_nc[item, k]] for k in which if cells.shape_nc[item, k] >= 0
        }

    def respond(body: dict[str, Any]) -> str:
        user = next(m for m in body["messages"] if m["role"] == "user")
        px = np.asarray(message_images(user)[0].convert("RGB"))
        diff = (tiles != px).any(axis=3)  # [items, h, w]
        item = int(diff.sum(axis=(1, 2)).argmin())
        cell = None
        if "red box" in last_user_text(body):
            ys, xs = np.nonzero(diff[item])
            step = TILE / grid  # the box's corner is at round(cell * step)
            cell = int(ys.min() / step + 0.5) * grid + int(xs.min() / step + 0.5)
        named = set(label_concepts(label_of(body))) & concepts(item, cell)
        return json.dumps({"matches": bool(named), "confidence": 0.9 if named else 0.1})

    return respond


@pytest.mark.parametrize("scorer", ["detection", "fuzzing"])
def test_toy_world_right_label_outscores_wrong(tmp_path: Path, scorer: str) -> None:
    """With a judge that answers from the world's ground truth, "red shapes" scores higher
    than "blue shapes" on the red feature and "circles" higher than "squares" on the
    circle feature — and the ground-truth check agrees about which label names the concept."""
    import dataclasses

    from vislens.judge.openai_client import OpenAIJudge
    from vislens.judge.tasks.label_fuzz import score_labels_fuzzing, select_boxed_probes
    from vislens.judge.tasks.label_score import groundtruth_label_check, score_labels, select_probes

    study, cells = toy_study(tmp_path)
    if scorer == "fuzzing":
        probes = select_boxed_probes(study, "s", n_positive=4)
        run = score_labels_fuzzing
    else:
        probes = select_probes(study, "s", n_positive=4, n_negative=4)
        run = score_labels  # type: ignore[assignment]
    wrong = {0: "blue shapes", 1: "squares"}
    with FakeOpenAIServer(ground_truth_judge(study, cells)) as srv:
        client = OpenAIJudge("m", base_url=srv.base_url)
        right_t, _, _ = run(study, "s", client=client, probes=probes, write=False)
        wrong_probes = [dataclasses.replace(fp, label=wrong[fp.feature]) for fp in probes]
        wrong_t, _, _ = run(study, "s", client=client, probes=wrong_probes, write=False)
    right_t, wrong_t = right_t.set_index("feature"), wrong_t.set_index("feature")
    assert (right_t["n_positive"] == 4).all() and (right_t["n_negative"] == 4).all()
    assert (right_t["balanced_accuracy"] == 1.0).all() and (right_t["auc"] == 1.0).all()
    assert (right_t["balanced_accuracy"] > wrong_t["balanced_accuracy"] + 0.2).all()
    assert (right_t["auc"] > wrong_t["auc"]).all()

    codes = np.zeros((*cells.color_nc.shape, 2))
    codes[..., 0], codes[..., 1] = cells.mask("red"), cells.mask("circle")
    check = groundtruth_label_check(codes, cells, {0: "red shapes", 1: "circles"})
    assert check["named"].all()
    assert not groundtruth_label_check(codes, cells, wrong)["named"].any()
