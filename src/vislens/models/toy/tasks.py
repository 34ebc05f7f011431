"""Questions and answers about a grid-world scene: the toy VLM's training and eval tasks.

Each task turns a scene's ground-truth objects into ``(kind, question, answer)``. The
phrasings are fixed, so a question's words say exactly which task it is:

- ``presence``   "is there a green circle?" -> "yes" / "no" (half of them absent)
- ``cell_color`` "what color is the shape in row 3, column 7?" -> "green" / "none"
- ``cell_shape`` "what shape is in row 3, column 7?" -> "circle" / "none"
- ``location``   "where is the green circle?" -> "row 3, column 7" (asked only when unique)
- ``count``      "how many shapes are there?" / "how many red shapes are there?" -> "2"
- ``caption``    "describe the image." -> ``caption_for(objects)``

Each QA also names its *evidence*: the cells (``r * grid + c``) the answer depends on — the
cells holding the asked colour and shape, the named cell, the counted shapes. Training
uses them as an auxiliary target (``train.py``), and they are the ground truth for "where
should the model look" when probing its attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vislens.data.synthetic import COLORS, SHAPES, GridObject, caption_for

TASKS: tuple[str, ...] = ("presence", "cell_color", "cell_shape", "location", "count", "caption")


@dataclass(frozen=True)
class QA:
    """One question about a scene and its ground-truth answer."""

    kind: str
    question: str
    answer: str
    evidence: tuple[int, ...] | None = None
    """Cells ``r * grid + c`` the answer depends on (empty: none hold what is asked;
    ``None``: the whole image, as for captions)."""


def presence_question(
    objects: Sequence[GridObject], rng: np.random.Generator, *, present: bool | None = None
) -> QA:
    """``is there a <color> <shape>?``; half present, the absent half often a near miss
    (the colour or the shape is in the image, not the pair)."""
    pairs = {(o.color, o.shape) for o in objects}
    if present is None:
        present = bool(rng.random() < 0.5) and bool(pairs)
    if present:
        color, shape = sorted(pairs)[int(rng.integers(len(pairs)))]
    else:
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in pairs]
        near = [p for p in absent if any(p[0] == c or p[1] == s for c, s in pairs)]
        pool = near if near and rng.random() < 0.5 else absent
        color, shape = pool[int(rng.integers(len(pool)))]
    cells = tuple(sorted(o.r * 10 + o.c for o in objects if (o.color, o.shape) == (color, shape)))
    return QA("presence", f"is there a {color} {shape}?", "yes" if present else "no", cells)


def cell_question(
    objects: Sequence[GridObject],
    rng: np.random.Generator,
    kind: str,
    *,
    grid: int = 10,
    p_empty: float = 0.15,
) -> QA:
    """Colour (``cell_color``) or shape (``cell_shape``) of a named cell; ``none`` if empty."""
    by_cell = {(o.r, o.c): o for o in objects}
    if by_cell and rng.random() >= p_empty:
        cells = sorted(by_cell)
        r, c = cells[int(rng.integers(len(cells)))]
    else:
        empty = [(r, c) for r in range(grid) for c in range(grid) if (r, c) not in by_cell]
        r, c = empty[int(rng.integers(len(empty)))]
    obj = by_cell.get((r, c))
    cell = (r * grid + c,)
    if kind == "cell_color":
        question = f"what color is the shape in row {r}, column {c}?"
        return QA(kind, question, obj.color if obj else "none", cell)
    return QA(kind, f"what shape is in row {r}, column {c}?", obj.shape if obj else "none", cell)


def location_question(objects: Sequence[GridObject], rng: np.random.Generator) -> QA | None:
    """``where is the <color> <shape>?`` for a pair that occurs exactly once (else None)."""
    counts: dict[tuple[str, str], int] = {}
    for o in objects:
        counts[(o.color, o.shape)] = counts.get((o.color, o.shape), 0) + 1
    unique = [o for o in objects if counts[(o.color, o.shape)] == 1]
    if not unique:
        return None
    o = unique[int(rng.integers(len(unique)))]
    return QA(
        "location",
        f"where is the {o.color} {o.shape}?",
        f"row {o.r}, column {o.c}",
        (o.r * 10 + o.c,),
    )


def count_question(objects: Sequence[GridObject], rng: np.random.Generator) -> QA:
    """How many shapes, or how many of one colour."""
    if rng.random() < 0.5:
        cells = tuple(sorted(o.r * 10 + o.c for o in objects))
        return QA("count", "how many shapes are there?", str(len(objects)), cells)
    color = tuple(COLORS)[int(rng.integers(len(COLORS)))]
    cells = tuple(sorted(o.r * 10 + o.c for o in objects if o.color == color))
    return QA("count", f"how many {color} shapes are there?", str(len(cells)), cells)


def caption_question(objects: Sequence[GridObject]) -> QA:
    """Describe the whole image."""
    return QA("caption", "describe the image.", caption_for(objects).rstrip("."))


def sample_qa(objects: Sequence[GridObject], rng: np.random.Generator, kind: str) -> QA:
    """One question of task ``kind`` about ``objects`` (location falls back to presence
    when no colour+shape pair is unique)."""
    if kind == "presence":
        return presence_question(objects, rng)
    if kind in ("cell_color", "cell_shape"):
        return cell_question(objects, rng, kind)
    if kind == "location":
        return location_question(objects, rng) or presence_question(objects, rng)
    if kind == "count":
        return count_question(objects, rng)
    if kind == "caption":
        return caption_question(objects)
    raise ValueError(f"unknown toy task {kind!r}; choose from {TASKS}")
