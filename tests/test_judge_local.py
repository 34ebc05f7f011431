"""The local backend end to end: the toy VLM judging images through the CLI, then the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers_judge import toy_adapter
from vislens.cli import app
from vislens.data.synthetic import WorldSpec, sample_scene


@pytest.mark.slow
def test_toy_vlm_judges_images_end_to_end(tmp_path: Path) -> None:
    from vislens.errors import ModelError
    from vislens.models.toy import toy_model_dir

    try:
        toy_model_dir()
        model = "toy"  # the shipped, trained toy VLM
    except (
        ModelError
    ):  # weights not installed: the same architecture, random weights, from a directory
        toy_adapter(tmp_path / "toy")
        model = str(tmp_path / "toy")

    spec = WorldSpec()
    rows = []
    for i in range(2):
        img, objects = sample_scene(spec, 0, i)
        img.save(tmp_path / f"img_{i}.png")
        rows.append({"file_name": f"img_{i}.png", "ground_truth_word_label": objects[0].color})
    pd.DataFrame(rows).to_csv(tmp_path / "metadata.csv", index=False)
    args = ["judge", "images", str(tmp_path / "metadata.csv"), "--model", model,
            "--labels", "red,green,blue,yellow,purple,orange", "--max-tokens", "24"]  # fmt: skip

    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    slug = "toy" if model == "toy" else model.strip("/").replace("/", "_")
    summary_path = tmp_path / f"judge_images_{slug}.summary.json"
    s1 = json.loads(summary_path.read_text())
    assert s1["backend"] == "local" and s1["n_items"] == 2 and s1["n_requests"] >= 2
    assert s1["prompt_tokens"] > 0  # counted with the model's own tokenizer
    assert s1["n_ok"] + s1["n_parse_failures"] + s1["n_refusals"] + s1["n_errors"] == 2
    mis = pd.read_csv(tmp_path / f"mis_{slug}.csv")
    correct = pd.read_csv(tmp_path / f"correct_{slug}.csv")
    assert len(mis) + len(correct) == s1["n_ok"]
    assert "rationale" in mis.columns and "rationale" in correct.columns

    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    s2 = json.loads(summary_path.read_text())
    assert s2["n_requests"] == 0 and s2["n_cache_hits"] == s1["n_requests"]
    assert {k: s2[k] for k in ("n_ok", "n_parse_failures", "n_errors")} == {
        k: s1[k] for k in ("n_ok", "n_parse_failures", "n_errors")
    }
