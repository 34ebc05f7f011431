"""Agreement workflows over files and tasks, writing the layouts people already use:

- seed 002: human labels vs a model's classifications → ``<human>_vs_<model>_metrics.json``
  and ``<human>_vs_<model>_merged.csv`` (docs/formats/agreement-outputs.md);
- LatentLens: annotator files + judge results → ``correlation_results.json``;
- any task in the annotation store: humans among themselves and their majority vs a judge.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from vislens.analysis import agreement as ag
from vislens.errors import InputError
from vislens.human.kinds import BINARY_LABELS, RATING_QUESTIONS
from vislens.human.latentlens import read_evaluation, read_instances, read_llm_results
from vislens.human.seed002 import LABEL_CODES, label_table
from vislens.human.transfer import current_table
from vislens.io import write_json_atomic

SEED002_METRIC_KEYS = (
    "timestamp", "model_name", "samples", "accuracy", "tp", "tn", "fp", "fn", "phi",
    "human_labels", "model_classifications", "join_key",
)  # fmt: skip
CORRELATION_KEYS = (
    "n",
    "pearson_r",
    "pearson_p",
    "spearman_r",
    "spearman_p",
    "cohens_kappa",
    "accuracy",
    "per_model",
)
RATING_ORDER = ("no", "partly", "yes")
"""Rating answers from low to high, for ordinal statistics."""


def compare_label_files(
    human_path: Path, model_path: Path, out_dir: Path, *, n_resamples: int = 1000, seed: int = 0
) -> tuple[dict[str, Any], Path, Path]:
    """Seed 002's analysis: join on feature_index (else feature_id), then accuracy,
    confusion and phi, plus the rest of ``pair_agreement`` under ``agreement``."""
    human_path, model_path = Path(human_path), Path(model_path)
    human, model = label_table(human_path), label_table(model_path)
    if human["feature_index"].notna().all() and model["feature_index"].notna().all() and len(human):
        key = "feature_index"
    elif human["feature_id"].notna().all() and model["feature_id"].notna().all():
        key = "feature_id"
    else:
        raise InputError(
            f"{human_path} and {model_path}: no common key — give every record a feature_index or feature_id"
        )
    if model[key].duplicated().any():
        raise InputError(
            f"{model_path}: {key} {model[key][model[key].duplicated()].iloc[0]!r} appears twice"
        )
    merged = human[[key, "label"]].merge(
        model[[key, "label"]], on=key, how="inner", suffixes=("_human", "_model")
    )
    merged["y_true"] = merged["label_human"].map(LABEL_CODES).astype(int)
    merged["y_pred"] = merged["label_model"].map(LABEL_CODES).astype(int)
    rep = ag.pair_agreement(
        merged["y_true"].tolist(),
        merged["y_pred"].tolist(),
        labels=[0, 1],
        n_resamples=n_resamples,
        seed=seed,
    )
    if len(merged) == 0:
        rep.update({"tp": 0, "tn": 0, "fp": 0, "fn": 0})
        ag.mark_undefined(rep, "phi", "the files have no items in common")
    metrics: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "model_name": model_path.stem,
        "samples": len(merged),
        "accuracy": rep.get("accuracy"),
        **{k: rep[k] for k in ("tp", "tn", "fp", "fn")},
        "phi": rep.get("phi"),
        "human_labels": str(human_path),
        "model_classifications": str(model_path),
        "join_key": key,
        "agreement": {k: v for k, v in rep.items() if k not in ("tp", "tn", "fp", "fn")},
        "disagreements": merged.loc[merged["y_true"] != merged["y_pred"], key].tolist(),
    }
    base = f"{human_path.stem}_vs_{model_path.stem}"
    metrics_path, csv_path = (
        Path(out_dir) / f"{base}_metrics.json",
        Path(out_dir) / f"{base}_merged.csv",
    )
    write_json_atomic(metrics_path, metrics)
    from vislens.io import atomic_path

    with atomic_path(csv_path) as tmp:
        merged[[key, "label_human", "label_model", "y_true", "y_pred"]].to_csv(tmp, index=False)
    return metrics, metrics_path, csv_path


_LATENTLENS_MODEL = re.compile(r"^train_.+?_resize_(?P<key>.+)_step\d+(?:-unsharded)?$")
"""LatentLens' model names, e.g. ``train_mlp-only_pixmo_cap_resize_olmo-7b_vit-l-14-336_step12000-unsharded``;
their per-model key is the part between ``resize_`` and ``_step`` (``olmo-7b_vit-l-14-336``)."""


def model_key(model: str) -> str:
    """LatentLens' short per-model key (``<llm>_<encoder>[_seed<n>]``) when ``model`` is one of
    its checkpoint names; any other name is its own key."""
    m = _LATENTLENS_MODEL.match(model)
    return m.group("key") if m else model


def _per_model_keys(models: list[str]) -> dict[str, str]:
    """full name → key; a short key that two names share falls back to the full names."""
    short = {m: model_key(m) for m in models}
    taken: dict[str, set[str]] = {}
    for m, k in short.items():
        taken.setdefault(k, set()).add(m)
    return {m: (k if len(taken[k]) == 1 else m) for m, k in short.items()}


def _check_rule(rule: str, threshold: float) -> None:
    if rule not in ag.AGGREGATION_RULES:
        raise InputError(f"--rule {rule!r}: use one of {', '.join(ag.AGGREGATION_RULES)}")
    if not 0 < threshold <= 1:
        raise InputError(f"--threshold must be in (0, 1], got {threshold}")


def interpretability_report(
    human: pd.DataFrame,
    judge: pd.Series,
    groups: pd.Series,
    *,
    threshold: float = 0.5,
    rule: str = ag.DEFAULT_RULE,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """LatentLens' correlation_results layout: ``human`` is long rows (item_id, annotator,
    value 0/1 = "selected at least one word"); each item's answers become one by ``rule``
    (``share``: interpretable when at least ``threshold`` of its annotators say so, as
    LatentLens counts; ``plurality``: the single most common answer with at least that
    share, ties left out), which is compared with the judge's 0/1 per item."""
    _check_rule(rule, threshold)
    wide = ag.wide_ratings(human)
    majority, dropped = ag.aggregate(wide, rule=rule, threshold=threshold, order=[0, 1])
    majority = majority.astype(int)
    common = majority.index.intersection(judge.index)
    a, b = majority.loc[common], judge.loc[common].astype(int)
    kwargs: dict[str, Any] = {"labels": [0, 1], "n_resamples": n_resamples, "seed": seed}
    overall = ag.pair_agreement(a.tolist(), b.tolist(), **kwargs)
    per_model = ag.per_group(a, b, groups.reindex(common), **kwargs)
    keys = _per_model_keys(list(per_model))

    def _pick(r: dict[str, Any]) -> dict[str, Any]:
        out = {k: r.get(k) for k in CORRELATION_KEYS if k != "per_model"}
        out.update(
            {
                k: r[k]
                for k in (
                    "pearson_ci",
                    "spearman_ci",
                    "balanced_accuracy",
                    "mcc",
                    "tp",
                    "tn",
                    "fp",
                    "fn",
                )
                if k in r
            }
        )
        if "undefined" in r:
            out["undefined"] = r["undefined"]
        return out

    corr = _pick(overall)
    corr["per_model"] = {keys[g]: {**_pick(r), "model": g} for g, r in per_model.items()}
    return {
        "total_matched_instances": len(common),
        "total_human_instances": len(wide),
        "rule": rule,
        "threshold": threshold,
        "no_majority": dropped,
        "interpretability_correlation": corr,
        "inter_annotator": {
            **ag.fleiss_kappa(wide),
            **ag.krippendorff_alpha(wide),
            "pairwise": ag.pairwise_cohen(wide),
        },
        "disagreements": [str(i) for i in ag.disagreements(a, b)],
    }


def latentlens_correlation(
    instances_path: Path,
    evaluation_paths: list[Path],
    llm_results_path: Path,
    out_path: Path,
    *,
    threshold: float = 0.5,
    rule: str = ag.DEFAULT_RULE,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """correlation_results.json from LatentLens files (data.json, evaluation_*.json, judge)."""
    _check_rule(rule, threshold)
    instances = dict(read_instances(instances_path))
    aliases = {a: iid for iid, p in instances.items() for a in p.get("aliases", [])}
    known = {iid: {c["word"] for c in p["candidates_view"]} for iid, p in instances.items()}
    rows = []
    for path in evaluation_paths:
        data = read_evaluation(path, known)
        for r in data["results"]:
            rows.append(
                {
                    "item_id": r["instanceId"],
                    "annotator": str(data["userId"]),
                    "value": int(bool(r.get("selectedWords"))),
                }
            )
    if not rows:
        raise InputError("no annotator results given — pass evaluation_<user>_<session>.json files")
    human = pd.DataFrame(rows).drop_duplicates(["item_id", "annotator"], keep="last")
    verdicts = read_llm_results(llm_results_path)
    judge = pd.Series(
        {aliases.get(k, k): int(v["interpretable"]) for k, v in verdicts.items()}, dtype=int
    )
    unknown = [k for k in judge.index if k not in instances]
    if unknown:
        raise InputError(
            f"{llm_results_path}: instance_id {unknown[0]!r} is not in {instances_path}"
        )
    groups = pd.Series({iid: str(p.get("model", "")) for iid, p in instances.items()})
    report = interpretability_report(
        human, judge, groups, threshold=threshold, rule=rule, n_resamples=n_resamples, seed=seed
    )
    write_json_atomic(Path(out_path), report)
    return report


def _task_value(kind: str, value: Any, field: str) -> Any:
    if kind == "patch":
        return int(bool(value.get("words")))
    if kind == "rating":
        return value.get(field)
    return value


def task_agreement(
    store: Any,
    task_name: str,
    *,
    judge: str | None = None,
    threshold: float = 0.5,
    rule: str = ag.DEFAULT_RULE,
    field: str = "coherent",
    group_by: str | None = None,
    raters_a: list[str] | None = None,
    raters_b: list[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Agreement on a stored task: among annotators (pairwise Cohen, Fleiss, Krippendorff);
    their answer per item (made one by ``rule`` and ``threshold``, see
    ``vislens.analysis.agreement.aggregate``) against a judge's verdicts if ``judge`` is
    named; and that of annotators ``raters_a`` against that of ``raters_b``. The share
    rule's order: patch tasks not interpretable < interpretable; binary tasks the second
    label < the first (not-related < related); rating tasks no < partly < yes."""
    _check_rule(rule, threshold)
    task = store.task(task_name)
    if task.kind == "rating" and field not in RATING_QUESTIONS:
        raise InputError(f"--field must be one of {', '.join(RATING_QUESTIONS)} for a rating task")
    table = current_table(store, task_name)
    table["value"] = [_task_value(task.kind, v, field) for v in table["value"]]
    table = table.dropna(subset=["value"])
    wide = ag.wide_ratings(table)
    kwargs: dict[str, Any] = {"n_resamples": n_resamples, "seed": seed}
    order: list[Any] | None
    if task.kind == "patch":
        kwargs["labels"] = order = [0, 1]
    elif task.kind == "rating":
        kwargs.update(labels=list(RATING_ORDER), ordered=True)
        order = list(RATING_ORDER)
    else:
        kwargs.update(labels=list(task.labels) or list(BINARY_LABELS))
        kwargs["positive"] = kwargs["labels"][0]
        order = list(reversed(kwargs["labels"])) if len(kwargs["labels"]) == 2 else None
    if rule == "share" and order is None:
        raise InputError(
            f"task {task_name!r} has {len(kwargs['labels'])} unordered labels; the share rule "
            "needs two (or ordered answers) — use --rule plurality"
        )

    def _vote(w: pd.DataFrame) -> tuple[pd.Series, list[str]]:
        return ag.aggregate(w, rule=rule, threshold=threshold, order=order)

    alpha = (
        ag.krippendorff_alpha(wide, "ordinal", order=RATING_ORDER)
        if task.kind == "rating"
        else ag.krippendorff_alpha(wide)
    )
    report: dict[str, Any] = {
        "task": task_name,
        "kind": task.kind,
        "n_items": task.n_items,
        "n_annotators": int(wide.shape[1]),
        "n_rated_items": len(wide),
        "fleiss": ag.fleiss_kappa(wide),
        "krippendorff": alpha,
        "pairwise": ag.pairwise_cohen(wide),
    }
    if raters_a or raters_b:
        if not raters_a or not raters_b:
            raise InputError("give both groups: --raters-a NAME,NAME --raters-b NAME,NAME")
        unknown = sorted(set(raters_a + raters_b) - set(map(str, wide.columns)))
        if unknown:
            raise InputError(
                f"task {task_name!r} has no labels from {', '.join(unknown)} (annotators: "
                f"{', '.join(map(str, wide.columns))})"
            )
        ma, drop_a = _vote(wide[raters_a])
        mb, drop_b = _vote(wide[raters_b])
        both = ma.index.intersection(mb.index)
        report["groups"] = {
            "a": raters_a,
            "b": raters_b,
            "rule": rule,
            "threshold": threshold,
            "agreement": ag.pair_agreement(ma.loc[both].tolist(), mb.loc[both].tolist(), **kwargs),
            "no_majority_a": drop_a,
            "no_majority_b": drop_b,
            "disagreements": [str(i) for i in ag.disagreements(ma.loc[both], mb.loc[both])],
        }
    if judge is None:
        return report
    items = {it.external_id: it.payload for it in store.items(task_name)}
    verdicts = {ext: v for ext, _, v in store.verdicts(task_name, judge)}
    if not verdicts:
        raise InputError(
            f"task {task_name!r} has no verdicts from judge {judge!r} — import them first"
        )
    jv = pd.Series(
        {
            k: (
                int(bool(v.get("interpretable")))
                if task.kind == "patch"
                else (v.get(field) if task.kind == "rating" else v)
            )
            for k, v in verdicts.items()
        }
    )
    majority, dropped = _vote(wide)
    common = majority.index.intersection(jv.index)
    a, b = majority.loc[common], jv.loc[common]
    report["judge"] = judge
    report["rule"] = rule
    report["threshold"] = threshold
    report["majority_vs_judge"] = ag.pair_agreement(a.tolist(), b.tolist(), **kwargs)
    report["no_majority"] = dropped
    if group_by:
        groups = pd.Series(
            {
                k: str(p.get(group_by, p.get("source", {}).get(group_by, "")))
                for k, p in items.items()
            }
        )
        report["per_group"] = ag.per_group(a, b, groups.reindex(common), **kwargs)
    report["disagreements"] = [str(i) for i in ag.disagreements(a, b)]
    return report
