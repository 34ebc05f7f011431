"""The human/agreement/app docs: format field names match the code, examples run."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from helpers_human import REPO, write_export, write_latentlens_files, write_seed002_pair
from vislens.human.comments import COMMENT_COLUMNS
from vislens.human.compare import CORRELATION_KEYS, SEED002_METRIC_KEYS
from vislens.human.latentlens import EVALUATION_KEYS, LLM_RESULT_KEYS, RESULT_KEYS
from vislens.human.seed002 import HUMAN_LABEL_KEYS
from vislens.store.annotations.schema import Base

DOCS = REPO / "docs"


def table_names(text: str, heading: str) -> list[str]:
    """Backticked names in the first column of the first table after ``heading``."""
    start = text.index(heading)
    names: list[str] = []
    in_table = False
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            in_table = True
            first = line.split("|")[1]
            names += re.findall(r"`([^`]+)`", first)
        elif in_table:
            break
    return names


def test_annotation_db_doc_matches_tables() -> None:
    text = (DOCS / "formats" / "annotations-db.md").read_text()
    names = [t.name for t in Base.metadata.sorted_tables]
    assert "annotation_comments" in names  # imported above: its table is documented too
    for table in Base.metadata.sorted_tables:
        assert table_names(text, f"### `{table.name}`") == [c.name for c in table.columns], (
            table.name
        )
    listed = re.search(r"comments.csv` \(Python:.*?\) writes .*?: (.*?)\.\n", text, re.S)
    assert listed is not None
    assert tuple(re.findall(r"`([^`]+)`", listed.group(1))) == COMMENT_COLUMNS


def test_format_docs_match_code() -> None:
    labels = (DOCS / "formats" / "human-labels.md").read_text()
    assert tuple(table_names(labels, "## Human-label JSON")) == HUMAN_LABEL_KEYS
    ll = (DOCS / "formats" / "latentlens-human-study.md").read_text()
    assert tuple(table_names(ll, "## Annotator files")) == EVALUATION_KEYS
    assert tuple(table_names(ll, "Each entry of `results`")) == RESULT_KEYS
    assert tuple(table_names(ll, "## Judge results")) == LLM_RESULT_KEYS
    out = (DOCS / "formats" / "agreement-outputs.md").read_text()
    seed = table_names(out, "## Seed 002")
    assert tuple(seed[: len(SEED002_METRIC_KEYS)]) == SEED002_METRIC_KEYS
    corr = table_names(out, "## LatentLens")
    assert "interpretability_correlation" in corr and "rule" in corr
    listed = re.search(r"`interpretability_correlation` \| object \| (.*?) \|", out)
    assert listed is not None
    assert (
        tuple(re.findall(r"`([^`]+)`", listed.group(1))[: len(CORRELATION_KEYS)])
        == CORRELATION_KEYS
    )


def test_format_docs_match_files_written(tmp_path: Path) -> None:
    import json

    from vislens.human.compare import compare_label_files, latentlens_correlation
    from vislens.human.tasks import read_feature_cards

    hp, mp = write_seed002_pair(tmp_path, "h.json", "m.json")
    metrics, _, _ = compare_label_files(hp, mp, tmp_path, n_resamples=50)
    out = (DOCS / "formats" / "agreement-outputs.md").read_text()
    assert table_names(out, "## Seed 002") == list(metrics)
    write_latentlens_files(tmp_path)
    rep = latentlens_correlation(
        tmp_path / "data.json",
        sorted(tmp_path.glob("evaluation_*.json")),
        tmp_path / "human_study_llm_results.json",
        tmp_path / "c.json",
        n_resamples=50,
    )
    assert table_names(out, "## LatentLens") == list(rep)
    cards = read_feature_cards(tmp_path / "features.json")
    doc = (DOCS / "formats" / "feature-rating-input.md").read_text()
    assert table_names(doc, "# Feature-rating input") == list(cards[0])
    assert json.loads((tmp_path / "c.json").read_text()) == json.loads(json.dumps(rep))


def code_blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.slow
def test_doc_examples_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from typer.testing import CliRunner

    from vislens.cli import app

    write_export(tmp_path / "gemma-2-2b-res-65k.json", 400)
    write_latentlens_files(tmp_path)
    write_seed002_pair(
        tmp_path, "gemma_human_labels_formatting.json", "gemma_formatting_classified_deepseek.json"
    )
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for doc in ("human.md", "agreement.md", "app.md"):
            for block in code_blocks(DOCS / doc, "bash"):
                for line in block.strip().splitlines():
                    if line.startswith(("vislens serve", "curl", "  -d")):
                        continue  # starts a server / needs one
                    args = shlex.split(line)
                    assert args[0] == "vislens", line
                    res = runner.invoke(app, args[1:])
                    assert res.exit_code == 0, f"{doc}: {line}\n{res.output}"
                    if "agree labels" in line:
                        assert (
                            "samples 300  accuracy 0.900  TP=69 TN=201 FP=5 FN=25  phi 0.764"
                            in res.output
                        )
            for block in code_blocks(DOCS / doc, "python"):
                exec(compile(block, f"{doc} example", "exec"), {"__name__": "__doc_example__"})
    finally:
        os.chdir(cwd)
        from vislens.app import shell

        shell._EXTRA_PAGES.clear()
    assert (
        tmp_path
        / "metrics"
        / "gemma_human_labels_formatting_vs_gemma_formatting_classified_deepseek_metrics.json"
    ).exists()
    assert (tmp_path / "my-study" / "reports" / "agreement" / "latentlens.json").exists()
    assert (tmp_path / "exported" / "evaluation_alice_s1.json").exists()
    assert "latentlens" in capsys.readouterr().out
