"""`vislens sae export --format neuronpedia` on a hand-built study: every file read back,
keys as documented, batch boundaries as Neuronpedia's, values equal to the code store,
scores and labels carried over; bad input is one error and leaves nothing behind."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from vislens.cli import app
from vislens.data.sources import FolderSource
from vislens.data.table import build_image_table, write_image_table
from vislens.errors import InputError
from vislens.sae import export_neuronpedia as npx
from vislens.sae.top_items import TOPK_FILE, top_items, write_top_items
from vislens.store.codes import CodesInfo, CodesStore, CodesWriter, dense_to_csr
from vislens.study import Study

N_ITEMS, D_SAE, GRID, K = 7, 5, 2, 3
N_TOKENS = 1 + GRID * GRID  # CLS, then a 2×2 patch grid
DEAD = (2, 3)
LABELLED = (0, 1, 4)


def dense_codes() -> np.ndarray:
    """``[items, tokens, features]``: features 2 and 3 never fire; CLS values stay below
    the patches' so maxValue is always a patch."""
    rng = np.random.default_rng(3)
    c = (rng.random((N_ITEMS, N_TOKENS, D_SAE)) < 0.5) * rng.uniform(
        0.5, 3.0, (N_ITEMS, N_TOKENS, D_SAE)
    )
    c[:, :, list(DEAD)] = 0.0
    c[:, 0, :] *= 0.1
    c[:, 1:, :] += 0.01 * (c[:, 1:, :] > 0)  # no ties with CLS
    return c.astype(np.float32)


def make_study(root: Path, *, labels: bool = True, topk: bool = True) -> Study:
    study = Study.init(root)
    study.config.model.name_or_path = "org/Tiny CLIP_v2"
    study.save()
    img_dir = root / "images"
    img_dir.mkdir()
    for i in range(N_ITEMS):
        Image.new("RGB", (8, 8), (30 * i, 10, 0)).save(img_dir / f"im{i}.png")
    write_image_table(build_image_table(FolderSource(img_dir)), study.images_path)
    info = CodesInfo(d_sae=D_SAE, n_tokens=N_TOKENS, tokens="all", has_cls=True, n_prefix_tokens=1,
                     grid_h=GRID, grid_w=GRID, n_items=N_ITEMS, shard_size=4, layer=8, sae="s")  # fmt: skip
    codes_dir = study.sae_dir("s") / "codes"
    ids = [f"im{i}.png" for i in range(N_ITEMS)]
    writer = CodesWriter(codes_dir, info, ids)
    dense = torch.from_numpy(dense_codes())
    for shard, items in enumerate((range(0, 4), range(4, N_ITEMS))):
        idx = torch.tensor(list(items))
        writer.write_shard(shard, idx, dense_to_csr(dense[idx].reshape(-1, D_SAE)))
    if topk:
        codes = CodesStore.open(codes_dir)
        write_top_items(
            top_items(codes, k=K, reduce="max"), study.sae_dir("s") / TOPK_FILE, k=K, reduce="max"
        )
    pd.DataFrame({"feature": np.arange(D_SAE, dtype=np.int32), "n_active": [5, 6, 0, 0, 4],
                  "status": ["ok", "ok", "dead", "dead", "ok"], "ms": [0.5, 0.25, math.nan, math.nan, 0.75],
                  "ms_topn": [0.1, 0.2, math.nan, math.nan, 0.3],
                  "tier": np.array([1, 2, 0, 0, 3], dtype=np.int8)}).to_parquet(study.sae_dir("s") / "scores.parquet")  # fmt: skip
    if labels:
        feats = [{"feature": f, "label": f"label {f}", "description": f"longer {f}", "n_images": 1}
                 for f in reversed(LABELLED)]  # fmt: skip
        doc = {"schema_version": 1, "task": "label_feature", "template": "label_feature/v1",
               "model": "judge-m", "sae": "s", "features": feats, "failures": []}  # fmt: skip
        (study.sae_dir("s") / "labels.json").write_text(json.dumps(doc))
        pd.DataFrame({"feature": np.array([0, 4], dtype=np.int32), "balanced_accuracy": [0.875, math.nan],
                      "auc": [0.9, 0.6]}).to_parquet(study.sae_dir("s") / "label_scores.parquet")  # fmt: skip
    return study


def read(path: Path) -> list[dict[str, Any]]:
    return [rec for _, recs in npx.read_batches(path) for rec in recs]


def test_export_reads_back_as_documented(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["sae", "export", str(study.root), "--sae", "s", "--format", "neuronpedia",
              "--out", str(out), "--batch-size", "2", "--creator-id", "u1"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    src = out / "tiny-clip-v2" / "8-s"
    assert "wrote 5 features, 9 top images and 3 explanations" in res.output
    assert sorted(p.name for p in (out / "tiny-clip-v2").iterdir()) == ["8-s"]  # no partial left
    manifest = json.loads((src / npx.MANIFEST_FILE).read_text())
    assert tuple(manifest) == npx.MANIFEST_KEYS
    # Batches: features and activations by feature range [2N, 2N+2); batch 1 (features 2, 3)
    # has no top images, so no activations file; explanations two per file.
    assert manifest["files"] == {
        "features": ["features/batch-0.jsonl.gz", "features/batch-1.jsonl.gz", "features/batch-2.jsonl.gz"],
        "activations": ["activations/batch-0.jsonl.gz", "activations/batch-2.jsonl.gz"],
        "explanations": ["explanations/batch-0.jsonl.gz", "explanations/batch-1.jsonl.gz"],
    }  # fmt: skip
    on_disk = sorted(str(p.relative_to(src)) for p in src.rglob("*.gz"))
    assert on_disk == sorted(f for files in manifest["files"].values() for f in files)
    assert manifest["token_names"] == ["<cls>", "r0c0", "r0c1", "r1c0", "r1c1"]

    for fname, keys in (("model.jsonl", npx.MODEL_KEYS), ("sourceset.jsonl", npx.SOURCESET_KEYS),
                        ("source.jsonl", npx.SOURCE_KEYS)):  # fmt: skip
        [rec] = [json.loads(line) for line in (src / fname).read_text().splitlines()]
        assert tuple(rec) == keys
    source = json.loads((src / "source.jsonl").read_text())
    assert (source["id"], source["modelId"], source["setName"], source["num_prompts"]) == (
        "8-s",
        "tiny-clip-v2",
        "s",
        N_ITEMS,
    )

    batches = dict(npx.read_batches(src / "features"))
    assert {n: [r["index"] for r in recs] for n, recs in batches.items()} == {
        0: ["0", "1"],
        1: ["2", "3"],
        2: ["4"],
    }
    dense = dense_codes()
    top = pd.read_parquet(study.sae_dir("s") / TOPK_FILE)
    features = read(src / "features")
    for rec in features:
        assert tuple(rec) == npx.FEATURE_KEYS and tuple(rec["vislens"]) == npx.FEATURE_VISLENS_KEYS
        f = int(rec["index"])
        assert (rec["modelId"], rec["layer"], rec["creatorId"]) == ("tiny-clip-v2", "8-s", "u1")
        assert rec["frac_nonzero"] == pytest.approx((dense[:, :, f] > 0).mean())
        mine = top[top["feature"] == f]
        assert rec["maxActApprox"] == pytest.approx(
            float(mine["value"].max()) if len(mine) else 0.0
        )
        assert not rec["hasVector"] and rec["vector"] == []
    ext = {int(r["index"]): r["vislens"] for r in features}
    assert ext[4] == {
        "sae": "s",
        "n_active": 4,
        "status": "ok",
        "ms": 0.75,
        "ms_topn": 0.3,
        "tier": 3,
    }
    assert ext[2]["ms"] is None and ext[2]["status"] == "dead"

    acts = dict(npx.read_batches(src / "activations"))
    assert {n: sorted({r["index"] for r in recs}) for n, recs in acts.items()} == {
        0: ["0", "1"],
        2: ["4"],
    }
    records = read(src / "activations")
    assert len(records) == len(top) == 3 * K and manifest["n_activations"] == len(top)
    assert len({r["id"] for r in records}) == len(records)
    items = pd.read_parquet(study.images_path).set_index("item_id")["source"]
    for rec, row in zip(records, top.sort_values(["feature", "rank"]).itertuples(), strict=True):
        assert (
            tuple(rec) == npx.ACTIVATION_KEYS
            and tuple(rec["vislens"]) == npx.ACTIVATION_VISLENS_KEYS
        )
        v = rec["vislens"]
        assert (int(rec["index"]), v["rank"], v["item_id"]) == (row.feature, row.rank, row.item_id)
        expected = dense[row.item_index, :, row.feature]
        assert rec["values"] == expected.tolist()  # exact: the float32 values of the code store
        assert rec["maxValue"] == expected.max() == v["value"] == pytest.approx(row.value)
        at = int(np.argmax(expected))
        assert rec["maxValueTokenIndex"] == at and rec["minValue"] == expected.min()
        assert (v["patch_row"], v["patch_col"]) == ((at - 1) // GRID, (at - 1) % GRID)
        assert rec["tokens"] == manifest["token_names"] and rec["dataIndex"] == row.item_id
        assert v["image"] == items[row.item_id] and v["file_name"] is None and v["reduce"] == "max"

    expl = dict(npx.read_batches(src / "explanations"))
    assert {n: [r["index"] for r in recs] for n, recs in expl.items()} == {0: ["0", "1"], 1: ["4"]}
    by_f = {int(r["index"]): r for r in read(src / "explanations")}
    for rec in by_f.values():
        assert (
            tuple(rec) == npx.EXPLANATION_KEYS
            and tuple(rec["vislens"]) == npx.EXPLANATION_VISLENS_KEYS
        )
    assert (by_f[0]["description"], by_f[0]["notes"], by_f[0]["explanationModelName"]) == (
        "label 0",
        "longer 0",
        "judge-m",
    )
    assert by_f[0]["vislens"]["balanced_accuracy"] == 0.875 and by_f[0]["vislens"]["auc"] == 0.9
    assert by_f[4]["vislens"]["balanced_accuracy"] is None and by_f[4]["vislens"]["auc"] == 0.6
    assert by_f[1]["vislens"]["auc"] is None and by_f[1]["authorId"] == "u1"

    # A second export of the same study: refused without --overwrite, byte-identical with it.
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="--overwrite"):
        npx.export_neuronpedia(study, "s", out, batch_size=2, creator_id="u1")
    npx.export_neuronpedia(study, "s", out, batch_size=2, creator_id="u1", overwrite=True)
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_vectors_and_copied_images(tmp_path: Path) -> None:
    from helpers_sae import random_sae
    from vislens.sae.formats import save_saelens

    study = make_study(tmp_path / "study", labels=False)
    sae = random_sae("standard", d_in=6, d_sae=D_SAE)
    save_saelens(sae, study.sae_dir("s"))
    res = npx.export_neuronpedia(study, "s", tmp_path / "out", model_id="My Model", source_set="res 5k",
                                 vectors=True, copy_images=True)  # fmt: skip
    assert res.dir == tmp_path / "out" / "my-model" / "8-res-5k" and res.n_explanations == 0
    assert read(res.dir / "explanations") == []
    for rec in read(res.dir / "features"):
        assert rec["hasVector"] and rec["vector"] == pytest.approx(
            sae.W_dec[int(rec["index"])].tolist()
        )
    assert json.loads((res.dir / "model.jsonl").read_text())["dimension"] == 6
    for rec in read(res.dir / "activations"):
        copy = res.dir / rec["vislens"]["file_name"]
        assert copy.name == f"{rec['vislens']['item_index']}.png"
        assert Image.open(copy).getpixel((0, 0)) == (30 * rec["vislens"]["item_index"], 10, 0)


def test_token_names_for_every_layout() -> None:
    def info(**kw: Any) -> CodesInfo:
        base = {"d_sae": 1, "n_tokens": 1, "tokens": "cls", "has_cls": True, "n_prefix_tokens": 1,
                "grid_h": 2, "grid_w": 3, "n_items": 1, "shard_size": 1}  # fmt: skip
        return CodesInfo(**(base | kw))

    assert npx.token_names(info()) == ["<cls>"]
    assert npx.token_names(info(tokens="mean", has_cls=False, n_prefix_tokens=0)) == ["<mean>"]
    patches = info(n_tokens=6, tokens="patches", has_cls=False, n_prefix_tokens=0)
    assert npx.token_names(patches) == ["r0c0", "r0c1", "r0c2", "r1c0", "r1c1", "r1c2"]
    registers = info(n_tokens=9, tokens="all", n_prefix_tokens=3)
    assert npx.token_names(registers)[:4] == ["<cls>", "<reg1>", "<reg2>", "r0c0"]
    assert npx.slug("  Qwen/Qwen2.5-VL 7B ") == "qwen-qwen2-5-vl-7b" and npx.slug("///") == "model"


def test_unknown_sae_is_one_error_naming_what_to_run(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    res = CliRunner().invoke(
        app, ["sae", "export", str(study.root), "--sae", "nope", "--format", "neuronpedia", "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert isinstance(res.exception, InputError)
    msg = str(res.exception)
    assert "no SAE named 'nope'" in msg and "found: s" in msg and "vislens sae encode" in msg
    assert not (tmp_path / "out").exists()


def test_no_topk_yet_is_one_error_and_nothing_written(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study", topk=False)
    with pytest.raises(
        InputError, match=r"topk\.parquet: no top items — run `vislens sae topk STUDY --name s`"
    ):
        npx.export_neuronpedia(study, "s", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failure_midway_leaves_no_half_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(tmp_path / "study")
    out = tmp_path / "out"
    npx.export_neuronpedia(study, "s", out, batch_size=2)
    src = out / "tiny-clip-v2" / "8-s"
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    calls = []

    def failing(path: Path, records: list[dict[str, Any]]) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        real(path, records)

    real = npx._write_batch
    monkeypatch.setattr(npx, "_write_batch", failing)
    with pytest.raises(OSError, match="disk full"):
        npx.export_neuronpedia(study, "s", out, batch_size=1, overwrite=True)
    # the old export is untouched and no temporary folder is left beside it
    assert sorted(p.name for p in src.parent.iterdir()) == ["8-s"]
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before


def test_json_format_still_needs_an_item(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    runner = CliRunner()
    res = runner.invoke(app, ["sae", "export", str(study.root), "--sae", "s"])
    assert isinstance(res.exception, InputError) and "--item" in str(res.exception)
    res = runner.invoke(app, ["sae", "export", str(study.root), "--sae", "s", "--item", "im1.png"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["item_id"] == "im1.png"
    res = runner.invoke(app, ["sae", "export", str(study.root), "--sae", "s", "--format", "csv"])
    assert isinstance(res.exception, InputError) and "json or neuronpedia" in str(res.exception)


def _doc_keys(heading: str, nth: int = 0) -> list[str]:
    """The backticked first cells of the ``nth`` table under ``## heading``."""
    doc = Path(__file__).resolve().parents[1] / "docs" / "formats" / "sae-neuronpedia.md"
    section = doc.read_text(encoding="utf-8").split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    tables: list[list[str]] = []
    in_table = False
    for line in section.splitlines():
        if line.startswith("|") and not in_table:
            tables.append([])
        in_table = line.startswith("|")
        m = re.match(r"\| `([^`]+)` \|", line)
        if m:
            tables[-1].append(m.group(1))
    return tables[nth]


def test_format_doc_lists_exactly_the_written_keys() -> None:
    assert _doc_keys("model.jsonl") == list(npx.MODEL_KEYS)
    assert _doc_keys("sourceset.jsonl") == list(npx.SOURCESET_KEYS)
    assert _doc_keys("source.jsonl") == list(npx.SOURCE_KEYS)
    assert _doc_keys("features") == list(npx.FEATURE_KEYS)
    assert _doc_keys("features", 1) == list(npx.FEATURE_VISLENS_KEYS)
    assert _doc_keys("activations") == list(npx.ACTIVATION_KEYS)
    assert _doc_keys("activations", 1) == list(npx.ACTIVATION_VISLENS_KEYS)
    assert _doc_keys("explanations") == list(npx.EXPLANATION_KEYS)
    assert _doc_keys("explanations", 1) == list(npx.EXPLANATION_VISLENS_KEYS)
    assert _doc_keys("vislens.json") == list(npx.MANIFEST_KEYS)


def test_judge_file_names_match_the_judge_stage() -> None:
    from vislens.judge.tasks.label import LABELS_SCHEMA_VERSION
    from vislens.judge.tasks.label_fuzz import FUZZ_SCORES_FILE
    from vislens.judge.tasks.label_score import LABEL_SCORES_FILE

    assert (npx.LABEL_SCORES_FILE, npx.FUZZ_SCORES_FILE) == (LABEL_SCORES_FILE, FUZZ_SCORES_FILE)
    assert npx.LABELS_SCHEMA_VERSION == LABELS_SCHEMA_VERSION


def test_bad_labels_file_is_one_error(tmp_path: Path) -> None:
    study = make_study(tmp_path / "study")
    (study.sae_dir("s") / "labels.json").write_text('{"schema_version": 9, "features": []}')
    with pytest.raises(InputError, match=r"labels\.json: schema_version 9 is newer"):
        npx.export_neuronpedia(study, "s", tmp_path / "out")
    assert not any((tmp_path / "out").rglob("*.gz"))
