"""The ``[annotations]`` section of study.toml."""

from __future__ import annotations

from vislens.config_base import Section


class AnnotationsConfig(Section):
    database_url: str = ""
    """SQLAlchemy URL of the annotation store; empty means annotations.sqlite in the study
    directory. Use postgresql+psycopg://user@host/db when many annotators work at once."""
