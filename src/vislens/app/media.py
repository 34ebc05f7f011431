"""Images on annotation pages: local files served by one route, remote ones linked, and
the red patch box and zoomed crop drawn with CSS so both work the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from vislens.app.context import AppContext

CROP_PATCHES = 3
"""Patches per side in the zoomed crop (the patch and one neighbour around it)."""


def image_src(task: str, position: int, image: str, slot: str = "image") -> str:
    """A URL the browser may load: http(s) URLs as given, anything else via /media."""
    if image.startswith(("http://", "https://")):
        # Quotes and brackets would end a CSS url(...); percent-encode them.
        return image.replace('"', "%22").replace("(", "%28").replace(")", "%29").replace("'", "%27")
    return f"/media/{quote(task, safe='')}/{position}/{slot}"


def patch_box_style(row: int, col: int, grid: int) -> dict[str, str]:
    """Absolute position of the red box over patch (row, col) of a grid × grid image."""
    size = 100.0 / grid
    return {
        "position": "absolute",
        "left": f"{col * size}%",
        "top": f"{row * size}%",
        "width": f"{size}%",
        "height": f"{size}%",
        "border": "2px solid red",
        "boxSizing": "border-box",
        "pointerEvents": "none",
    }


def crop_style(src: str, row: int, col: int, grid: int, px: int = 240) -> dict[str, str]:
    """A div background that shows the CROP_PATCHES × CROP_PATCHES window around the patch."""
    k = min(CROP_PATCHES, grid)
    top = min(max(row - k // 2, 0), grid - k)
    left = min(max(col - k // 2, 0), grid - k)
    denom = max(grid - k, 1)
    return {
        "width": f"{px}px",
        "height": f"{px}px",
        "backgroundImage": f'url("{src}")',
        "backgroundSize": f"{grid / k * 100}% {grid / k * 100}%",
        "backgroundPosition": f"{left / denom * 100}% {top / denom * 100}%",
        "imageRendering": "pixelated",
        "border": "1px solid #999",
        "position": "relative",
    }


def item_roots(ctx: AppContext, task: str) -> list[Path]:
    """The folders the task's images may be served from (cached per task)."""
    from vislens.app.paths import task_image_roots

    return task_image_roots(ctx.study, ctx.session(task).task.settings)


def local_media_path(ctx: AppContext, task: str, position: int, slot: str) -> Path | None:
    """The file behind /media/<task>/<position>/<slot>: only if the task's item names it and
    it resolves (symlinks followed) inside the task's image roots."""
    from vislens.app.paths import contained_file, item_image_names

    session = ctx.session(task)
    item = session.item(position=position)
    name = item_image_names(session.task.kind, item.payload).get(slot, "")
    if not name:
        return None
    return contained_file(name, Path(ctx.study.root), item_roots(ctx, task))


def missing_images(ctx: AppContext, task: str, position: int) -> list[str]:
    """The item's local images that cannot be shown (missing, unreadable or not allowed)."""
    from vislens.app.paths import is_remote, item_image_names

    session = ctx.session(task)
    names = item_image_names(session.task.kind, session.item(position=position).payload)
    return [
        name
        for slot, name in names.items()
        if not name or (not is_remote(name) and local_media_path(ctx, task, position, slot) is None)
    ]


def register_media(server: Any, ctx: AppContext) -> None:
    """GET /media/<task>/<position>/<slot>: an item's local image file."""
    from flask import abort, send_file

    from vislens.errors import VislensError

    @server.route("/media/<task>/<int:position>/<slot>")
    def _media(task: str, position: int, slot: str) -> Any:
        try:
            path = local_media_path(ctx, task, position, slot)
        except (VislensError, ValueError):
            abort(404)
        if path is None:
            abort(404)
        return send_file(path, max_age=3600)
