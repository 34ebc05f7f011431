"""`vislens demo`: every stage runs, the scorecard is right and stable, reruns reuse, kills resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vislens.cli import app
from vislens.demo import DemoSettings, run_demo
from vislens.store.activations import ActivationStore

QUICK = DemoSettings.quick()


def _outputs(study_dir):
    """Every file the stages wrote (the demo's own records excluded), with its mtime."""
    return {
        str(p.relative_to(study_dir)): p.stat().st_mtime_ns
        for p in study_dir.rglob("*")
        if p.is_file() and p.relative_to(study_dir).parts[:2] != ("reports", "demo")
        and p.name not in ("demo.json", "scorecard.json")
    }  # fmt: skip


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    return out, run_demo(out, settings=QUICK)


def test_demo_runs_every_stage_and_scores_it(quick_demo):
    out, summary = quick_demo
    study_dir = out / "study"
    store = ActivationStore.open(study_dir / "activations")
    assert store.is_complete and store.info.n_items == 24 and store.info.grid_h == 10
    assert [s["stage"] for s in summary["stages"]] == [
        "extract", "questions", "sae", "sae_scorecard", "lens", "probe", "map",
    ]  # fmt: skip
    questions = summary["questions"]
    assert len(questions) == 4 and {q["truth"] for q in questions[:2]} == {"yes", "no"}
    # The shipped toy answers these well (docs/toy.md): a regression shows here.
    assert sum(q["correct"] for q in questions) >= 3, questions

    card = json.loads((study_dir / "reports" / "scorecard.json").read_text())
    assert card == summary["scorecard"]
    sae = card["sae"]
    assert [r["concept"] for r in sae["concepts"]][:2] == ["red", "green"]
    assert sae["n_concepts"] == 11 and all(0.0 <= r["auroc"] <= 1.0 for r in sae["concepts"])
    # Colours are what the toy tower separates best: even a 300-step SAE on 24 images detects
    # them well above chance (0.5); the full demo's figures are in docs/demo.md.
    colours = [r["auroc"] for r in sae["concepts"][:6]]
    assert float(np.median(colours)) >= 0.65 and max(colours) >= 0.85, sae["concepts"]

    lens = card["lens"]
    assert set(lens["rate_by_visual_layer"]) == {"latentlens", "embeddinglens", "logitlens"}
    assert all(0 <= v <= 1 for r in lens["rate_by_visual_layer"].values() for v in r.values())
    # The lens stage reads toy-mlp, the toy trained LatentLens' way (docs/demo.md: 77% of
    # object cells at visual layer 1 over 200 images); the QA toy gave under 10%.
    assert 'model = "toy-mlp"' in (study_dir / "study.toml").read_text()
    assert lens["best"]["latentlens"]["rate"] >= 0.6, lens

    probe = card["probe"]
    # Asked in the phrasing it was trained on, the toy answers presence as in docs/toy.md
    # (99% on 1,000 scenes): on 6 images × 3 targets, precision and recall stay high.
    for target, pr in probe["presence_trained_phrasing"].items():
        assert pr["n_unparseable"] == 0, target
        assert (pr["precision"] or 0) >= 0.8 and (pr["recall"] or 0) >= 0.8, (target, pr)
    assert (study_dir / "probe" / "reports" / "stats" / "head_rankings.csv").is_file()

    m = card["map"]
    assert m["n_items"] == 24 and m["toy_accuracy"] >= 0.7
    for name in ("metadata.csv", m["coords"], m["mis_csv"], m["correct_csv"]):
        assert (study_dir / "map" / name).is_file(), name


def test_demo_rerun_reuses_every_stage_and_a_changed_setting_reruns_only_its_stages(quick_demo):
    out, summary = quick_demo
    study_dir = out / "study"
    before = _outputs(study_dir)
    res = CliRunner().invoke(app, ["demo", str(out), "--quick", "--no-serve"])
    assert res.exit_code == 0, res.output
    assert res.output.count("reused") >= 7 and "running" not in res.output
    assert "scorecard against ground truth" in res.output and res.output.count("truth:") == 4
    assert _outputs(study_dir) == before  # nothing recomputed, nothing rewritten
    again = json.loads((study_dir / "reports" / "scorecard.json").read_text())
    assert again == summary["scorecard"]  # same seed, same scorecard

    # Another SAE length re-runs the SAE stages from scratch (the old SAE is removed, not
    # resumed into the new run); the world, LatentLens and the probe are reused.
    changed = run_demo(out, settings=dataclasses.replace(QUICK, sae_steps=200))
    reused = {s["stage"]: s["reused"] for s in changed["stages"]}
    assert reused == {"extract": True, "questions": True, "sae": False, "sae_scorecard": False,
                      "lens": True, "probe": True, "map": True}  # fmt: skip
    after = _outputs(study_dir)
    kept = {k for k in before if k.startswith(("activations", "images", "lens", "probe"))}
    assert kept and all(before[k] == after[k] for k in kept)
    # Back to the module's settings (for the tests that share this study): the same card.
    assert run_demo(out, settings=QUICK)["scorecard"] == summary["scorecard"]


@pytest.mark.slow
def test_demo_killed_mid_stage_resumes_to_the_same_scorecard(tmp_path, quick_demo):
    ref = quick_demo[1]["scorecard"]
    code = f"from vislens.demo import DemoSettings, run_demo; run_demo({str(tmp_path / 'k')!r}, settings=DemoSettings.quick())"
    env = {**os.environ, "VISLENS_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    record = tmp_path / "k" / "study" / "reports" / "demo" / "questions.json"
    deadline = time.monotonic() + 300
    while not record.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the demo finished before it could be killed"
    time.sleep(1.0)  # into the SAE stage
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "k" / "study" / "reports" / "scorecard.json").exists()
    resumed = run_demo(tmp_path / "k", settings=QUICK)
    assert [s["reused"] for s in resumed["stages"]][:2] == [True, True]
    assert resumed["scorecard"] == ref


def test_demo_labels_features_with_a_configured_endpoint_and_says_how_when_none(
    quick_demo, monkeypatch
):
    from vislens.demo.judging import ENABLE_LINE, judge_step
    from vislens.demo.stages import StageRunner
    from vislens.judge.fake_server import FakeOpenAIServer
    from vislens.study import Study

    out, summary = quick_demo
    assert summary["scorecard"]["judge"] == {
        "skipped": "no judge endpoint configured",
        "enable": ENABLE_LINE,
    }
    study = Study.open(out / "study")
    label = '{"label": "red shapes", "description": "red objects", "visual_elements": ["red"]}'
    match = '{"matches": true, "confidence": 0.9}'

    def respond(body: dict) -> str:  # the labelling prompt asks for a label; scoring for a match
        return match if "matches" in json.dumps(body["messages"]) else label

    with FakeOpenAIServer(respond) as server:
        monkeypatch.setenv("VISLENS_JUDGE_BASE_URL", server.base_url)
        monkeypatch.setenv("VISLENS_JUDGE_MODEL", "judge-llm")
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        logged: list[str] = []
        runner = StageRunner(out / "judge-records", QUICK.as_dict(), log=logged.append)
        result = judge_step(study, runner, logged.append)
        n_requests = len(server.received)
        again = judge_step(study, StageRunner(out / "judge-records", QUICK.as_dict()), print)
    assert result["model"] == "judge-llm" and n_requests >= 1
    assert len(server.received) == n_requests  # the recorded stage is reused: no new request
    assert again == result
    labels = json.loads((study.sae_dir("toy-patches") / "labels.json").read_text())
    assert "red shapes" in json.dumps(labels)
    # A judge that says every image matches: recall 1, specificity 0, balanced accuracy 0.5.
    scores = pd.read_parquet(study.sae_dir("toy-patches") / "label_scores.parquet")
    assert len(scores) >= 1 and result["mean_label_balanced_accuracy"] == 0.5
    assert set(scores["recall"].dropna()) == {1.0}


def test_scorecard_doc_names_every_key(quick_demo):
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "formats" / "demo-scorecard.md").read_text()
    sections = {"": set()}
    current = ""
    for line in doc.splitlines():
        if line.startswith("## "):
            m = re.match(r"## `(\w+)`", line)
            current = m.group(1) if m else ""
            sections.setdefault(current, set())
        elif line.startswith("| `"):
            sections[current].add(line.split("`")[1])
    card = quick_demo[1]["scorecard"]
    assert sections[""] == set(card)
    for part in ("sae", "lens", "probe", "map"):
        assert sections[part] == set(card[part]), part
