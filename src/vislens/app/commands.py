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
    debug: Annotated[
        bool,
        typer.Option(
            help="Flask's development server with Dash debug mode (reloads on code changes); "
            "without it the workbench runs on waitress."
        ),
    ] = False,
) -> None:
    """Serve the web workbench (annotation pages and more) for a study.

    Bound to 127.0.0.1 unless --host says otherwise; on any other address annotators must
    use their personal token links (`vislens human annotator add`)."""
    from vislens.app.shell import serve

    serve(
        study,
        host=host,
        port=port,
        debug=debug,
        on_ready=lambda: typer.echo(f"vislens workbench on http://{host}:{port}/"),
    )


def register(app: typer.Typer) -> None:
    """Add `vislens serve`."""
    app.command("serve")(serve_cmd)
