"""Images on annotation pages: local files served by one route, remote ones linked (the
patch box and the zoomed crop over them are in crop.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from vislens.app.context import AppContext


def image_src(task: str, position: int, image: str, slot: str = "image") -> str:
    """A URL the browser may load: http(s) URLs as given, anything else via /media."""
    if image.startswith(("http://", "https://")):
        # Quotes and brackets would end a CSS url(...); percent-encode them.
        return image.replace('"', "%22").replace("(", "%28").replace(")", "%29").replace("'", "%27")
    return f"/media/{quote(task, safe='')}/{position}/{slot}"


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


def local_image_size(ctx: AppContext, task: str, position: int) -> tuple[int, int] | None:
    """``(width, height)`` of the item's local image (its header only), or None."""
    from PIL import Image, UnidentifiedImageError

    try:
        path = local_media_path(ctx, task, position, "image")
        if path is None:
            return None
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except (OSError, UnidentifiedImageError, ValueError):
        return None


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
