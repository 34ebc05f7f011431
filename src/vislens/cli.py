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


def _click_errors() -> tuple[type[BaseException], ...]:
    """Usage-error classes: click's, and typer's own copy of them (typer >= 0.2x vendors
    click as ``typer._click``, so click's classes no longer match what typer raises)."""
    import click

    classes: list[type[BaseException]] = [click.exceptions.ClickException]
    typer_base = getattr(typer, "TyperException", None)
    if isinstance(typer_base, type) and issubclass(typer_base, BaseException):
        classes.append(typer_base)
    return tuple(classes)


def _exit_classes() -> tuple[type[BaseException], ...]:
    import click

    return (click.exceptions.Exit, typer.Exit)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user mistakes print one line and exit 2; bugs keep their traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except VislensError as e:
        from rich.markup import escape

        # one line, printed as written: "[judge] model" is text, not a rich style tag
        message = escape(" ".join(str(e).splitlines()))
        Console(stderr=True).print(
            f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True).print("aborted")
        sys.exit(130)
    except _exit_classes() as e:
        sys.exit(getattr(e, "exit_code", 0))
    except _click_errors() as e:
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            Console(stderr=True).print(f"error: {e}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(int(getattr(e, "exit_code", 2) or 2))


if __name__ == "__main__":
    main()
