"""The ``[annotations]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from vislens.config_base import Section


class AnnotationsConfig(Section):
    database_url: str = ""
    """SQLAlchemy URL of the annotation store; empty means annotations.sqlite in the study
    directory. Use postgresql+psycopg://user@host/db when many annotators work at once."""

    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    """SQLite's synchronous setting (WAL mode). NORMAL keeps every acknowledged label
    through a crash or kill of the server; FULL also through a power cut or OS crash, at
    about three times the save latency."""

    require_token: bool = False
    """When true, annotators can only open a task through their personal token link
    (`vislens human annotator add`); when false, typing a name is enough."""
