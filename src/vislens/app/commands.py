"""CLI commands of the app stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the vislens app (none yet)."""
