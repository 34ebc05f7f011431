"""Where a patch is, and the zoomed crop around it, on annotation pages: geometry on the
model's patch grid, drawn with CSS so local and remote images work the same way.

A model cuts its input into ``rows × cols`` patches (square grids are ``grid × grid``;
``grid_h``/``grid_w`` give any other). Whatever the patch size in pixels, patch ``(r, c)``
covers the fraction ``[c/cols, (c+1)/cols] × [r/rows, (r+1)/rows]`` of the image, so the
box and the crop are percentages of the image and need no pixel sizes. The crop shows
``context`` patches on each side of the patch (a ``2·context + 1`` window), shifted
inward at the image's borders so it never shows past the edge, and cut to the grid when
the grid is smaller; the patch is outlined wherever it falls in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_GRID = 24
CROP_PX = 200
"""The crop's longer side in CSS pixels."""
AUTO_SPAN = 16
"""With no context set, about one patch of context per AUTO_SPAN patches of the grid."""


@dataclass(frozen=True)
class Window:
    """A block of patches: the top-left patch and the size, in patches."""

    top: int
    left: int
    rows: int
    cols: int


def _positive_int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def patch_grid(payload: dict[str, Any]) -> tuple[int, int]:
    """``(rows, cols)`` of an item's patch grid: ``grid_h``/``grid_w`` (in the item or
    the record it was made from), else the square ``grid``."""
    source = payload.get("source")
    for where in (payload, source if isinstance(source, dict) else {}):
        h, w = _positive_int(where.get("grid_h")), _positive_int(where.get("grid_w"))
        if h and w:
            return h, w
    g = _positive_int(payload.get("grid")) or DEFAULT_GRID
    return g, g


def auto_context(rows: int, cols: int) -> int:
    """Context for a grid when none is set: 1 (a 3 × 3 crop) up to 16 patches a side, then
    one more per 16, so the crop covers a similar share of the image on fine grids."""
    return max(1, round(max(rows, cols) / AUTO_SPAN))


def crop_window(row: int, col: int, rows: int, cols: int, context: int) -> Window:
    """The ``(2·context + 1)``-patch window around ``(row, col)``, inside the grid."""
    if not (0 <= row < rows and 0 <= col < cols):
        raise ValueError(f"patch ({row}, {col}) is outside the {rows} × {cols} grid")
    k_r, k_c = min(2 * context + 1, rows), min(2 * context + 1, cols)
    top = min(max(row - context, 0), rows - k_r)
    left = min(max(col - context, 0), cols - k_c)
    return Window(top, left, k_r, k_c)


def box_style(row: int, col: int, rows: int, cols: int) -> dict[str, str]:
    """A red box over patch ``(row, col)`` of a ``rows × cols`` grid (absolute, in %)."""
    return {
        "position": "absolute",
        "left": f"{100.0 * col / cols}%",
        "top": f"{100.0 * row / rows}%",
        "width": f"{100.0 / cols}%",
        "height": f"{100.0 / rows}%",
        "border": "2px solid red",
        "boxSizing": "border-box",
        "pointerEvents": "none",
    }


def crop_size(
    win: Window, rows: int, cols: int, image_size: tuple[int, int] | None
) -> tuple[int, int]:
    """The crop's ``(width, height)`` in CSS pixels: the window's shape on the image (its
    patches' pixel shape when the image size is known, square patches otherwise), the
    longer side CROP_PX."""
    aspect = 1.0  # a patch's width / height
    if image_size and image_size[0] > 0 and image_size[1] > 0:
        aspect = (image_size[0] / cols) / (image_size[1] / rows)
    w, h = win.cols * aspect, float(win.rows)
    scale = CROP_PX / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _position(start: int, shown: int, total: int) -> float:
    """CSS background-position (%) that puts patch ``start`` at the box's edge: with the
    image ``total/shown`` times the box, p% aligns p% of both, so p = start/(total-shown)."""
    return 0.0 if total == shown else 100.0 * start / (total - shown)


def crop_style(
    src: str, win: Window, rows: int, cols: int, size: tuple[int, int]
) -> dict[str, str]:
    """A div whose background is the window of the image, ``size`` CSS pixels."""
    return {
        "width": f"{size[0]}px",
        "height": f"{size[1]}px",
        "backgroundImage": f'url("{src}")',
        "backgroundSize": f"{100.0 * cols / win.cols}% {100.0 * rows / win.rows}%",
        "backgroundPosition": (
            f"{_position(win.left, win.cols, cols)}% {_position(win.top, win.rows, rows)}%"
        ),
        "backgroundRepeat": "no-repeat",
        "imageRendering": "pixelated",
        "border": "1px solid #999",
        "position": "relative",
    }


def context_for(setting: int | None, rows: int, cols: int) -> int:
    """The crop's context: the setting (``vislens serve --crop-context``), else automatic."""
    if setting is None:
        return auto_context(rows, cols)
    if setting < 0:
        raise ValueError(f"crop context must be >= 0 patches, got {setting}")
    return setting
