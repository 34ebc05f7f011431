"""The demo's judge step: SAE feature labels from a general LLM/VLM, and each label scored
by the same judge (detection: which held-out images match it), when one is configured.

The toy VLM answers only questions about its own world, so labelling features needs a
real model behind an OpenAI-compatible endpoint: ``[judge] base_url`` and ``model`` in the
study's study.toml, or the environment variables ``VISLENS_JUDGE_BASE_URL`` and
``VISLENS_JUDGE_MODEL`` (the key in ``OPENAI_API_KEY``, as ``[judge] api_key_env`` says).
Without one, the step says it was skipped and the one line that enables it.
"""

from __future__ import annotations

import os
from typing import Any

from vislens.judge.config import JudgeConfig
from vislens.study import Study

ENABLE_LINE = (
    "set VISLENS_JUDGE_BASE_URL=http://host:port/v1 and VISLENS_JUDGE_MODEL=NAME "
    "(or [judge] base_url and model in study.toml) and run the demo again"
)
LABEL_LIMIT = 12
"""Features labelled by the demo (the tier-1 features first)."""


def judge_config(study: Study) -> JudgeConfig | None:
    """The endpoint the demo may use, or None when none is configured."""
    cfg = study.config.judge
    base_url = os.environ.get("VISLENS_JUDGE_BASE_URL") or cfg.base_url
    model = os.environ.get("VISLENS_JUDGE_MODEL") or cfg.model
    if not base_url or not model or model == "toy":
        return None
    return cfg.model_copy(update={"base_url": base_url, "model": model, "backend": "openai"})


def label_stage(study: Study, sae: str, cfg: JudgeConfig) -> dict[str, Any]:
    """Label the SAE's best features with the configured judge (cached in the study)."""
    from vislens.judge.backends import open_cache, open_client
    from vislens.judge.tasks.label import label_features
    from vislens.judge.tasks.label_score import score_labels
    from vislens.judge.tasks.sae_evidence import load_evidence

    evidence = load_evidence(study, sae, tier=None, limit=LABEL_LIMIT)
    cache = open_cache(study.judge_cache_path)
    client = open_client(cfg)
    try:
        _, summary = label_features(
            evidence, client=client, cfg=cfg, cache=cache,
            out_path=study.sae_dir(sae) / "labels.json", sae=sae,
        )  # fmt: skip
        scores, _, score_summary = score_labels(study, sae, client=client, cfg=cfg, cache=cache)
    finally:
        cache.close()
    mean = scores["balanced_accuracy"].mean() if len(scores) else float("nan")
    return {
        "model": cfg.model,
        "base_url": cfg.base_url,
        "summary": summary.line(),
        "label_scores": score_summary.line(),
        "mean_label_balanced_accuracy": None if mean != mean else round(float(mean), 4),
    }


def judge_step(study: Study, runner: Any, say: Any) -> dict[str, Any]:
    """Labels with the configured judge (a recorded stage), or the skip and how to enable it."""
    from vislens.demo.pipeline import SAE_NAME

    cfg = judge_config(study)
    if cfg is None:
        say(f"[labels] skipped: labelling SAE features needs a general LLM/VLM — {ENABLE_LINE}")
        return {"skipped": "no judge endpoint configured", "enable": ENABLE_LINE}
    return dict(
        runner.run(
            "labels", lambda: label_stage(study, SAE_NAME, cfg),
            extra={"judge": [cfg.base_url, cfg.model]},
        )
    )  # fmt: skip
