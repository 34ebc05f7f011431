"""The workbench's one look: Mantine components (dash-mantine-components, whose styles
ship inside its JavaScript bundle, so pages need no network) and the few building blocks
every page uses — the shell with its navigation, a page title, a section, a note, a list
of fields, stage cards.

Elements the library does not cover (annotation buttons driven by the keyboard, image
grids, patch crops) are plain HTML styled in style.py with Mantine's own CSS variables, so
they share its colours, radii and type scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

BUSY_MS = 250
"""A computation started from a page shows progress once it has taken this long (quicker
answers do not flicker)."""

THEME: dict[str, Any] = {
    "primaryColor": "indigo",
    "defaultRadius": "md",
    "fontFamily": 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    "headings": {"fontWeight": "650"},
}


def provider(children: Any) -> Any:
    """The root of every app: Mantine's theme, light colour scheme."""
    import dash_mantine_components as dmc

    return dmc.MantineProvider(children, theme=THEME, forceColorScheme="light")


def nav_links(links: Iterable[tuple[str, str]], pathname: str) -> list[Any]:
    """The navigation's links, the one for the current page marked active."""
    import dash_mantine_components as dmc

    def active(href: str) -> bool:
        if href == "/":
            return pathname in ("", "/")
        return pathname == href or pathname.startswith(href.rstrip("/") + "/")

    return [
        dmc.NavLink(
            label=name,
            href=href,
            active=active(href),
            variant="light",
            className="vl-navlink",
            id=f"vl-nav-{name.lower()}",
        )
        for name, href in links
    ]


def header(brand: str, subtitle: str, links: list[Any], *, nav_id: str = "vl-nav") -> Any:
    """The bar at the top of every page: the product, the study, the pages."""
    import dash_mantine_components as dmc
    from dash import html

    return html.Header(
        dmc.Group(
            [
                dmc.Group(
                    [
                        dmc.Anchor(brand, href="/", className="vl-brand", underline="never"),
                        dmc.Text(subtitle, className="vl-study", size="sm", c="dimmed")
                        if subtitle
                        else None,
                    ],
                    gap="xs",
                    wrap="nowrap",
                ),
                html.Nav(links, id=nav_id, className="vl-nav"),
            ],
            justify="space-between",
            wrap="nowrap",
            gap="md",
            h="100%",
        ),
        className="vl-header",
    )


def page(title: Any, *children: Any, description: Any = None, title_id: str | None = None) -> Any:
    """A page: its title (and a line under it), then its parts stacked."""
    import dash_mantine_components as dmc

    head: list[Any] = [
        dmc.Title(title, order=2, id=title_id) if title_id else dmc.Title(title, order=2)
    ]
    if description:
        head.append(dmc.Text(description, c="dimmed"))
    return dmc.Stack([dmc.Stack(head, gap=2), *[c for c in children if c is not None]], gap="md")


def section(title: Any, *children: Any, id: str | None = None, right: Any = None) -> Any:
    """A bordered block with a heading (and something at its right, e.g. a button)."""
    import dash_mantine_components as dmc

    head = dmc.Group([dmc.Title(title, order=4), right], justify="space-between", gap="xs")
    kwargs = {"id": id} if id else {}
    return dmc.Paper(
        dmc.Stack([head, *[c for c in children if c is not None]], gap="sm"),
        withBorder=True,
        p="md",
        radius="md",
        className="vl-section",
        **kwargs,
    )


def note(children: Any, *, id: str | None = None, color: str = "yellow", title: Any = None) -> Any:
    """Something the user should know (a stage not run, a file that cannot be read)."""
    import dash_mantine_components as dmc

    kwargs = {"id": id} if id else {}
    return dmc.Alert(
        children, title=title, color=color, variant="light", className="vl-note", **kwargs
    )


def muted(children: Any, *, id: str | None = None) -> Any:
    import dash_mantine_components as dmc

    kwargs = {"id": id} if id else {}
    return dmc.Text(children, c="dimmed", size="sm", **kwargs)


def fields(pairs: Iterable[tuple[str, Any]], *, id: str | None = None, cols: int = 1) -> Any:
    """Name: value lines (values as text), in ``cols`` columns on wide screens."""
    import dash_mantine_components as dmc
    from dash import html

    items = [
        html.Div(
            [html.Span(f"{k}", className="vl-key"), html.Span(str(v), className="vl-val")],
            className="vl-field",
        )
        for k, v in pairs
    ]
    kwargs = {"id": id} if id else {}
    return dmc.SimpleGrid(
        items,
        cols={"base": 1, "sm": cols},
        spacing="xs",
        verticalSpacing=4,
        className="vl-fields",
        **kwargs,
    )


def badge(text: str, color: str = "gray", **kwargs: Any) -> Any:
    import dash_mantine_components as dmc

    return dmc.Badge(text, color=color, variant="light", radius="sm", **kwargs)


def busy(
    child: Any,
    targets: dict[str, str],
    *,
    kind: Literal["circle", "dot", "default"] = "circle",
    **kwargs: Any,
) -> Any:
    """``child`` with a spinner over it (the child dimmed, still visible) while a callback
    writing one of ``targets`` (component id → property) runs longer than BUSY_MS."""
    from dash import dcc

    target: Any = targets  # Dash's stub types this as an empty TypedDict
    return dcc.Loading(
        child,
        target_components=target,
        delay_show=BUSY_MS,
        overlay_style={"visibility": "visible", "opacity": 0.55},
        type=kind,
        **kwargs,
    )
