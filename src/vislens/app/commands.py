"""CLI of the app stage: `vislens serve STUDY`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_cmd(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it to this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8050,
    debug: Annotated[bool, typer.Option(help="Dash debug mode (reloads on code changes).")] = False,
) -> None:
    """Serve the web workbench (annotation pages and more) for a study."""
    from vislens.app.shell import serve

    typer.echo(f"vislens workbench on http://{host}:{port}/")
    serve(study, host=host, port=port, debug=debug)


def register(app: typer.Typer) -> None:
    """Add `vislens serve`."""
    app.command("serve")(serve_cmd)
