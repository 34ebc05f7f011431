"""The ``vislens`` command line: one Typer app, each command a thin call into the library.

Each stage registers its commands from its own ``commands.py`` (``register(app)``), so the
CLI is assembled from the same folders the library is. Heavy imports (torch,
transformers) happen inside commands, so ``vislens --help`` stays fast.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from vislens.errors import VislensError

app = typer.Typer(
    name="vislens",
    help="Find out what vision models and VLMs represent, and check it against judges and people.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STAGES = (
    "vislens.data.commands",
    "vislens.store.commands",
    "vislens.models.commands",
    "vislens.sae.commands",
    "vislens.lens.commands",
    "vislens.probe.commands",
    "vislens.judge.commands",
    "vislens.human.commands",
    "vislens.analysis.commands",
    "vislens.app.commands",
    "vislens.demo",
)


def _register_all() -> None:
    import importlib

    for name in _STAGES:
        importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    """Entry point: user mistakes print one line and exit 2; bugs keep their traceback."""
    try:
        app(standalone_mode=False)
    except VislensError as e:
        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except Exception as e:  # click usage errors arrive here in standalone_mode=False
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
