"""`vislens demo`: every stage runs, the scorecard is right and stable, reruns reuse, kills resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from vislens.cli import app
from vislens.demo import DemoSettings, run_demo
from vislens.demo.scorecard import auroc_columns
from vislens.store.activations import ActivationStore

SMALL = DemoSettings(n_images=24, sae_steps=300)


def _outputs(study_dir):
    """Every file the stages wrote (records excluded), with its modification time."""
    return {
        str(p.relative_to(study_dir)): p.stat().st_mtime_ns
        for p in study_dir.rglob("*")
        if p.is_file()
        and "demo" not in p.relative_to(study_dir).parts[:2]
        and p.name not in ("demo.json", "scorecard.json")
    }


def test_demo_end_to_end_then_reuses_every_stage(tmp_path):
    summary = run_demo(tmp_path / "d", settings=SMALL)
    study_dir = tmp_path / "d" / "study"
    store = ActivationStore.open(study_dir / "activations")
    assert store.is_complete and store.info.n_items == 24 and store.info.grid_h == 10
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
    assert all(not s["reused"] for s in summary["stages"])

    before = _outputs(study_dir)
    again = run_demo(tmp_path / "d", settings=SMALL)
    assert all(s["reused"] for s in again["stages"]), again["stages"]
    assert again["scorecard"] == summary["scorecard"]
    assert _outputs(study_dir) == before  # nothing recomputed, nothing rewritten

    # The CLI's defaults differ in the SAE settings only: the SAE stages re-run from scratch
    # (the old SAE is removed, not resumed), the world's stages are reused.
    res = CliRunner().invoke(app, ["demo", str(tmp_path / "d"), "--n", "24"])
    assert res.exit_code == 0, res.output
    assert "[extract] reused" in res.output and "[sae] running" in res.output
    assert "scorecard against ground truth" in res.output and res.output.count("truth:") == 4
    after = _outputs(study_dir)
    kept = {k for k in before if k.startswith(("activations", "images"))}
    assert kept and all(before[k] == after[k] for k in kept)


@pytest.mark.slow
def test_demo_killed_mid_stage_resumes_to_the_same_scorecard(tmp_path):
    ref = run_demo(tmp_path / "ref", settings=SMALL)["scorecard"]
    code = (
        "from vislens.demo import DemoSettings, run_demo;"
        f"run_demo({str(tmp_path / 'k')!r}, settings=DemoSettings(n_images=24, sae_steps=300))"
    )
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
    resumed = run_demo(tmp_path / "k", settings=SMALL)
    assert [s["reused"] for s in resumed["stages"]][:2] == [True, True]
    assert resumed["scorecard"] == ref


def test_auroc_columns_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(60, 5)).astype(float)  # many ties
    labels = rng.random(60) < 0.3
    got = auroc_columns(scores, labels)
    want = [roc_auc_score(labels, scores[:, j]) for j in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.isnan(auroc_columns(scores, np.zeros(60, bool))).all()
