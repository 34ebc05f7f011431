"""The page registry of the workbench: a page is a URL prefix, a name for the navigation
bar, a layout function and optionally its callbacks. Page modules import this module, and
the shell imports the page modules, so nothing imports the shell back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vislens.app.context import AppContext


@dataclass(frozen=True)
class Page:
    path: str
    """URL prefix, e.g. "/annotate"; the page gets the rest of the path as ``subpath``."""
    name: str
    """Text of the navigation link."""
    layout: Callable[[AppContext, str, dict[str, str]], Any]
    """Builds the page's components from the context, the subpath and the query string."""
    register: Callable[[Any, AppContext], None] | None = None
    """Adds the page's callbacks to the Dash app (called once per app)."""
    in_nav: bool = True


_EXTRA_PAGES: list[Page] = []


def register_page(page: Page) -> None:
    """Add a page to every workbench created afterwards (replaces one with the same path)."""
    _EXTRA_PAGES[:] = [p for p in _EXTRA_PAGES if p.path != page.path] + [page]


def extra_pages() -> list[Page]:
    return list(_EXTRA_PAGES)


def not_run(what: str, command: str) -> Any:
    """What a page shows when the stage it reads has not run: the command that makes it."""
    import dash_mantine_components as dmc

    from vislens.app.ui import note

    return note(
        [f"{what} has not run for this study yet — make it with ", dmc.Code(command), "."],
        title="Not run yet",
    )
