"""The ``[sae]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vislens.config_base import Section


class SAEConfig(Section):
    default: str = ""
    """Name of the SAE (a folder under sae/) that commands use when none is given."""

    embedder: str = "facebook/dinov2-base"
    """Vision encoder (hub id or directory) whose pooled embeddings score monosemanticity;
    it should differ from the model the SAE reads (DINOv2 for a CLIP SAE)."""

    top_k: int = Field(default=20, ge=1)
    """Items kept per feature in topk.parquet."""

    top_n: int = Field(default=20, ge=2)
    """Items per feature for the top-N monosemanticity variant (ms_topn)."""

    reduce: Literal["auto", "cls", "max", "mean"] = "auto"
    """Per-item value of a feature: the CLS token, or max / mean over patches (auto: CLS when
    the codes have one, else max)."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    """False-discovery rate for Benjamini–Hochberg q-values."""
