"""Patch heatmaps drawn over their image: what the feature pages and rating tasks show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import Float
from PIL import Image

from vislens.io import atomic_path


def overlay_heatmap(
    image: Image.Image,
    grid_hw: Float[np.ndarray, "h w"],
    *,
    alpha: float = 0.6,
    vmax: float | None = None,
) -> Image.Image:
    """``image`` with ``grid_hw`` (one value per patch, >= 0) upsampled to its size and drawn in red.

    Values are scaled by ``vmax`` (default: the grid's maximum), so a cell at ``vmax`` gets
    ``alpha`` red and a zero cell keeps its pixels exactly.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    top = float(vmax if vmax is not None else grid_hw.max())
    scale = np.clip(grid_hw / top, 0.0, 1.0) if top > 0 else np.zeros_like(grid_hw)
    # Nearest-neighbour upsampling keeps each patch a sharp square, as the model sees it.
    rows = (np.arange(h) * grid_hw.shape[0]) // h
    cols = (np.arange(w) * grid_hw.shape[1]) // w
    weight = (alpha * scale[rows][:, cols])[..., None]
    red = np.array([255.0, 0.0, 0.0], dtype=np.float32)
    out = rgb * (1.0 - weight) + red * weight
    return Image.fromarray(np.round(out).astype(np.uint8))


def save_overlay(image_path: Path, grid_hw: np.ndarray, out_path: Path, **kwargs: float) -> Path:
    """Write ``overlay_heatmap`` of the image at ``image_path`` to ``out_path`` (PNG, atomically)."""
    with Image.open(image_path) as img:
        overlay = overlay_heatmap(img, grid_hw, **kwargs)
    with atomic_path(Path(out_path)) as tmp:
        overlay.save(tmp, format="PNG")
    return Path(out_path)
