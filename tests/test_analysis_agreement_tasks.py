"""Agreement workflows: LatentLens correlation_results.json and stored tasks vs a judge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics
from typer.testing import CliRunner

from helpers_human import make_study, write_export
from vislens.human.compare import latentlens_correlation, task_agreement
from vislens.human.session import TaskSession
from vislens.human.tasks import create_binary_task
from vislens.store.annotations import AnnotationStore

N = 60


def _latentlens_files(
    tmp_path: Path, rng: np.random.Generator
) -> tuple[Path, list[Path], Path, dict[str, int]]:
    instances = [
        {
            "id": f"m{i % 3}_{i:05d}_patch0",
            "instance_id": f"{i:05d}_patch0",
            "model": f"m{i % 3}",
            "image_url": "x.png",
            "patch_row": 1,
            "patch_col": 1,
            "candidates": [["w one", "w"], ["v two", "v"]],
        }
        for i in range(N)
    ]
    (tmp_path / "data.json").write_text(json.dumps(instances))
    truth = rng.integers(0, 2, N)
    votes: dict[str, list[int]] = {}
    paths = []
    for user in ("A", "B", "C"):
        results = []
        for i, inst in enumerate(instances):
            says = int(truth[i]) if rng.random() < 0.8 else 1 - int(truth[i])
            votes.setdefault(inst["id"], []).append(says)
            results.append(
                {
                    "instanceId": inst["id"],
                    "noneSelected": not says,
                    "timestamp": "2025-01-01T00:00:00Z",
                    "selectedWords": [{"word": "w one", "relation": "concrete"}] if says else [],
                }
            )
        p = tmp_path / f"evaluation_{user}_s.json"
        p.write_text(json.dumps({"userId": user, "sessionId": "s", "results": results}))
        paths.append(p)
    judge = {
        inst["id"]: int(truth[i]) if rng.random() < 0.85 else 1 - int(truth[i])
        for i, inst in enumerate(instances)
    }
    llm = {
        "results": [
            {
                "instance_id": inst["instance_id"],
                "gpt_response": {"interpretable": bool(judge[inst["id"]])},
            }
            for inst in instances
        ]
    }
    (tmp_path / "llm.json").write_text(json.dumps(llm))
    majority = {k: int(np.mean(v) >= 0.5) for k, v in votes.items()}
    return (
        tmp_path / "data.json",
        paths,
        tmp_path / "llm.json",
        {"judge": judge, "majority": majority},
    )  # type: ignore[dict-item]


def test_latentlens_correlation_matches_libraries(tmp_path: Path) -> None:
    data, evals, llm, truth = _latentlens_files(tmp_path, np.random.default_rng(11))
    out = tmp_path / "correlation_results.json"
    rep = latentlens_correlation(data, evals, llm, out, threshold=0.5, n_resamples=200)
    on_disk = json.loads(out.read_text())
    c = on_disk["interpretability_correlation"]
    from vislens.human.compare import CORRELATION_KEYS

    assert set(CORRELATION_KEYS) <= set(c)
    ids = sorted(truth["majority"])
    h = [truth["majority"][i] for i in ids]
    j = [truth["judge"][i] for i in ids]
    assert c["n"] == N == rep["total_matched_instances"]
    assert c["cohens_kappa"] == pytest.approx(metrics.cohen_kappa_score(h, j))
    assert c["pearson_r"] == pytest.approx(stats.pearsonr(h, j).statistic)
    assert c["accuracy"] == pytest.approx(metrics.accuracy_score(h, j))
    for model, sub in c["per_model"].items():
        sel = [k for k, i in enumerate(ids) if i.startswith(model + "_")]
        assert sub["n"] == len(sel)
        assert sub["cohens_kappa"] == pytest.approx(
            metrics.cohen_kappa_score([h[k] for k in sel], [j[k] for k in sel])
        )
    assert set(on_disk["inter_annotator"]["pairwise"]) == {"A vs B", "A vs C", "B vs C"}
    # a stricter majority changes which items count as interpretable
    strict = latentlens_correlation(
        data, evals, llm, tmp_path / "strict.json", threshold=1.0, n_resamples=50
    )
    assert (
        strict["interpretability_correlation"]["accuracy"] != c["accuracy"]
        or strict["disagreements"] != rep["disagreements"]
    )


def test_agree_latentlens_cli(tmp_path: Path) -> None:
    from vislens.cli import app

    data, evals, llm, _ = _latentlens_files(tmp_path, np.random.default_rng(2))
    out = tmp_path / "corr.json"
    res = CliRunner().invoke(
        app,
        [
            "agree",
            "latentlens",
            str(data),
            *map(str, evals),
            "--llm",
            str(llm),
            "-o",
            str(out),
            "--n-resamples",
            "50",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["interpretability_correlation"]["n"] == N


def test_task_agreement_humans_and_judge(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    study = make_study(tmp_path / "st")
    store = AnnotationStore.for_study(study)
    create_binary_task(store, write_export(tmp_path / "e.json", 80), n=40, name="t")
    s = TaskSession(store, "t")
    truth = rng.choice(["related", "not-related"], 40)
    flip = {"related": "not-related", "not-related": "related"}
    votes = {}
    for name in ("a", "b", "c", "d"):
        ann = store.add_annotator(name)
        for pos in range(40):
            v = str(truth[pos]) if rng.random() < 0.8 else flip[str(truth[pos])]
            votes.setdefault(str(pos), []).append(v)
            s.act(ann, "label", s.item(position=pos), v)
    judge = {
        str(p): str(truth[p]) if rng.random() < 0.9 else flip[str(truth[p])] for p in range(40)
    }
    for p in range(40):
        store.set_verdict("t", s.item(position=p).id, "llm", judge[str(p)])
    rep = task_agreement(store, "t", judge="llm", threshold=0.75, rule="plurality", n_resamples=100)
    assert rep["n_annotators"] == 4 and rep["n_rated_items"] == 40
    majority = {}
    for k, vs in votes.items():
        top, n_top = pd.Series(vs).value_counts().index[0], pd.Series(vs).value_counts().iloc[0]
        if n_top / len(vs) >= 0.75:
            majority[k] = top
    assert sorted(rep["no_majority"]) == sorted(k for k in votes if k not in majority)
    keys = sorted(majority)
    m = rep["majority_vs_judge"]
    assert m["n"] == len(keys)
    assert m["cohens_kappa"] == pytest.approx(
        metrics.cohen_kappa_score([majority[k] for k in keys], [judge[k] for k in keys])
    )
    assert m["tp"] == sum(majority[k] == "related" and judge[k] == "related" for k in keys)
    from statsmodels.stats import inter_rater

    codes = np.array([votes[str(p)] for p in range(40)])
    table, _ = inter_rater.aggregate_raters(codes)
    assert rep["fleiss"]["fleiss_kappa"] == pytest.approx(inter_rater.fleiss_kappa(table))
    # the default (share) rule: related when at least 0.75 of the four said so, else not
    share = task_agreement(store, "t", judge="llm", threshold=0.75, n_resamples=20)
    assert share["rule"] == "share" and share["no_majority"] == []
    by_share = {
        k: "related" if vs.count("related") / 4 >= 0.75 else "not-related"
        for k, vs in votes.items()
    }
    ks = sorted(by_share)
    assert share["majority_vs_judge"]["n"] == 40
    assert share["majority_vs_judge"]["cohens_kappa"] == pytest.approx(
        metrics.cohen_kappa_score([by_share[k] for k in ks], [judge[k] for k in ks])
    )


def test_rating_task_is_ordinal_and_groups_compare(tmp_path: Path) -> None:
    import krippendorff

    from vislens.human.tasks import create_rating_task

    rng = np.random.default_rng(9)
    study = make_study(tmp_path / "st")
    store = AnnotationStore.for_study(study)
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    cards = [{"feature_id": f"f{i}", "label": "x", "images": ["a.png"]} for i in range(30)]
    (tmp_path / "cards.json").write_text(json.dumps(cards))
    create_rating_task(store, tmp_path / "cards.json", name="r")
    s = TaskSession(store, "r")
    answers = ["no", "partly", "yes"]
    given: dict[str, list[float]] = {}
    for name in ("a", "b", "c", "d"):
        ann = store.add_annotator(name)
        for pos in range(30):
            coh = answers[int(rng.integers(0, 3))]
            given.setdefault(name, []).append(answers.index(coh))
            s.act(ann, "label", s.item(position=pos), {"coherent": coh, "label": "yes"})
    rep = task_agreement(
        store, "r", field="coherent", raters_a=["a", "b"], raters_b=["c", "d"], n_resamples=50
    )
    data = np.array([given[n] for n in ("a", "b", "c", "d")], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert rep["krippendorff"]["level"] == "ordinal"
    assert rep["krippendorff"]["krippendorff_alpha"] == pytest.approx(expected)
    g = rep["groups"]
    assert (
        g["a"] == ["a", "b"]
        and g["agreement"]["n"] + len(set(g["no_majority_a"]) | set(g["no_majority_b"])) >= 1
    )
    with pytest.raises(Exception, match="no labels from zed"):
        task_agreement(store, "r", raters_a=["a"], raters_b=["zed"])


def test_ordered_pair_correlations_use_ranks() -> None:
    from vislens.analysis.agreement import pair_agreement

    rng = np.random.default_rng(1)
    order = ["no", "partly", "yes"]
    a = rng.choice(order, 80).tolist()
    b = [x if rng.random() < 0.6 else rng.choice(order) for x in a]
    rep = pair_agreement(a, b, labels=order, ordered=True, n_resamples=50)
    ra, rb = [order.index(x) for x in a], [order.index(x) for x in b]
    assert rep["spearman_r"] == pytest.approx(stats.spearmanr(ra, rb).statistic)
    assert rep["pearson_r"] == pytest.approx(stats.pearsonr(ra, rb).statistic)
