"""`vislens demo`: the main job runs end to end, writes its summary, and resumes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vislens.cli import app
from vislens.demo import run_demo
from vislens.store.activations import ActivationStore


def test_demo_end_to_end_and_resume(tmp_path):
    summary = run_demo(tmp_path / "d", n_images=12)
    store = ActivationStore.open(tmp_path / "d" / "study" / "activations")
    assert store.is_complete and store.info.n_items == 12 and store.info.grid_h == 10
    questions = summary["questions"]
    assert isinstance(questions, list) and len(questions) == 4
    for qa in questions:
        assert qa["answer"] and qa["truth"] and qa["correct"] == (qa["answer"] == qa["truth"])
    assert {q["truth"] for q in questions[:2]} == {"yes", "no"}
    # The shipped toy answers these well (docs/toy.md): a regression shows here.
    assert sum(q["correct"] for q in questions) >= 3, questions
    saved = json.loads((tmp_path / "d" / "study" / "reports" / "demo.json").read_text())
    assert saved["questions"] == questions

    res = CliRunner().invoke(app, ["demo", str(tmp_path / "d"), "--n", "12"])
    assert res.exit_code == 0, res.output
    assert "already extracted" in res.output and res.output.count("truth:") == 4
