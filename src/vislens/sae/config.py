"""The ``[sae]`` section of study.toml."""

from __future__ import annotations

from vislens.config_base import Section


class SAEConfig(Section):
    default: str = ""
    """Name of the SAE (a folder under sae/) that commands use when none is given."""
