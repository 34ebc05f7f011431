"""The ``[lens]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vislens.config_base import Section


class LensConfig(Section):
    model: str = ""
    """The VLM whose visual tokens and LLM LatentLens reads (hub id, directory, ``toy`` or
    ``toy-mlp``); empty means ``[model] name_or_path``. The demo reads ``toy-mlp``, the toy
    trained the LatentLens way, while the QA toy answers the probe."""

    top_k: int = Field(default=5, ge=1)
    """Nearest neighbours kept per visual token (LatentLens uses top-5)."""

    corpus: str = ""
    """Caption corpus of the contextual bank (text file, one caption a line, or JSONL with a
    ``caption`` or ``text`` field); relative paths are relative to the study directory."""

    contextual_layers: list[int] = Field(default_factory=list)
    """LLM layers the bank keeps; empty = the paper's 1, 2, 4, 8, 16, 24, N-2, N-1 that exist."""

    visual_layers: list[int] = Field(default_factory=list)
    """Visual layers to search (0 = connector output); empty = 0 plus the contextual default."""

    max_per_token: int = Field(default=20, ge=1)
    """Cap M on the embeddings kept per token string (seeded reservoir sampling)."""

    skip_positions: int = Field(default=2, ge=0)
    """Token positions 0 .. skip_positions-1 of every caption are never kept."""

    prefer_from: int = Field(default=10, ge=0)
    """Positions >= this are preferred; earlier kept positions only fill a string's cap."""

    seed: int = 0
    """Seed of the reservoir sampling (bank) and of the human-study sample."""

    dtype: Literal["fp16", "int8"] = "fp16"
    """Bank storage: fp16, or int8 with one fp32 scale per row."""

    batch_size: int = Field(default=32, ge=1)
    """Captions per forward pass when building the bank."""

    shard_captions: int = Field(default=512, ge=1)
    """Captions per bank shard (the unit of resume)."""

    chunk_rows: int = Field(default=65536, ge=1)
    """Bank rows scored at once; peak search memory is set by this, not by the bank size."""

    query_chunk: int = Field(default=4096, ge=1)
    """Visual tokens scored at once."""

    index: Literal["scan", "flat", "ivf", "ivfpq"] = "scan"
    """Search: exact chunked scan, or a FAISS index (flat = exact, ivf / ivfpq approximate)."""

    prompt: str = "describe the image."
    """Text after the image when computing visual tokens."""

    n_images: int = Field(default=60, ge=1)
    """Images in the human-study sample."""

    n_patches: int = Field(default=6, ge=1)
    """Patches per sampled image."""
