"""CLI of the app stage: `vislens serve STUDY`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vislens.app.seed003 import (
    DEFAULT_COLOR_BY,
    DEFAULT_CORRECT_CSV,
    DEFAULT_HOVER,
    DEFAULT_MIS_CSV,
)


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
    crop_context: Annotated[
        int | None,
        typer.Option(
            "--crop-context",
            min=0,
            help="Patches shown on each side of the patch in annotation pages' zoomed crop "
            "(1: 3 x 3); default: 1 up to 16 patches a side, one more per 16.",
        ),
    ] = None,
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
        crop_context=crop_context,
    )


def view_cmd(
    cache_dir: Annotated[
        Path,
        typer.Option("--cache_dir", help="Cache folder with metadata.csv and the coords .npy."),
    ],
    coords_file: Annotated[
        str, typer.Option("--coords_file", help="Coords .npy file name (e.g. vis_umap_coords.npy).")
    ],
    image_dir: Annotated[
        Path | None,
        typer.Option("--image_dir", help="Local folder served at /images/<file_name>."),
    ] = None,
    image_root: Annotated[
        str,
        typer.Option(
            "--image_root", help="URL prefix joined with file_name (images hosted elsewhere)."
        ),
    ] = "",
    mis_csv: Annotated[
        str,
        typer.Option(
            "--mis_csv",
            help="Misclassified CSV with a JSON rationale column (relative to --cache_dir).",
        ),
    ] = DEFAULT_MIS_CSV,
    correct_csv: Annotated[
        str,
        typer.Option(
            "--correct_csv",
            help="Correct CSV with a JSON rationale column (relative to --cache_dir).",
        ),
    ] = DEFAULT_CORRECT_CSV,
    color_by: Annotated[
        str, typer.Option("--color_by", help="metadata.csv column that colours the points.")
    ] = DEFAULT_COLOR_BY,
    hover: Annotated[
        str, typer.Option("--hover", help="Comma-separated metadata.csv columns shown on hover.")
    ] = DEFAULT_HOVER,
    host: Annotated[
        str, typer.Option(help="Interface to bind; 127.0.0.1 keeps it to this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8050,
    debug: Annotated[bool, typer.Option(help="Flask's development server (reloads).")] = False,
) -> None:
    """Explore a 2-D map of a cache directory (seed 003's viewer): metadata.csv + coords."""
    from vislens.app.explorer import create_view_app
    from vislens.app.explorer_data import ExplorerData
    from vislens.app.shell import run_server

    data = ExplorerData.load(
        cache_dir, coords_file, image_dir=image_dir, image_root=image_root, mis_csv=mis_csv,
        correct_csv=correct_csv, color_by=color_by, hover=hover,
    )  # fmt: skip
    for note in data.notices:
        typer.echo(f"note: {note}", err=True)
    app = create_view_app(data, host=host)
    run_server(
        app, host=host, port=port, debug=debug,
        on_ready=lambda: typer.echo(f"vislens view on http://{host}:{port}/ ({data.n:,} points)"),
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add `vislens serve`, `vislens view` and `vislens map`."""
    from vislens.map.commands import map_cmd

    app.command("serve")(serve_cmd)
    app.command("view")(view_cmd)
    app.command("map")(map_cmd)
