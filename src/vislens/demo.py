"""`vislens demo`: the main job, end to end, on the embedded toy world."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command."""
