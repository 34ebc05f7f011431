"""Seed 002 and LatentLens layouts in and out of the store; bad files give clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers_human import make_study, write_export
from vislens.errors import InputError
from vislens.human.latentlens import read_instances, write_instances
from vislens.human.tasks import binary_task_name, create_binary_task, create_patch_task
from vislens.human.transfer import (
    current_table,
    export_evaluations,
    export_human_labels,
    export_llm_results,
    import_evaluations,
    import_human_labels,
    import_llm_results,
)
from vislens.store.annotations import AnnotationStore


@pytest.fixture()
def store(tmp_path: Path) -> AnnotationStore:
    return AnnotationStore.for_study(make_study(tmp_path / "study"))


def test_binary_sample_is_the_seed002_sample(tmp_path: Path, store: AnnotationStore) -> None:
    export = write_export(tmp_path / "12-res__l0-21.json", 500)
    task = create_binary_task(store, export, mode="formatting", n=300, seed=42)
    assert (
        task.name
        == binary_task_name(export, "formatting")
        == "12-res__l0-21_human_labels_formatting"
    )
    assert (
        task.question == "Is this feature related to text formatting, structure, or presentation?"
    )
    # seed 002 draws pandas' sample(n, random_state=42) from the export's records
    expected = (
        pd.DataFrame(json.loads(export.read_text()))
        .sample(n=300, random_state=42)
        .reset_index(drop=True)
    )
    items = store.items(task.name)
    assert [it.payload["description"] for it in items] == expected["description"].tolist()
    assert [it.payload["feature_index"] for it in items] == [int(i) for i in expected["index"]]
    assert [it.payload["_row_id"] for it in items] == list(range(300))
    custom = create_binary_task(store, export, mode="colour words", n=5, name="c")
    assert custom.question == "Is this feature related to colour words?"


def test_seed002_labels_round_trip(tmp_path: Path, store: AnnotationStore) -> None:
    task = create_binary_task(store, write_export(tmp_path / "e.json", 30), n=10)
    recs = [
        {
            "_row_id": i,
            "feature_index": it.payload["feature_index"],
            "feature_id": None,
            "description": it.payload["description"],
            "label": "related" if i % 3 else "not-related",
        }
        for i, it in enumerate(store.items(task.name))
        if i != 4
    ]
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(recs))
    assert import_human_labels(store, path, annotator="ann", task_name=task.name) == 9
    assert export_human_labels(store, task.name, "ann") == recs
    # importing twice stores nothing new
    import_human_labels(store, path, annotator="ann", task_name=task.name)
    assert store.count_events(task.name) == 9


def test_seed002_labels_create_their_own_task(tmp_path: Path, store: AnnotationStore) -> None:
    recs = [
        {
            "_row_id": i,
            "feature_index": 7 * i,
            "feature_id": f"x-{7 * i}",
            "description": "<b>d</b>",
            "label": "related",
        }
        for i in range(4)
    ]
    path = tmp_path / "gemma_human_labels_alignment.json"
    path.write_text(json.dumps(recs))
    import_human_labels(store, path, annotator="seed")
    assert export_human_labels(store, "gemma_human_labels_alignment") == recs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"_row_id": 0, "label": "related"', "not valid JSON"),
        ('{"oops": 1}', "top-level key 'oops' holds a int value and is not a feature id"),
        ('{"items": "not a list"}', "'items' is a JSON str; expected a list"),
        (
            '[{"_row_id": 0, "label": "related"}, {"_row_id": 1, "label": "yes"}]',
            "record 1 .*'yes' is not one of",
        ),
        (
            '[{"_row_id": 0, "label": "related"}, {"_row_id": 0, "label": "related"}]',
            "appears twice",
        ),
        ('[{"_row_id": 99, "label": "related"}]', "_row_id 99 is not an item"),
    ],
)
def test_bad_label_files(
    tmp_path: Path, store: AnnotationStore, content: str, message: str
) -> None:
    create_binary_task(store, write_export(tmp_path / "e.json", 5), n=5, name="t")
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        import_human_labels(store, path, annotator="x", task_name="t")
    assert str(path) in str(err.value)


def _instances(tmp_path: Path) -> Path:
    instances = [
        {
            "instance_id": f"{i:05d}_patch0",
            "id": f"model{i % 2}_{i:05d}_patch0",
            "model": f"model{i % 2}",
            "image_url": f"https://example.org/{i}.jpg",
            "patch_row": i,
            "patch_col": 2 * i,
            "layer": 2,
            "candidates": [["a red umbrella", " red"], ["blue sky", " sky"]],
            "caption": "c",
        }
        for i in range(6)
    ]
    path = tmp_path / "data.json"
    path.write_text(json.dumps(instances))
    return path


def _evaluation(
    tmp_path: Path, user: str, session: str, picks: dict[int, list[tuple[str, str]]]
) -> Path:
    results = [
        {
            "instanceId": f"model{i % 2}_{i:05d}_patch0",
            "selectedWords": [{"word": w, "relation": r} for w, r in words],
            "noneSelected": not words,
            "timestamp": f"2025-11-13T15:1{i}:00.000Z",
        }
        for i, words in picks.items()
    ]
    path = tmp_path / f"evaluation_{user}_{session}.json"
    path.write_text(
        json.dumps(
            {
                "userId": user,
                "sessionId": session,
                "timestamp": "2025-11-13T15:20:00Z",
                "results": results,
            }
        )
    )
    return path


def test_latentlens_round_trip(tmp_path: Path, store: AnnotationStore) -> None:
    data = _instances(tmp_path)
    create_patch_task(store, data, name="ll")
    picks = {
        0: [("a red umbrella", "concrete")],
        1: [],
        2: [("blue sky", "global"), ("a red umbrella", "abstract")],
    }
    ev = _evaluation(tmp_path, "Marius", "s1", picks)
    assert import_evaluations(store, "ll", [ev]) == 3
    out = export_evaluations(store, "ll", tmp_path / "out")
    assert [p.name for p in out] == ["evaluation_Marius_s1.json"]
    back = json.loads(out[0].read_text())
    orig = json.loads(ev.read_text())
    assert back["userId"] == "Marius" and back["sessionId"] == "s1"
    for a, b in zip(back["results"], orig["results"], strict=True):
        assert a["instanceId"] == b["instanceId"] and a["selectedWords"] == b["selectedWords"]
        assert a["noneSelected"] == b["noneSelected"]
        assert pd.Timestamp(a["timestamp"]) == pd.Timestamp(b["timestamp"])
    write_instances(tmp_path / "data2.json", [it.payload for it in store.items("ll")])
    assert json.loads((tmp_path / "data2.json").read_text()) == json.loads(data.read_text())
    # judge results, keyed by the short instance_id as the judge writes them
    llm = {
        "total_instances": 2,
        "evaluated": 2,
        "results": [
            {
                "instance_id": "00000_patch0",
                "gpt_response": {
                    "interpretable": True,
                    "concrete_words": ["red"],
                    "abstract_words": [],
                    "global_words": [],
                    "reasoning": "r",
                },
            },
            {"instance_id": "00001_patch0", "error": "image not found locally"},
        ],
    }
    (tmp_path / "llm.json").write_text(json.dumps(llm))
    assert import_llm_results(store, "ll", tmp_path / "llm.json", judge="gpt") == 1
    assert export_llm_results(store, "ll", tmp_path / "llm2.json", judge="gpt") == 1
    again = json.loads((tmp_path / "llm2.json").read_text())["results"][0]
    assert (
        again["instance_id"] == "model0_00000_patch0"
        and again["gpt_response"]["interpretable"] is True
    )


def test_lens_run_layout_becomes_candidates(tmp_path: Path) -> None:
    doc = {
        "instances": [
            {
                "instance_id": "m_1_patch0",
                "model": "m",
                "patch_row": 1,
                "patch_col": 2,
                "image_url": "x.png",
                "neighbors": [
                    {"rank": 1, "token_str": " colors", "source_caption": "rainbow colors"}
                ],
            }
        ]
    }
    (tmp_path / "sim.json").write_text(json.dumps(doc))
    [(iid, payload)] = read_instances(tmp_path / "sim.json")
    assert iid == "m_1_patch0"
    assert payload["candidates_view"] == [
        {"word": " colors", "token": " colors", "sentence": "rainbow colors"}
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["results"][0].update(instanceId="nope"),
            r"results\[0\]: unknown instanceId 'nope'",
        ),
        (
            lambda d: d["results"][1]["selectedWords"].append(
                {"word": "blue sky", "relation": "vague"}
            ),
            r"results\[1\].*relation in concrete, abstract, global",
        ),
        (
            lambda d: d["results"][1]["selectedWords"].append(
                {"word": "green", "relation": "concrete"}
            ),
            r"results\[1\].*'green' is not one of",
        ),
        (lambda d: d.pop("results"), "missing key 'results'"),
    ],
)
def test_bad_evaluation_files(tmp_path: Path, store: AnnotationStore, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    create_patch_task(store, _instances(tmp_path), name="ll")
    ev = _evaluation(tmp_path, "U", "s", {0: [], 1: [("a red umbrella", "concrete")]})
    doc = json.loads(ev.read_text())
    mutate(doc)
    ev.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message) as err:
        import_evaluations(store, "ll", [ev])
    assert str(ev) in str(err.value)
    assert store.count_events("ll") == 0  # checked in full before anything is stored


def test_bad_instances_file(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(
        json.dumps([{"id": "a", "patch_row": 1, "patch_col": "2", "candidates": []}])
    )
    with pytest.raises(
        InputError, match=r"d.json: instance 0 \(a\): 'patch_col' must be an integer"
    ):
        read_instances(tmp_path / "d.json")


def test_cli_round_trip_and_one_line_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    from vislens.cli import app

    study = make_study(tmp_path / "st").root
    export = write_export(tmp_path / "exp.json", 20)
    runner = CliRunner()
    res = runner.invoke(
        app, ["human", "task", "binary", str(study), str(export), "--n", "5", "--mode", "alignment"]
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["human", "annotator", "add", str(study), "zoe"])
    assert "token=" in res.output
    store = AnnotationStore.for_study(
        __import__("vislens.study", fromlist=["Study"]).Study.open(study)
    )
    task = "exp_human_labels_alignment"
    from vislens.human.session import TaskSession

    s = TaskSession(store, task)
    ann = store.annotator(name="zoe")
    s.act(ann, "label", s.item(position=0), "related")
    res = runner.invoke(
        app, ["human", "export", "labels", str(study), task, "-o", str(tmp_path / "out.json")]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "out.json").read_text())[0]["label"] == "related"
    assert len(current_table(store, task)) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    exe = Path(sys.executable).with_name("vislens")
    proc = subprocess.run(
        [str(exe), "human", "import", "labels", str(study), str(bad), "--annotator", "x"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip().count("\n") == 0
        and str(bad) in proc.stderr
        and "not valid JSON" in proc.stderr
    )


def test_rating_task_from_an_sae_run(tmp_path: Path) -> None:
    from PIL import Image

    from vislens.human.tasks import create_rating_task_from_sae
    from vislens.sae.top_items import TOPK_COLUMNS, TOPK_FILE

    study = make_study(tmp_path / "st")
    paths = []
    for i in range(4):
        p = tmp_path / f"im{i}.png"
        Image.new("RGB", (4, 4), (60 * i, 0, 0)).save(p)
        paths.append(str(p))
    pd.DataFrame({"item_id": [f"i{i}" for i in range(4)], "source": paths}).to_parquet(
        study.images_path
    )
    sae_dir = study.sae_dir("s")
    sae_dir.mkdir(parents=True)
    rows = [
        (f, r, it, f"i{it}", 1.0 - r / 10)
        for f, items in ((0, [2, 1, 3]), (5, [0]))
        for r, it in enumerate(items)
    ]
    pd.DataFrame(rows, columns=list(TOPK_COLUMNS)).to_parquet(sae_dir / TOPK_FILE)
    (sae_dir / "labels.json").write_text(
        json.dumps({"schema_version": 1, "features": [{"feature": 0, "label": "dark red"}]})
    )
    store = AnnotationStore.for_study(study)
    task = create_rating_task_from_sae(store, study, "s", n_images=2)
    items = store.items(task.name)
    assert [it.external_id for it in items] == ["0", "5"]
    assert (
        items[0].payload["images"] == [paths[2], paths[1]]
        and items[0].payload["label"] == "dark red"
    )
    assert items[1].payload["label"] == ""
    with pytest.raises(InputError, match="no top-k table"):
        create_rating_task_from_sae(store, study, "missing")


def test_model_classifications_become_verdicts(tmp_path: Path, store: AnnotationStore) -> None:
    from vislens.human.compare import task_agreement
    from vislens.human.session import TaskSession
    from vislens.human.transfer import import_classifications

    task = create_binary_task(store, write_export(tmp_path / "e.json", 50), n=12, name="b")
    items = store.items(task.name)
    recs = [
        {
            "feature_id": f"12-res-{it.payload['feature_index']}",
            "description": "",
            "label": "related" if k % 2 else "not-related",
        }
        for k, it in enumerate(items)
    ] + [{"feature_id": "12-res-999", "label": "related"}]
    (tmp_path / "cls.json").write_text(json.dumps(recs))
    assert import_classifications(store, "b", tmp_path / "cls.json", judge="m") == 12
    verdicts = {ext: v for ext, _, v in store.verdicts("b", "m")}
    assert verdicts == {it.external_id: recs[k]["label"] for k, it in enumerate(items)}
    s = TaskSession(store, "b")
    ann = store.add_annotator("h")
    for it in items:
        s.act(ann, "label", it, "related")
    rep = task_agreement(store, "b", judge="m", n_resamples=20)
    assert rep["majority_vs_judge"]["tp"] == 6 and rep["majority_vs_judge"]["fn"] == 6
