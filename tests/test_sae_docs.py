"""The format docs name exactly the fields the code writes, so they cannot drift."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
import torch

from helpers_sae import random_sae
from vislens.sae.formats.saelens import saelens_cfg
from vislens.sae.scoring import CORRELATION_COLUMNS, SCORES_COLUMNS
from vislens.sae.top_items import TOPK_COLUMNS
from vislens.store.codes import CodesInfo, CodesShard

DOCS = Path(__file__).resolve().parents[1] / "docs" / "formats"


def table_keys(doc: str, heading: str) -> list[str]:
    """The backticked first cells of the first table after ``heading``."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    start = text.index(heading)
    keys, in_table = [], False
    for line in text[start:].splitlines()[1:]:
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m:
            keys.append(m.group(1))
            in_table = True
        elif in_table and not line.startswith("|"):
            break
    return keys


def test_codes_doc():
    assert set(table_keys("sae-codes.md", "## manifest.json")) == {
        f.name for f in fields(CodesInfo)
    }
    shard_fields = {f.name for f in fields(CodesShard)} - {"n_tokens"}
    assert set(table_keys("sae-codes.md", "## Shards")) == shard_fields
    summary = ["item_index", "item_id", "token", "num_active", "top_features", "top_values"]
    assert table_keys("sae-codes.md", "## Summaries") == summary


def test_summary_columns_match_code(tmp_path):
    from vislens.store.codes import CodesInfo as Info
    from vislens.store.codes import CodesStore, CodesWriter, dense_to_csr

    info = Info(d_sae=3, n_tokens=1, tokens="cls", has_cls=True, n_prefix_tokens=1, grid_h=1, grid_w=1,
                n_items=1, shard_size=1)  # fmt: skip
    CodesWriter(tmp_path, info, ["a"]).write_shard(
        0, torch.tensor([0]), dense_to_csr(torch.ones(1, 3))
    )
    cols = list(CodesStore.open(tmp_path).summary().columns)
    assert cols == table_keys("sae-codes.md", "## Summaries")


def test_topk_doc():
    assert tuple(table_keys("sae-topk.md", "# Top-k")) == TOPK_COLUMNS


def test_scores_doc():
    assert tuple(table_keys("sae-scores.md", "## scores.parquet")) == SCORES_COLUMNS
    corr = table_keys("sae-scores.md", "## correlations.parquet")
    assert tuple(corr[: len(CORRELATION_COLUMNS)]) == CORRELATION_COLUMNS
    assert corr[len(CORRELATION_COLUMNS) :] == [
        "rho",
        "p_spearman",
        "q_spearman",
        "significant_spearman",
    ]
    from vislens.analysis.monosemanticity import Calibration

    cal_keys = {f.name for f in fields(Calibration)} | {
        "moderate",
        "monosemantic",
        "schema_version",
    }
    assert set(table_keys("sae-scores.md", "## calibration.json")) == cal_keys


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
def test_checkpoint_doc(arch):
    documented = set(table_keys("sae-checkpoint.md", "## cfg.json"))
    written = set(saelens_cfg(random_sae(arch, hook_layer=3).spec))
    assert written <= documented
    assert documented - written <= {"k", "rescale_acts_by_decoder_norm"}  # topk only


def test_eval_doc(tmp_path):
    import json

    import numpy as np

    from vislens.sae.evaluation import write_eval_report
    from vislens.sae.metrics import SAEMetrics

    m = SAEMetrics(n_tokens=3, mse=0.1, explained_variance=0.9, l0=2.0, dead_fraction=0.5, alive_fraction=0.5,
                   fvu=0.1, dense_fraction=0.0, cosine=0.9)  # fmt: skip
    from vislens.sae.downstream import DownstreamLoss

    loss = DownstreamLoss(
        layer=1, n_images=2, n_tokens=9, loss_clean=1.0, loss_spliced=1.5, loss_zero=3.0
    )
    context = {"sae": "s", "layer": 1, "tokens": "image", "site": "llm", "model": "toy",
               "downstream": loss.report(prompt="describe the image.", text_column="caption")}  # fmt: skip
    path = write_eval_report(m, np.array([0.0, 0.01]), tmp_path, context=context)[0]
    doc = json.loads(path.read_text())
    assert set(table_keys("sae-eval.md", "## eval.json")) == set(doc)
    assert set(table_keys("sae-eval.md", "## metrics")) == set(doc["metrics"]) == set(m.as_dict())
    assert set(table_keys("sae-eval.md", "## downstream")) == set(doc["downstream"])
    assert doc["downstream"]["loss_recovered"] == 0.75


def test_user_doc_python_example_runs(tmp_path, monkeypatch):
    text = (DOCS.parent / "sae.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/sae.md has no Python example"
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, "docs/sae.md", "exec"), {})
    assert (tmp_path / "demo-sae" / "cfg.json").is_file() and (
        tmp_path / "demo-sae-copy" / "cfg.json"
    ).is_file()
