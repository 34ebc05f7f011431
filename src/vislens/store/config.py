"""The ``[extract]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vislens.config_base import Section


class ExtractConfig(Section):
    layers: list[int] = Field(default_factory=lambda: [-1])
    """Residual-stream layers to store: 0 is the embedding output, L the output of block L,
    negative counts from the last block (-1 = last)."""

    tokens: Literal["cls", "patches", "all", "mean"] = "all"
    """Which tokens to keep per image: the CLS token, the patch tokens (grid order),
    all tokens, or the mean over patch tokens."""

    batch_size: int = Field(default=32, ge=1)
    """Images per forward pass."""

    shard_size: int = Field(default=1024, ge=1)
    """Images per activation shard (each shard is written atomically)."""

    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Dtype activations are stored in."""

    num_workers: int = Field(default=2, ge=0)
    """Threads that decode and preprocess images while the model runs."""
