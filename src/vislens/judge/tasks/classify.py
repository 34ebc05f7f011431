"""Description classification (seed 002): is each feature description related to a category?

Reads a Neuronpedia explanations export and writes seed 002's model-classification JSON:
a list of ``{feature_id, feature_index, description, label}`` with ``label`` either
``related`` or ``not-related``, which ``vislens agree`` and seed 002's analysis join with
human labels on ``feature_index``. Features the judge could not classify are left out of the
list and named in the summary's ``failures`` — never given a default label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, field_validator

from vislens.io import write_json_atomic
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.neuronpedia import Explanations, FeatureDescription, load_explanations
from vislens.judge.runner import JudgeJob, RunSummary, judge_all
from vislens.judge.tasks.common import model_slug, write_summary
from vislens.judge.templates import load_template

TASK = "classify_description"
OUTPUT_KEYS = ("feature_id", "feature_index", "description", "label")

# The two categories seed 002 ships, with its question wording; any other text is used as is.
CATEGORIES = {
    "alignment": "AI alignment, safety, or ethical behavior",
    "formatting": "text formatting, structure, or presentation",
}


class ClassifyAnswer(BaseModel):
    """The judge's answer for one description."""

    label: Literal["related", "not-related"]
    reason: str = ""

    @field_validator("label", mode="before")
    @classmethod
    def _normalise(cls, v: object) -> object:
        # "Related", "not related", "NOT_RELATED" all mean one of the two labels.
        if isinstance(v, str):
            s = v.strip().lower().replace("_", "-").replace(" ", "-")
            return {"unrelated": "not-related", "notrelated": "not-related"}.get(s, s)
        return v


def topic_for(category: str) -> str:
    """The phrase put into the question for ``category``."""
    return CATEGORIES.get(category.strip().lower(), category.strip())


def default_out_path(export_path: Path, category: str, model: str) -> Path:
    """``<export stem>_<category>_classified_<model>.json`` beside the export (seed 002's name)."""
    export_path = Path(export_path)
    return export_path.with_name(
        f"{export_path.stem}_{model_slug(category)}_classified_{model_slug(model)}.json"
    )


def build_jobs(
    features: list[FeatureDescription], category: str, model: str, params: dict[str, object]
) -> list[JudgeJob[ClassifyAnswer]]:
    """One request per feature."""
    tpl = load_template(TASK)
    topic = topic_for(category)
    jobs = []
    for f in features:
        system, user = tpl.render(description=f.description, topic=topic)
        req = ChatRequest(
            model, [{"role": "system", "content": system}, user_message(user)], dict(params)
        )
        jobs.append(JudgeJob(f.feature_id, req, ClassifyAnswer))
    return jobs


@dataclass
class ClassifyResult:
    records: list[dict[str, object]]
    summary: RunSummary
    out_path: Path | None


def select(
    exp: Explanations, *, sample: int | None, seed: int, limit: int | None
) -> list[FeatureDescription]:
    """All features, or a seeded random sample of ``sample`` (pandas' sampling, as seed 002 does)."""
    feats = exp.features
    if sample is not None and sample < len(feats):
        import pandas as pd

        rows = pd.Series(range(len(feats))).sample(n=sample, random_state=seed).tolist()
        feats = [feats[i] for i in rows]
    return feats[:limit] if limit is not None else feats


def classify_descriptions(
    export_path: Path,
    category: str,
    *,
    client: JudgeClient,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    out_path: Path | None = None,
    sample: int | None = None,
    seed: int = 42,
    limit: int | None = None,
    explanations: Explanations | None = None,
) -> ClassifyResult:
    """Classify every description of the export; write the JSON (and its summary) if
    ``out_path``. ``explanations``: the export already read with ``load_explanations``."""
    from vislens.judge.backends import request_params, run_settings

    cfg = cfg or JudgeConfig(model=client.model)
    exp = explanations if explanations is not None else load_explanations(export_path)
    feats = select(exp, sample=sample, seed=seed, limit=limit)
    jobs = build_jobs(feats, category, client.model, request_params(cfg))
    settings = run_settings(
        cfg, task=TASK, template=load_template(TASK).id, progress=f"classifying ({category})"
    )
    outcomes, summary = judge_all(client, jobs, cache=cache, settings=settings)
    summary.n_skipped = exp.n_empty + exp.n_duplicates
    records: list[dict[str, object]] = []
    for f, o in zip(feats, outcomes, strict=True):
        if o.value is not None:
            records.append(
                {
                    "feature_id": f.feature_id,
                    "feature_index": f.feature_index,
                    "description": f.description,
                    "label": o.value.label,
                }
            )
    if out_path is not None:
        write_json_atomic(out_path, records)
        write_summary(out_path, summary)
    return ClassifyResult(records, summary, out_path)
