"""The ``[probe]`` section of study.toml."""

from __future__ import annotations

from vislens.config_base import Section


class ProbeConfig(Section):
    target: str = ""
    """The visual-search target, e.g. "green circle"."""
