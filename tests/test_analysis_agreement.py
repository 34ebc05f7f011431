"""Agreement statistics equal the libraries' own calls; degenerate cases are undefined."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics
from statsmodels.stats import inter_rater

from helpers_human import write_seed002_pair
from vislens.analysis import agreement as ag
from vislens.human.compare import compare_label_files


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binary_pair_matches_libraries(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, 200).tolist()
    b = [x if rng.random() < 0.7 else 1 - x for x in a]
    rep = ag.pair_agreement(a, b, labels=[0, 1], n_resamples=300, seed=seed)
    assert rep["accuracy"] == pytest.approx(metrics.accuracy_score(a, b))
    assert rep["balanced_accuracy"] == pytest.approx(metrics.balanced_accuracy_score(a, b))
    assert rep["cohens_kappa"] == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert rep["mcc"] == pytest.approx(metrics.matthews_corrcoef(a, b)) == rep["phi"]
    tn, fp, fn, tp = metrics.confusion_matrix(a, b, labels=[0, 1]).ravel()
    assert (rep["tp"], rep["tn"], rep["fp"], rep["fn"]) == (tp, tn, fp, fn)
    assert rep["pearson_r"] == pytest.approx(stats.pearsonr(a, b).statistic)
    assert rep["pearson_p"] == pytest.approx(stats.pearsonr(a, b).pvalue)
    assert rep["spearman_r"] == pytest.approx(stats.spearmanr(a, b).statistic)
    ci = stats.bootstrap(
        (np.array(a, float), np.array(b, float)),
        lambda x, y: stats.pearsonr(x, y).statistic,
        paired=True,
        vectorized=False,
        n_resamples=300,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    assert rep["pearson_ci"] == pytest.approx(
        [ci.confidence_interval.low, ci.confidence_interval.high]
    )
    assert rep["pearson_ci"][0] <= rep["pearson_r"] <= rep["pearson_ci"][1]


def test_multiclass_pair_matches_libraries() -> None:
    rng = np.random.default_rng(7)
    a = rng.choice(["yes", "partly", "no"], 150).tolist()
    b = [x if rng.random() < 0.6 else rng.choice(["yes", "partly", "no"]) for x in a]
    labels = ["yes", "partly", "no"]
    rep = ag.pair_agreement(a, b, labels=labels)
    assert rep["cohens_kappa"] == pytest.approx(metrics.cohen_kappa_score(a, b, labels=labels))
    assert rep["mcc"] == pytest.approx(metrics.matthews_corrcoef(a, b))
    assert rep["confusion"] == metrics.confusion_matrix(a, b, labels=labels).tolist()


def test_many_raters_match_statsmodels_and_krippendorff() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 60)
    data = np.array(
        [[t if rng.random() < 0.75 else rng.integers(0, 3) for t in truth] for _ in range(5)]
    )
    wide = pd.DataFrame(data.T, columns=[f"r{i}" for i in range(5)])
    table, _ = inter_rater.aggregate_raters(data.T)
    assert ag.fleiss_kappa(wide)["fleiss_kappa"] == pytest.approx(inter_rater.fleiss_kappa(table))
    with_missing = wide.astype(float)
    with_missing.iloc[rng.integers(0, 60, 30), rng.integers(0, 5, 30)] = np.nan
    expected = krippendorff.alpha(
        reliability_data=with_missing.to_numpy().T, level_of_measurement="nominal"
    )
    got = ag.krippendorff_alpha(with_missing)["krippendorff_alpha"]
    assert got == pytest.approx(expected)
    assert ag.fleiss_kappa(with_missing)["n_items"] == int(with_missing.notna().all(axis=1).sum())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "b", "c", None]), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from([0.5, 0.6, 1.0]),
)
def test_majority_vote_property(rows: list[list[str | None]], threshold: float) -> None:
    wide = pd.DataFrame(rows, columns=["x", "y", "z"])
    winners, dropped = ag.majority_vote(wide, threshold)
    for item, row in wide.iterrows():
        votes = [v for v in row if v is not None and not pd.isna(v)]
        if not votes:
            assert item not in winners.index and str(item) not in dropped
            continue
        counts = pd.Series(votes).value_counts()
        if item in winners.index:
            assert counts[winners[item]] / len(votes) >= threshold
            assert counts[winners[item]] == counts.max()
            assert (counts == counts.max()).sum() == 1 or threshold > 0.5
        else:
            assert str(item) in dropped


def test_degenerate_cases_are_undefined_with_reasons() -> None:
    rep = ag.pair_agreement([1, 1, 1, 1], [1, 0, 1, 1], labels=[0, 1])
    assert rep["accuracy"] == 0.75
    for key in ("mcc", "phi", "balanced_accuracy", "pearson_r", "spearman_ci"):
        assert rep[key] is None and rep["undefined"][key]
    same = ag.pair_agreement([0, 0, 0], [0, 0, 0], labels=[0, 1])
    assert same["cohens_kappa"] is None and "cohens_kappa" in same["undefined"]
    empty = ag.pair_agreement([], [], labels=[0, 1])
    assert empty["n"] == 0 and "no items in common" in empty["undefined"]["accuracy"]
    one_rater = ag.fleiss_kappa(pd.DataFrame({"r": [1, 0]}))
    assert (
        one_rater["fleiss_kappa"] is None and "two raters" in one_rater["undefined"]["fleiss_kappa"]
    )
    constant = ag.krippendorff_alpha(pd.DataFrame({"r1": [1, 1], "r2": [1, 1]}))
    assert constant["krippendorff_alpha"] is None and constant["undefined"]["krippendorff_alpha"]


def test_per_group_and_disagreements() -> None:
    rng = np.random.default_rng(5)
    idx = [f"i{k}" for k in range(90)]
    a = pd.Series(rng.integers(0, 2, 90), index=idx)
    b = pd.Series(rng.integers(0, 2, 90), index=idx)
    groups = pd.Series(rng.choice(["m1", "m2", "m3"], 90), index=idx)
    per = ag.per_group(a, b, groups, labels=[0, 1], n_resamples=100)
    for g, rep in per.items():
        sel = groups == g
        assert rep["n"] == int(sel.sum())
        assert rep["cohens_kappa"] == pytest.approx(metrics.cohen_kappa_score(a[sel], b[sel]))
    assert ag.disagreements(a, b) == [i for i in idx if a[i] != b[i]]


def _seed002_files(tmp_path: Path) -> tuple[Path, Path]:
    return write_seed002_pair(
        tmp_path,
        "12-gemmascope-res-65k__l0-21_human_labels_formatting.json",
        "12-gemmascope-res-65k__l0-21_formatting_classified_deepseek-v3-0324.json",
    )


def test_seed002_example_reproduced_from_label_files(tmp_path: Path) -> None:
    hp, mp = _seed002_files(tmp_path)
    metrics_, m_path, csv_path = compare_label_files(hp, mp, tmp_path / "metrics", n_resamples=200)
    assert (metrics_["tp"], metrics_["tn"], metrics_["fp"], metrics_["fn"]) == (69, 201, 5, 25)
    assert metrics_["samples"] == 300
    assert round(metrics_["accuracy"], 3) == 0.900
    assert round(metrics_["phi"], 3) == 0.764
    assert metrics_["join_key"] == "feature_index"
    assert m_path.name == f"{hp.stem}_vs_{mp.stem}_metrics.json"
    assert csv_path.name == f"{hp.stem}_vs_{mp.stem}_merged.csv"
    on_disk = json.loads(m_path.read_text())
    for key in (
        "timestamp",
        "model_name",
        "samples",
        "accuracy",
        "tp",
        "tn",
        "fp",
        "fn",
        "phi",
        "human_labels",
        "model_classifications",
        "join_key",
    ):
        assert key in on_disk
    assert on_disk["model_name"] == mp.stem
    merged = pd.read_csv(csv_path)
    assert list(merged.columns) == [
        "feature_index",
        "label_human",
        "label_model",
        "y_true",
        "y_pred",
    ]
    assert len(on_disk["disagreements"]) == 30


def test_agree_labels_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vislens.cli import app

    hp, mp = _seed002_files(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "agree",
            "labels",
            str(hp),
            str(mp),
            "--out-dir",
            str(tmp_path / "m"),
            "--n-resamples",
            "100",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (
        "accuracy 0.900" in res.output
        and "TP=69 TN=201 FP=5 FN=25" in res.output
        and "phi 0.764" in res.output
    )


def test_label_outside_label_set_names_file_and_record(tmp_path: Path) -> None:
    from vislens.errors import InputError

    hp, mp = _seed002_files(tmp_path)
    recs = json.loads(mp.read_text())
    recs[17]["label"] = "maybe"
    mp.write_text(json.dumps(recs))
    with pytest.raises(InputError, match=r"record 17.*'maybe'"):
        compare_label_files(hp, mp, tmp_path)
