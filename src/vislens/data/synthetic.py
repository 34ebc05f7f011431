"""The synthetic grid world of seed 004: coloured shapes on a grid of cells, positions known.

Images are ``grid * patch`` pixels square (default 10 x 28 = 280), one object at most per
cell. ``generate_grid_world`` writes, exactly in the seed's layout::

    OUT/images/img_00001.png ...
    OUT/annotations.jsonl   {"image", "grid", "patch", "objects": [{shape, color, r, c, bbox}]}

plus ``OUT/captions.jsonl`` ({"image", "caption"}: a text corpus about the same images)
and ``OUT/world.json`` (the shapes, colours and sizes used). ``bbox`` is the drawn shape's
pixel box ``[x0, y0, x1, y1]`` with x1/y1 exclusive; rows ``r`` and columns ``c`` are 0-based.
Every image is drawn from its own RNG stream ``(seed, index)``, so the same seed gives the
same bytes whatever ``n`` is or how generation is split.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vislens.errors import InputError
from vislens.io import read_jsonl, write_text_atomic

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")

# Distinct, saturated colours (RGB) that stay apart after resizing and normalisation.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 40),
    "green": (40, 190, 60),
    "blue": (30, 90, 230),
    "yellow": (250, 220, 20),
    "purple": (150, 40, 190),
    "orange": (250, 130, 20),
}
BACKGROUND: tuple[int, int, int] = (16, 16, 16)


@dataclass(frozen=True)
class GridObject:
    """One shape in one cell."""

    shape: str
    color: str
    r: int
    c: int
    bbox: tuple[int, int, int, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "color": self.color,
            "r": self.r,
            "c": self.c,
            "bbox": list(self.bbox),
        }


@dataclass(frozen=True)
class WorldSpec:
    """What a grid world may contain."""

    grid: int = 10
    """Cells per side."""
    patch: int = 28
    """Pixels per cell side."""
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(COLORS)
    min_objects: int = 1
    max_objects: int = 6
    background: tuple[int, int, int] = BACKGROUND
    color_values: dict[str, tuple[int, int, int]] = field(default_factory=lambda: dict(COLORS))

    def __post_init__(self) -> None:
        if self.grid < 1 or self.patch < 8:
            raise InputError(
                f"grid world: grid must be >= 1 and patch >= 8 (got grid={self.grid}, patch={self.patch})"
            )
        unknown_shapes = set(self.shapes) - set(SHAPES)
        if unknown_shapes:
            raise InputError(
                f"grid world: unknown shapes {sorted(unknown_shapes)}; choose from {list(SHAPES)}"
            )
        unknown_colors = set(self.colors) - set(self.color_values)
        if unknown_colors:
            raise InputError(
                f"grid world: unknown colours {sorted(unknown_colors)}; choose from {list(self.color_values)}"
            )
        if not 0 <= self.min_objects <= self.max_objects <= self.grid * self.grid:
            raise InputError(
                f"grid world: need 0 <= min_objects <= max_objects <= grid*grid "
                f"(got {self.min_objects}, {self.max_objects}, grid={self.grid})"
            )

    @property
    def size(self) -> int:
        return self.grid * self.patch


def _shape_box(rng: np.random.Generator, r: int, c: int, patch: int) -> tuple[int, int, int, int]:
    """A square box inside cell (r, c), between 60% and 85% of the cell, jittered."""
    side = int(rng.integers(int(0.6 * patch), int(0.85 * patch) + 1))
    slack = patch - side
    ox = int(rng.integers(0, slack + 1))
    oy = int(rng.integers(0, slack + 1))
    x0, y0 = c * patch + ox, r * patch + oy
    return (x0, y0, x0 + side, y0 + side)


def _draw(
    draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], rgb: tuple[int, int, int]
) -> None:
    x0, y0, x1, y1 = box
    xl, yl = x1 - 1, y1 - 1  # PIL boxes are inclusive
    cx, cy = (x0 + xl) / 2, (y0 + yl) / 2
    if shape == "circle":
        draw.ellipse((x0, y0, xl, yl), fill=rgb)
    elif shape == "square":
        draw.rectangle((x0, y0, xl, yl), fill=rgb)
    elif shape == "triangle":
        draw.polygon([(cx, y0), (xl, yl), (x0, yl)], fill=rgb)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (xl, cy), (cx, yl), (x0, cy)], fill=rgb)
    elif shape == "cross":
        t = max(2, (x1 - x0) // 3)
        draw.rectangle((x0, cy - t / 2, xl, cy + t / 2), fill=rgb)
        draw.rectangle((cx - t / 2, y0, cx + t / 2, yl), fill=rgb)
    else:  # pragma: no cover - WorldSpec validates shapes
        raise ValueError(shape)


def _tight_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def sample_scene(spec: WorldSpec, seed: int, index: int) -> tuple[Image.Image, list[GridObject]]:
    """Draw scene ``index`` of the world with ``seed``: the image and its objects (sorted by r, c)."""
    rng = np.random.default_rng([seed, index])
    n_obj = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    cells = rng.choice(spec.grid * spec.grid, size=n_obj, replace=False)
    img = Image.new("RGB", (spec.size, spec.size), spec.background)
    draw = ImageDraw.Draw(img)
    objects: list[GridObject] = []
    for cell in sorted(int(x) for x in cells):
        r, c = divmod(cell, spec.grid)
        shape = spec.shapes[int(rng.integers(len(spec.shapes)))]
        color = spec.colors[int(rng.integers(len(spec.colors)))]
        box = _shape_box(rng, r, c, spec.patch)
        # Draw on a scratch canvas first so the recorded bbox is the exact pixel extent.
        scratch = Image.new("L", (spec.size, spec.size), 0)
        _draw(ImageDraw.Draw(scratch), shape, box, 255)  # type: ignore[arg-type]
        bbox = _tight_bbox(np.asarray(scratch) > 0)
        _draw(draw, shape, box, spec.color_values[color])
        objects.append(GridObject(shape, color, r, c, bbox))
    return img, objects


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def caption_for(objects: Sequence[GridObject]) -> str:
    """A plain caption naming every object with its cell (0-based row and column)."""
    if not objects:
        return "an empty grid."
    parts = [f"{_article(o.color)} {o.color} {o.shape} in row {o.r}, column {o.c}" for o in objects]
    return "; ".join(parts) + "."


def png_bytes(img: Image.Image) -> bytes:
    """PNG bytes with fixed settings and no metadata, so equal pixels give equal bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def generate_grid_world(
    out_dir: Path,
    n: int,
    seed: int = 0,
    spec: WorldSpec | None = None,
    *,
    overwrite: bool = False,
    start_index: int = 0,
    show_progress: bool = True,
) -> Path:
    """Write ``n`` scenes to ``out_dir`` in seed 004's layout; returns the annotations path.

    The directory is built beside ``out_dir`` and renamed into place at the end, so an
    interrupted run leaves no half-written dataset.
    """
    from vislens.progress import track

    spec = spec or WorldSpec()
    out_dir = Path(out_dir)
    if n < 1:
        raise InputError(f"grid world: --n must be at least 1 (got {n})")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(
            f"{out_dir}: exists and is not empty — choose another directory or pass --overwrite"
        )
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "images").mkdir(parents=True)
    ann_lines: list[str] = []
    cap_lines: list[str] = []
    indices = range(start_index, start_index + n)
    for i in track(indices, "synth grid", total=n) if show_progress else indices:
        img, objects = sample_scene(spec, seed, i)
        rel = f"images/img_{i + 1:05d}.png"
        (tmp / rel).write_bytes(png_bytes(img))
        ann = {
            "image": rel,
            "grid": spec.grid,
            "patch": spec.patch,
            "objects": [o.to_json() for o in objects],
        }
        ann_lines.append(json.dumps(ann))
        cap_lines.append(json.dumps({"image": rel, "caption": caption_for(objects)}))
    (tmp / "annotations.jsonl").write_text("\n".join(ann_lines) + "\n", encoding="utf-8")
    (tmp / "captions.jsonl").write_text("\n".join(cap_lines) + "\n", encoding="utf-8")
    world = asdict(spec) | {"seed": seed, "n": n, "start_index": start_index}
    write_text_atomic(tmp / "world.json", json.dumps(world, indent=2) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir / "annotations.jsonl"


def read_annotations(path: Path) -> list[dict[str, Any]]:
    """Read a seed-004 annotations.jsonl, checking each line's keys; errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: annotations file not found")
    records: list[dict[str, Any]] = []
    for lineno, rec in read_jsonl(path):
        for key in ("image", "grid", "patch", "objects"):
            if key not in rec:
                raise InputError(
                    f"{path}:{lineno}: missing key '{key}' (seed 004 layout: image, grid, patch, objects)"
                )
        for j, obj in enumerate(rec["objects"]):
            missing = {"shape", "color", "r", "c"} - set(obj)
            if missing:
                raise InputError(f"{path}:{lineno}: object {j} lacks {sorted(missing)}")
        records.append(rec)
    return records
