"""The ``[lens]`` section of study.toml."""

from __future__ import annotations

from pydantic import Field

from vislens.config_base import Section


class LensConfig(Section):
    top_k: int = Field(default=5, ge=1)
    """Nearest neighbours kept per visual token (LatentLens uses top-5)."""
