"""Label scoring: does a feature's label predict which images activate it?

An image version of delphi's *detection* scorer. For each labelled feature of
``sae/<name>/labels.json`` the judge is shown, one image per request, a seeded mix of
held-out top-activating images (from ``topk.parquet``, skipping the ``n_images`` strongest
that the labelling grid showed) and non-activating images (the feature's value is 0 on them
in the code store; without a code store, images outside the feature's top-k). It answers
whether the image matches the label, with a confidence. Per feature we compute balanced
accuracy, precision and recall of the yes/no answers and the ROC AUC of the stated
confidence (scikit-learn). Every request goes through the judge cache, so a re-run sends
nothing new. Outputs: ``sae/<name>/label_scores.parquet`` (one row per feature) and
``label_judgements.parquet`` (one row per judged image); docs/formats/judge-label-scores.md.
``judge_probes`` and a ``Scorer`` (task, request, files) are shared with the fuzzing scorer
in ``label_fuzz``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import BaseModel, Field

from vislens.errors import InputError
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.runner import JudgeJob, RunSummary, judge_all
from vislens.judge.templates import load_template
from vislens.study import Study

TASK = "label_score"
LABEL_SCORES_FILE = "label_scores.parquet"
JUDGEMENTS_FILE = "label_judgements.parquet"
LABEL_SCORES_SCHEMA_VERSION = 1
LABEL_SCORES_COLUMNS = (
    "feature", "label", "n_positive", "n_negative", "n_failed", "tp", "fp", "tn", "fn",
    "balanced_accuracy", "precision", "recall", "auc", "negatives",
)  # fmt: skip
JUDGEMENT_COLUMNS = (
    "feature", "item_index", "item_id", "activating", "value", "status", "matches", "confidence",
)  # fmt: skip
TILE = 224


class Detection(BaseModel):
    """The judge's answer for one (feature, image) pair."""

    matches: bool
    confidence: float = Field(ge=0.0, le=1.0)
    """Probability that the image matches the label."""


@dataclass(frozen=True)
class Probe:
    """One image shown to the judge for one feature."""

    feature: int
    item_index: int
    item_id: str
    activating: bool
    value: float


@dataclass
class FeatureProbes:
    """Everything the judge sees about one feature."""

    feature: int
    label: str
    description: str
    probes: list[Probe]
    negatives: str
    """Where the non-activating images come from: ``codes`` (value 0) or ``not_in_topk``."""


def _nonzero_items(study: Study, sae: str) -> tuple[list[str], dict[int, set[int]]] | None:
    """The code store's item ids and, per feature, the item indices with a non-zero value;
    None when there is no code store."""
    from vislens.sae.runs import open_codes

    try:
        codes = open_codes(study, sae)
        mat = codes.item_matrix().tocsc()
    except (InputError, OSError):
        return None
    return list(codes.item_ids), {
        f: set(mat.indices[mat.indptr[f] : mat.indptr[f + 1]].tolist()) for f in range(mat.shape[1])
    }


def select_probes(
    study: Study,
    sae: str,
    *,
    n_positive: int = 5,
    n_negative: int = 5,
    seed: int = 0,
    features: list[int] | None = None,
    limit: int | None = None,
) -> list[FeatureProbes]:
    """The seeded mix of held-out activating and non-activating images per labelled feature."""
    from vislens.data.table import read_records
    from vislens.judge.tasks.label import read_labels
    from vislens.sae.top_items import TOPK_FILE

    sae_dir = Path(study.sae_dir(sae))
    labels = read_labels(sae_dir / "labels.json")
    if not (sae_dir / TOPK_FILE).is_file():
        raise InputError(
            f"{sae_dir / TOPK_FILE}: no top items — run `vislens sae topk` for SAE '{sae}' first"
        )
    topk = pd.read_parquet(sae_dir / TOPK_FILE)
    entries = labels.get("features") or []
    if features:
        wanted = set(features)
        entries = [e for e in entries if int(e["feature"]) in wanted]
        missing = wanted - {int(e["feature"]) for e in entries}
        if missing:
            raise InputError(
                f"{sae_dir / 'labels.json'}: no label for feature(s) "
                f"{', '.join(map(str, sorted(missing)))}"
            )
    if limit is not None:
        entries = entries[:limit]
    if not entries:
        raise InputError(f"{sae_dir / 'labels.json'}: no labelled features to score")
    nonzero = _nonzero_items(study, sae)
    ids = nonzero[0] if nonzero else [r.item_id for r in read_records(study.images_path)]
    by_feature = {int(str(f)): g.sort_values("rank") for f, g in topk.groupby("feature")}
    out = []
    for e in entries:
        f = int(e["feature"])
        top = by_feature.get(f)
        if top is None or top.empty:
            raise InputError(f"feature {f} is labelled but has no top items in {TOPK_FILE}")
        shown = int(e.get("n_images") or 0)
        held = top.iloc[shown:]
        rng = np.random.default_rng([seed, f])
        if len(held) > n_positive:
            held = held.iloc[np.sort(rng.choice(len(held), n_positive, replace=False))]
        probes = [
            Probe(f, int(r["item_index"]), str(r["item_id"]), True, float(r["value"]))
            for r in held.to_dict("records")
        ]
        if nonzero is not None:
            active = nonzero[1].get(f, set())
            negatives = "codes"
            pool = [i for i in range(len(ids)) if i not in active]
        else:
            in_top = set(map(str, top["item_id"]))
            negatives = "not_in_topk"
            pool = [i for i, item_id in enumerate(ids) if item_id not in in_top]
        if len(pool) > n_negative:
            pool = sorted(rng.choice(pool, n_negative, replace=False).tolist())
        probes += [Probe(f, i, ids[i], False, 0.0) for i in pool]
        order = rng.permutation(len(probes))
        out.append(
            FeatureProbes(
                f,
                str(e["label"]),
                str(e.get("description") or ""),
                [probes[i] for i in order],
                negatives,
            )
        )
    return out


def build_job(
    fp: FeatureProbes, probe: Probe, image: Image.Image, model: str, params: dict[str, Any]
) -> JudgeJob[Detection]:
    tpl = load_template(TASK)
    note = f'\nIts longer description: "{fp.description}"' if fp.description else ""
    system, user = tpl.render(label=fp.label, description_note=note)
    tile = image.convert("RGB").resize((TILE, TILE))
    req = ChatRequest(
        model, [{"role": "system", "content": system}, user_message(user, [tile])], dict(params)
    )
    return JudgeJob(f"{probe.feature}:{probe.item_id}", req, Detection)


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def feature_metrics(y_true: list[bool], y_pred: list[bool], conf: list[float]) -> dict[str, Any]:
    """Confusion counts, balanced accuracy, precision, recall and AUC of one feature's answers."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    tn, fp, fn, tp = (
        confusion_matrix(t, p, labels=[False, True]).ravel().tolist() if len(t) else [0] * 4
    )
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    both = t.any() and (~t).any()
    return {
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "balanced_accuracy": (recall + specificity) / 2 if both else math.nan,
        "precision": _ratio(tp, tp + fp),
        "recall": recall,
        "auc": float(roc_auc_score(t, np.asarray(conf, dtype=float))) if both else math.nan,
    }  # fmt: skip


@dataclass(frozen=True)
class Scorer:
    """What differs between the label scorers: the judge task, the request for one probe,
    the files written and the extra judgement columns."""

    task: str
    """Judge task: names the prompt template and is recorded in the cache and outputs."""
    scores_file: str
    judgements_file: str
    judgement_columns: tuple[str, ...]
    build: Callable[[FeatureProbes, Probe, Image.Image, str, dict[str, Any]], JudgeJob[Detection]]
    extra: Callable[[Probe], dict[str, Any]]
    """The probe's values for the judgement columns beyond ``JUDGEMENT_COLUMNS``."""


DETECTION = Scorer(
    TASK, LABEL_SCORES_FILE, JUDGEMENTS_FILE, JUDGEMENT_COLUMNS, build_job, lambda _: {}
)


def score_labels(
    study: Study,
    sae: str,
    *,
    client: JudgeClient,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    probes: list[FeatureProbes] | None = None,
    n_positive: int = 5,
    n_negative: int = 5,
    seed: int = 0,
    features: list[int] | None = None,
    limit: int | None = None,
    write: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, RunSummary]:
    """Judge every probe of every labelled feature; (label scores, judgements, run summary).

    Writes ``label_scores.parquet``, ``label_judgements.parquet`` and
    ``label_scores.summary.json`` into ``sae/<name>/`` when ``write``.
    """
    if probes is None:
        probes = select_probes(
            study, sae, n_positive=n_positive, n_negative=n_negative, seed=seed,
            features=features, limit=limit,
        )  # fmt: skip
    return judge_probes(
        study, sae, probes, DETECTION, client=client, cfg=cfg, cache=cache, seed=seed, write=write
    )


def judge_probes(
    study: Study,
    sae: str,
    probes: list[FeatureProbes],
    scorer: Scorer,
    *,
    client: JudgeClient,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    seed: int = 0,
    write: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, RunSummary]:
    """Ask the judge about every probe with ``scorer``'s requests and score each feature."""
    from vislens.data.sources import load_image
    from vislens.data.table import read_records
    from vislens.judge.backends import request_params, run_settings
    from vislens.judge.tasks.common import write_summary

    cfg = cfg or JudgeConfig(model=client.model)
    records = {r.item_id: r for r in read_records(study.images_path)}
    params = request_params(cfg)
    jobs, pairs = [], []
    for fp in probes:
        for pr in fp.probes:
            rec = records.get(pr.item_id)
            if rec is None:
                raise InputError(f"{study.images_path}: no item '{pr.item_id}'")

            def make(fp: FeatureProbes = fp, pr: Probe = pr, rec: Any = rec) -> ChatRequest:
                return scorer.build(fp, pr, load_image(rec), client.model, params).build()

            job_id = f"{pr.feature}:{pr.item_id}" + "".join(
                f":{v}" for v in scorer.extra(pr).values()
            )
            jobs.append(JudgeJob(job_id, make, Detection))
            pairs.append((fp, pr))
    tpl = load_template(scorer.task)
    settings = run_settings(cfg, task=scorer.task, template=tpl.id, progress="scoring labels")
    outcomes, summary = judge_all(client, jobs, cache=cache, settings=settings)
    rows = []
    for (_, pr), o in zip(pairs, outcomes, strict=True):
        rows.append(
            {
                "feature": pr.feature, "item_index": pr.item_index, "item_id": pr.item_id,
                "activating": pr.activating, "value": pr.value, "status": o.status,
                "matches": None if o.value is None else o.value.matches,
                "confidence": math.nan if o.value is None else o.value.confidence,
                **scorer.extra(pr),
            }
        )  # fmt: skip
    judgements = pd.DataFrame(rows, columns=list(scorer.judgement_columns))
    judgements = judgements.astype({"feature": "int32", "item_index": "int64", "value": "float32"})
    table = _scores_table(probes, judgements)
    if write:
        sae_dir = Path(study.sae_dir(sae))
        meta = {
            "schema_version": str(LABEL_SCORES_SCHEMA_VERSION), "task": scorer.task,
            "template": tpl.id, "model": client.model, "sae": sae, "seed": str(seed),
        }  # fmt: skip
        _write_table(table, sae_dir / scorer.scores_file, meta)
        _write_table(judgements, sae_dir / scorer.judgements_file, meta)
        write_summary(sae_dir / scorer.scores_file, summary)
    return table, judgements, summary


def _scores_table(probes: list[FeatureProbes], judgements: pd.DataFrame) -> pd.DataFrame:
    """One row per feature: counts and metrics of its valid answers."""
    scores = []
    for fp in probes:
        mine = judgements[judgements["feature"] == fp.feature]
        ok = mine[mine["status"] == "ok"]
        scores.append(
            {
                "feature": fp.feature,
                "label": fp.label,
                "n_positive": int(mine["activating"].sum()),
                "n_negative": int((~mine["activating"].astype(bool)).sum()),
                "n_failed": int(len(mine) - len(ok)),
                **feature_metrics(
                    ok["activating"].astype(bool).tolist(),
                    ok["matches"].astype(bool).tolist(),
                    ok["confidence"].astype(float).tolist(),
                ),
                "negatives": fp.negatives,
            }
        )
    return pd.DataFrame(scores, columns=list(LABEL_SCORES_COLUMNS)).astype({"feature": "int32"})


def _write_table(df: pd.DataFrame, path: Path, meta: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vislens.io import atomic_path

    t = pa.Table.from_pandas(df, preserve_index=False)
    t = t.replace_schema_metadata(
        {
            **(t.schema.metadata or {}),
            **{f"vislens.{k}".encode(): v.encode() for k, v in meta.items()},
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(t, tmp)


def with_label_scores(scores: pd.DataFrame, label_scores: pd.DataFrame) -> pd.DataFrame:
    """``scores.parquet``'s table with each feature's label, balanced accuracy and AUC beside
    its MS (NaN for features that were not scored). Nothing is written: ``scores.parquet``
    keeps its own layout and is rewritten by ``vislens sae score``."""
    cols = label_scores[["feature", "label", "balanced_accuracy", "auc"]].rename(
        columns={"balanced_accuracy": "label_balanced_accuracy", "auc": "label_auc"}
    )
    return scores.merge(cols, on="feature", how="left")


GROUNDTRUTH_COLUMNS = ("feature", "label", "best_concept", "best_auroc", "named", "label_concepts")


def label_concepts(label: str) -> list[str]:
    """The toy world's concepts a label names, as whole words (plurals in -s or -es allowed)."""
    import re

    from vislens.sae.groundtruth import CONCEPTS

    words = set(re.findall(r"[a-z]+", label.lower()))
    return [c for c in CONCEPTS if words & {c, f"{c}s", f"{c}es"}]


def groundtruth_label_check(
    codes_ncf: np.ndarray, labels: Any, feature_labels: dict[int, str]
) -> pd.DataFrame:
    """On the toy world, does each label name its feature's best-matching concept?

    ``codes_ncf``: codes per image, cell and feature (as ``vislens.sae.groundtruth.concept_auroc``);
    ``labels``: its ``CellLabels``. The best concept of a feature is the one its values
    detect with the highest AUROC among occupied cells; ``named`` is true when the label's
    words include it. Words only: a synonym ("crimson") does not count.
    """
    from vislens.sae.groundtruth import CONCEPTS, auroc_per_column

    n, c, f = codes_ncf.shape
    if (n, c) != labels.color_nc.shape:
        raise InputError(f"codes cover {n} images × {c} cells, labels {labels.color_nc.shape}")
    occ = labels.occupied_nc.reshape(-1)
    rows = []
    for feature, label in feature_labels.items():
        if not 0 <= feature < f:
            raise InputError(f"feature {feature} is not in the codes ({f} features)")
        vals = np.asarray(codes_ncf[:, :, feature], np.float64).reshape(-1, 1)[occ]
        au = np.array(
            [auroc_per_column(vals, labels.mask(k).reshape(-1)[occ])[0] for k in CONCEPTS]
        )
        best = int(np.nanargmax(au)) if np.isfinite(au).any() else -1
        named = label_concepts(label)
        rows.append(
            {
                "feature": int(feature),
                "label": label,
                "best_concept": CONCEPTS[best] if best >= 0 else "",
                "best_auroc": float(au[best]) if best >= 0 else math.nan,
                "named": best >= 0 and CONCEPTS[best] in named,
                "label_concepts": named,
            }
        )
    return pd.DataFrame(rows, columns=list(GROUNDTRUTH_COLUMNS))
