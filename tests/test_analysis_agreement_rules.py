"""The aggregation rules (share = LatentLens', plurality) and the two agreement commands
giving the same numbers on the same data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from vislens import cli
from vislens.analysis import agreement as ag
from vislens.human.compare import model_key

MODELS = (
    "train_mlp-only_pixmo_cap_resize_olmo-7b_vit-l-14-336_step12000-unsharded",
    "train_mlp-only_pixmo_cap_resize_qwen2-7b_vit-l-14-336_seed10_step12000-unsharded",
    "train_mlp-only_pixmo_cap_resize_llama3-8b_siglip_step12000-unsharded",
)
N = 48


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    cli.main(list(argv))
    return capsys.readouterr().out


def _study_files(tmp_path: Path, n_users: int = 2) -> dict[str, object]:
    """LatentLens' own layouts (data.json with its `id`/`instance_id`/`model` names,
    evaluation_<user>_<session>.json, human_study_llm_results.json), two annotators so
    1–1 splits occur."""
    rng = np.random.default_rng(3)
    instances = []
    for i in range(N):
        model = MODELS[i % 3]
        instances.append(
            {
                "instance_id": f"{i:05d}_patch0",
                "id": f"{model}_{i:05d}_patch0",
                "model": model,
                "image_url": f"https://example.org/{i}.jpg",
                "patch_row": i % 24,
                "patch_col": (3 * i) % 24,
                "candidates": [["a red umbrella", " red"], ["blue sky", " sky"]],
            }
        )
    (tmp_path / "data.json").write_text(json.dumps(instances))
    truth = rng.integers(0, 2, N)
    votes: dict[str, list[int]] = {}
    evals = []
    for u in range(n_users):
        results = []
        for i, inst in enumerate(instances):
            says = int(truth[i]) if rng.random() < 0.7 else 1 - int(truth[i])
            votes.setdefault(inst["id"], []).append(says)
            results.append(
                {
                    "instanceId": inst["id"],
                    "selectedWords": [{"word": "a red umbrella", "relation": "concrete"}]
                    if says
                    else [],
                    "noneSelected": not says,
                    "timestamp": "2025-11-13T15:10:00.000Z",
                }
            )
        p = tmp_path / f"evaluation_user{u}_s1.json"
        p.write_text(json.dumps({"userId": f"user{u}", "sessionId": "s1", "results": results}))
        evals.append(p)
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
    return {
        "data": tmp_path / "data.json",
        "evals": evals,
        "llm": tmp_path / "llm.json",
        "votes": votes,
        "judge": judge,
    }


def test_share_rule_counts_a_one_one_split() -> None:
    wide = pd.DataFrame({"a": [1, 1, 0, 0], "b": [0, 1, 0, np.nan]}, index=list("wxyz"))
    share, none = ag.aggregate(wide, rule="share", threshold=0.5, order=[0, 1])
    assert share.to_dict() == {"w": 1, "x": 1, "y": 0, "z": 0} and none == []
    plural, dropped = ag.aggregate(wide, rule="plurality", threshold=0.5)
    assert set(plural.index) == {"x", "y", "z"} and dropped == ["w"]
    # a stricter share: a 1–1 split is now not interpretable (LatentLens: share >= threshold)
    strict, _ = ag.aggregate(wide, rule="share", threshold=0.75, order=[0, 1])
    assert strict["w"] == 0 and strict["x"] == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from(["no", "partly", "yes", None]), min_size=4, max_size=4),
        min_size=1,
        max_size=15,
    ),
    st.sampled_from([0.25, 0.5, 0.6, 1.0]),
)
def test_share_vote_is_the_highest_answer_with_enough_support(
    rows: list[list[str | None]], threshold: float
) -> None:
    order = ["no", "partly", "yes"]
    wide = pd.DataFrame(rows, columns=list("abcd"))
    got, dropped = ag.share_vote(wide, threshold, order=order)
    assert dropped == []
    for item, row in wide.iterrows():
        given_ = [order.index(v) for v in row if isinstance(v, str)]
        if not given_:
            assert item not in got.index
            continue
        # the slow, obvious reference: try every answer from the top down
        expected = next(
            r for r in (2, 1, 0) if sum(g >= r for g in given_) / len(given_) >= threshold
        )
        assert got[item] == order[expected]


def test_model_key_matches_latentlens_per_model_keys() -> None:
    assert model_key(MODELS[0]) == "olmo-7b_vit-l-14-336"
    assert model_key(MODELS[1]) == "qwen2-7b_vit-l-14-336_seed10"
    assert model_key("my-own-model") == "my-own-model"


@pytest.mark.parametrize("rule", ["share", "plurality"])
def test_both_commands_agree_on_latentlens_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str
) -> None:
    f = _study_files(tmp_path)
    corr_path = tmp_path / "corr.json"
    _run(
        capsys, "agree", "latentlens", str(f["data"]), *map(str, f["evals"]),  # type: ignore[arg-type]
        "--llm", str(f["llm"]), "-o", str(corr_path), "--rule", rule, "--n-resamples", "20",
    )  # fmt: skip
    corr = json.loads(corr_path.read_text())
    study = tmp_path / "st"
    _run(capsys, "init", str(study))
    _run(capsys, "human", "task", "patch", str(study), str(f["data"]), "--name", "ll")
    _run(capsys, "human", "import", "evaluations", str(study), "ll", *map(str, f["evals"]))  # type: ignore[arg-type]
    _run(capsys, "human", "import", "judge", str(study), "ll", str(f["llm"]), "--judge", "gpt")
    out = _run(
        capsys, "agree", "task", str(study), "ll", "--judge", "gpt", "--rule", rule,
        "--n-resamples", "20", "-o", str(tmp_path / "task.json"),
    )  # fmt: skip
    task = json.loads((tmp_path / "task.json").read_text())
    c, m = corr["interpretability_correlation"], task["majority_vs_judge"]
    for key in ("n", "cohens_kappa", "accuracy", "tp", "tn", "fp", "fn"):
        assert c[key] == pytest.approx(m[key]), key
    assert corr["rule"] == task["rule"] == rule
    assert sorted(corr["no_majority"]) == sorted(task["no_majority"])
    # the numbers themselves, from the votes by hand
    votes, judge = f["votes"], f["judge"]
    assert isinstance(votes, dict) and isinstance(judge, dict)
    if rule == "share":
        human = {k: int(np.mean(v) >= 0.5) for k, v in votes.items()}
    else:
        human = {k: v[0] for k, v in votes.items() if len(set(v)) == 1}
    keys = sorted(human)
    assert c["n"] == len(keys) and (rule == "plurality") == (len(keys) < N)
    assert c["cohens_kappa"] == pytest.approx(
        metrics.cohen_kappa_score([human[k] for k in keys], [judge[k] for k in keys])
    )
    # the judge line is printed, not only the inter-annotator figures
    assert f"annotators vs judge gpt (rule {rule}" in out and f"n {c['n']}" in out
    assert f"no majority {N - len(keys)}" in out
    # per_model: LatentLens' short keys, the full name kept
    pm = c["per_model"]
    assert set(pm) == {model_key(x) for x in MODELS}
    assert pm["olmo-7b_vit-l-14-336"]["model"] == MODELS[0]


def test_default_rule_is_share_in_both(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _study_files(tmp_path)
    out = _run(
        capsys, "agree", "latentlens", str(f["data"]), *map(str, f["evals"]),  # type: ignore[arg-type]
        "--llm", str(f["llm"]), "-o", str(tmp_path / "c.json"), "--n-resamples", "10",
    )  # fmt: skip
    assert "rule share" in out and json.loads((tmp_path / "c.json").read_text())["rule"] == "share"
    from vislens.human.compare import task_agreement

    assert task_agreement.__kwdefaults__["rule"] == "share"  # type: ignore[index]


def test_bad_rule_and_threshold_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _study_files(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(
            ["agree", "latentlens", str(f["data"]), str(f["evals"][0]), "--llm", str(f["llm"]),  # type: ignore[index]
             "--threshold", "0", "-o", str(tmp_path / "x.json")]
        )  # fmt: skip
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--threshold must be in (0, 1]" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "x.json").exists()
