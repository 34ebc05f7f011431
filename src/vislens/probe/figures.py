"""Per-case heatmaps: a layer's head-mean attention and chosen heads over the image, with
the target's cells outlined (``reports/figs/<case_id>.png``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vislens.io import atomic_path
from vislens.viz.heatmap import overlay_heatmap

_OUTLINE = (0, 255, 255)
_STRIP = 16


def outline_cells(image: Image.Image, cells: Sequence[int], grid: int) -> Image.Image:
    """``image`` with each cell ``r * grid + c`` outlined (2 px, cyan)."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    cw, ch = image.width / grid, image.height / grid
    for cell in cells:
        r, c = divmod(int(cell), grid)
        draw.rectangle(
            (round(c * cw), round(r * ch), round((c + 1) * cw) - 1, round((r + 1) * ch) - 1),
            outline=_OUTLINE,
            width=2,
        )
    return out


def case_figure(
    image: Image.Image,
    panels: Sequence[tuple[str, np.ndarray]],
    cells: Sequence[int],
    grid: int,
    title: str,
) -> Image.Image:
    """The image, then one overlay per ``(label, map_rc)`` panel, side by side, each with
    its label above and the target cells outlined; ``title`` on top."""
    tiles = [("image", outline_cells(image.convert("RGB"), cells, grid))]
    for label, grid_rc in panels:
        tiles.append((label, outline_cells(overlay_heatmap(image, grid_rc), cells, grid)))
    w, h = image.width, image.height
    canvas = Image.new("RGB", (w * len(tiles), h + 2 * _STRIP), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill=(0, 0, 0))
    for i, (label, tile) in enumerate(tiles):
        canvas.paste(tile, (i * w, 2 * _STRIP))
        draw.text((i * w + 4, _STRIP + 2), label, fill=(0, 0, 0))
    return canvas


def save_case_figure(path: Path, figure: Image.Image) -> Path:
    with atomic_path(Path(path)) as tmp:
        figure.save(tmp, format="PNG")
    return Path(path)
