"""The study's Explorer page: the explorer over ``STUDY/map/`` (written by ``vislens map``),
with ``vislens judge images`` outputs there (``mis_*.csv`` / ``correct_*.csv``) as the
rationale files and the study's image source folder as the image folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from vislens.app.context import AppContext
from vislens.app.explorer_data import ExplorerData
from vislens.app.explorer_views import ExplorerViews
from vislens.app.pages import Page
from vislens.errors import VislensError

MAP_HINT = "vislens map {study} --source activations --method umap"

_cache: dict[tuple[str, str, float], ExplorerViews] = {}
_lock = threading.Lock()


def coords_files(map_dir: Path) -> list[Path]:
    """The study's maps, the most recently written last."""
    return sorted(map_dir.glob("*_coords.npy"), key=lambda p: (p.stat().st_mtime, p.name))


def default_colour(data: ExplorerData) -> str:
    """The column a study's map is coloured by at first: the first with a few categories
    (2 to MAX_CATEGORIES values), else the first numeric one that varies, else none."""
    from vislens.app.explorer_data import MAX_CATEGORIES

    cols = [c for c in data.columns() if c not in ("item_id", "file_name", "width", "height")]
    distinct = {c: data.meta[c].dropna().nunique() for c in cols}
    for c in cols:
        if data.is_categorical(c) and 2 <= distinct[c] <= MAX_CATEGORIES:
            return c
    return next((c for c in cols if not data.is_categorical(c) and distinct[c] >= 2), "")


def study_data(ctx: AppContext) -> tuple[ExplorerViews | None, str]:
    """The explorer over the study's latest map (its first figure computed), or why there
    is none."""
    from vislens.app.paths import image_source_root

    map_dir = Path(ctx.study.root) / "map"
    files = coords_files(map_dir) if (map_dir / "metadata.csv").is_file() else []
    if not files:
        return None, (
            f"No map in {map_dir} yet — make one with `{MAP_HINT.format(study=ctx.study.root)}`."
        )
    coords = files[-1]
    key = (str(map_dir), coords.name, coords.stat().st_mtime)
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit, ""
    mis = sorted(map_dir.glob("mis_*.csv"))
    cor = sorted(map_dir.glob("correct_*.csv"))
    root = image_source_root(ctx.study)
    try:
        data = ExplorerData.load(
            map_dir,
            coords.name,
            image_dir=root if root is not None and root.is_dir() else None,
            mis_csv=str(mis[0]) if mis else "",
            correct_csv=str(cor[0]) if cor else "",
            color_by="",
            hover="item_id,file_name",
        )
    except VislensError as e:
        return None, str(e)
    if not data.color_by:
        data.color_by = default_colour(data)
    views = ExplorerViews(data)
    views.warm()
    with _lock:
        _cache[key] = views
    return views, ""


def _layout(ctx: AppContext, sub: str, query: dict[str, str]) -> Any:
    from vislens.app.explorer import layout

    views, problem = study_data(ctx)
    return layout(views, problem)


def _register(app: Any, ctx: AppContext) -> None:
    from vislens.app.explorer import register
    from vislens.app.files import register_image_route
    from vislens.app.paths import image_source_root

    register(app, lambda: study_data(ctx)[0])
    root = image_source_root(ctx.study)
    if root is not None and root.is_dir():
        register_image_route(app.server, root)


def pages() -> list[Page]:
    return [Page("/explorer", "Explorer", _layout, _register)]
