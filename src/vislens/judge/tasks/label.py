"""Feature labelling (seed 001 "VLM Feature Labeling"): name what a feature's top images share.

For each feature, the judge sees one grid of its top-activating images (strongest first, the
feature's patch heatmap overlaid in red when the SAE is spatial) and the prompt states the
feature's monosemanticity score and its correlation with a rating, as seed 001 does. It
answers a short label (2-5 words), a description, the visual elements and why the feature
might predict the rating. Output: ``sae/<name>/labels.json`` (docs/formats/judge-labels.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, field_validator

from vislens.io import write_json_atomic
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.runner import JudgeJob, RunSummary, judge_all
from vislens.judge.tasks.common import write_summary
from vislens.judge.templates import load_template

TASK = "label_feature"
LABELS_SCHEMA_VERSION = 1
FEATURE_KEYS = (
    "feature", "label", "description", "visual_elements", "rating_rationale",
    "ms", "corr", "rating_dim", "tier", "n_images",
)  # fmt: skip
LABELS_KEYS = ("schema_version", "task", "template", "model", "sae", "features", "failures")
TILE = 160


class FeatureLabel(BaseModel):
    """The judge's answer for one feature."""

    label: str = Field(min_length=1)
    description: str = ""
    visual_elements: list[str] = Field(default_factory=list)
    rating_rationale: str = ""

    @field_validator("label")
    @classmethod
    def _short(cls, v: str) -> str:
        v = v.strip()
        if not 1 <= len(v.split()) <= 6:  # asked for 2-5 words; one either side is tolerated
            raise ValueError(f"label should be 2-5 words, got {len(v.split())}")
        return v


@dataclass
class FeatureEvidence:
    """What the judge is shown about one feature."""

    feature: int
    images: list[Image.Image]
    """Top-activating images, strongest first."""
    heatmaps: list[np.ndarray | None] = field(default_factory=list)
    """Per image, the feature's activation over the patch grid ``[h, w]`` (spatial SAEs), or None."""
    ms: float | None = None
    corr: float | None = None
    rating_dim: str | None = None
    tier: int | None = None


def overlay_heatmap(image: Image.Image, heat_hw: np.ndarray, alpha: float = 0.55) -> Image.Image:
    """``image`` with ``heat_hw`` (scaled to 0-1 by its max) painted over it in red."""
    heat = np.asarray(heat_hw, dtype=np.float32)
    peak = float(heat.max()) if heat.size else 0.0
    heat = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat)
    mask = Image.fromarray((heat * 255).astype(np.uint8)).resize(
        image.size, Image.Resampling.NEAREST
    )
    red = Image.new("RGB", image.size, (255, 0, 0))
    scaled = mask.point(lambda v: int(v * alpha))
    return Image.composite(red, image.convert("RGB"), scaled)


def make_grid(
    images: list[Image.Image], heatmaps: list[np.ndarray | None] | None = None
) -> Image.Image:
    """A near-square grid of ``TILE``-pixel tiles, row-major, strongest image top-left."""
    n = max(1, len(images))
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    gap = 4
    grid = Image.new(
        "RGB", (cols * TILE + (cols - 1) * gap, rows * TILE + (rows - 1) * gap), "white"
    )
    for i, im in enumerate(images):
        tile = im.convert("RGB").resize((TILE, TILE))
        heat = heatmaps[i] if heatmaps and i < len(heatmaps) else None
        if heat is not None:
            tile = overlay_heatmap(tile, heat)
        grid.paste(tile, ((i % cols) * (TILE + gap), (i // cols) * (TILE + gap)))
    return grid


def _fmt(v: float | None) -> str:
    return "unknown" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def build_job(ev: FeatureEvidence, model: str, params: dict[str, Any]) -> JudgeJob[FeatureLabel]:
    tpl = load_template(TASK)
    spatial = any(h is not None for h in ev.heatmaps)
    system, user = tpl.render(
        feature=ev.feature,
        n_images=len(ev.images),
        heatmap_note="; red shows where in each image the feature fires" if spatial else "",
        ms=_fmt(ev.ms),
        corr=_fmt(ev.corr),
        rating_dim=ev.rating_dim or "the rating",
    )
    grid = make_grid(ev.images, ev.heatmaps)
    req = ChatRequest(
        model, [{"role": "system", "content": system}, user_message(user, [grid])], dict(params)
    )
    return JudgeJob(str(ev.feature), req, FeatureLabel)


def label_features(
    evidence: Iterable[FeatureEvidence],
    *,
    client: JudgeClient,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    out_path: Path | None = None,
    sae: str = "",
) -> tuple[dict[str, Any], RunSummary]:
    """Label every feature; write ``labels.json`` (and its summary) if ``out_path``."""
    from vislens.judge.backends import request_params, run_settings

    cfg = cfg or JudgeConfig(model=client.model)
    evs = list(evidence)
    params = request_params(cfg)
    jobs = [build_job(ev, client.model, params) for ev in evs]
    tpl = load_template(TASK)
    settings = run_settings(cfg, task=TASK, template=tpl.id, progress="labelling features")
    outcomes, summary = judge_all(client, jobs, cache=cache, settings=settings)
    features, failures = [], []
    for ev, o in zip(evs, outcomes, strict=True):
        if o.value is None:
            failures.append({"feature": ev.feature, "status": o.status, "reason": o.reason or ""})
            continue
        features.append(
            {
                "feature": ev.feature,
                **o.value.model_dump(),
                "ms": ev.ms,
                "corr": ev.corr,
                "rating_dim": ev.rating_dim,
                "tier": ev.tier,
                "n_images": len(ev.images),
            }
        )
    doc = {
        "schema_version": LABELS_SCHEMA_VERSION,
        "task": TASK,
        "template": tpl.id,
        "model": client.model,
        "sae": sae,
        "features": features,
        "failures": failures,
    }
    if out_path is not None:
        write_json_atomic(out_path, doc)
        write_summary(out_path, summary)
    return doc, summary


def read_labels(path: Path) -> dict[str, Any]:
    """A ``labels.json`` written by ``label_features``; a newer schema is refused by name."""
    import json

    from vislens.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no feature labels here — run `vislens label STUDY --sae NAME` first"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(version, int):
        raise InputError(f"{path}: no integer 'schema_version'; not a vislens labels file")
    if version > LABELS_SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {version} is newer than this vislens reads "
            f"({LABELS_SCHEMA_VERSION}) — upgrade vislens"
        )
    return doc
