"""The probe's questions: targets, the grid world they are asked about, and one case per
(image, target, question kind, paraphrase).

Questions are built from seed 004's ``annotations.jsonl`` (``image``, ``grid``, ``patch``,
``objects[{shape, color, r, c, bbox}]``). For each target ("green circle"):

- **presence** on images with the target and on images without it (at most ``n_images``
  per target, up to half of them with it), expected ``yes`` / ``no``;
- **location** on the images where the target occurs exactly once (the question is
  ambiguous otherwise), expected its ``(row, col)``.

Each case carries its *evidence* cells ``r * grid + c`` as the grid world's QA does
(``models/toy/tasks.py``): the cells holding the target (none for an absent one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vislens.data.synthetic import COLORS, SHAPES, read_annotations
from vislens.errors import InputError
from vislens.io import read_jsonl
from vislens.probe.templates import PromptTemplates


@dataclass(frozen=True)
class Target:
    color: str
    shape: str

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def slug(self) -> str:
        return f"{self.color}_{self.shape}"


@dataclass(frozen=True)
class SceneRecord:
    """One annotated image."""

    line: int
    """Line of annotations.jsonl (1-based)."""
    image: str
    """The image path as written in annotations.jsonl."""
    path: Path
    grid: int
    patch: int
    objects: tuple[dict[str, Any], ...]
    image_id: str = ""
    """The file's stem (``img_00001``), or its whole relative path with ``/`` as ``_`` when
    two images share a stem; it names the image's cases."""

    def cells_of(self, target: Target) -> tuple[int, ...]:
        return tuple(
            sorted(
                int(o["r"]) * self.grid + int(o["c"])
                for o in self.objects
                if (o["color"], o["shape"]) == (target.color, target.shape)
            )
        )


@dataclass(frozen=True)
class World:
    """The annotated images and the colours and shapes they may hold."""

    annotations_path: Path
    scenes: tuple[SceneRecord, ...]
    colors: tuple[str, ...]
    shapes: tuple[str, ...]

    @property
    def grid(self) -> int:
        return self.scenes[0].grid

    @property
    def patch(self) -> int:
        return self.scenes[0].patch


@dataclass(frozen=True)
class ProbeCase:
    """One question about one image."""

    case_id: str
    scene: SceneRecord
    target: Target
    kind: str
    paraphrase_id: str
    question: str
    expected: str
    """``yes`` / ``no`` for presence, ``row R, column C`` for location."""
    evidence: tuple[int, ...]
    """Cells ``r * grid + c`` holding the target (empty when it is absent)."""

    @property
    def group_id(self) -> str:
        """Cases that differ only in their paraphrase share this id (for flip counting)."""
        return f"{self.scene.image_id}-{self.target.slug}-{self.kind}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def _int_field(rec: dict[str, Any], key: str, where: str) -> int:
    value = rec[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: '{key}' must be an integer (got {value!r})")
    return value


def load_world(annotations_path: Path) -> World:
    """Read and check a seed-004 ``annotations.jsonl``; every error names the line.

    Colours and shapes come from ``world.json`` beside it when present (then an object of
    another colour or shape is an error), else from vislens' grid world and the file itself.
    """
    annotations_path = Path(annotations_path)
    root = annotations_path.parent
    world_json = root / "world.json"
    declared: tuple[list[str], list[str]] | None = None
    if world_json.is_file():
        meta = json.loads(world_json.read_text(encoding="utf-8"))
        declared = (list(meta.get("colors", COLORS)), list(meta.get("shapes", SHAPES)))
    read_annotations(annotations_path)  # its key checks, each naming the line
    records = read_jsonl(annotations_path)
    if not records:
        raise InputError(f"{annotations_path}: no annotations")
    colors: list[str] = list(declared[0]) if declared else list(COLORS)
    shapes: list[str] = list(declared[1]) if declared else list(SHAPES)
    scenes: list[SceneRecord] = []
    grid0: tuple[int, int] | None = None
    for lineno, rec in records:
        where = f"{annotations_path}:{lineno}"
        grid = _int_field(rec, "grid", where)
        patch = _int_field(rec, "patch", where)
        if grid < 1 or patch < 1:
            raise InputError(f"{where}: grid and patch must be positive (got {grid}, {patch})")
        if grid0 is None:
            grid0 = (grid, patch)
        elif (grid, patch) != grid0:
            raise InputError(
                f"{where}: grid {grid} x patch {patch} differs from line 1's "
                f"{grid0[0]} x {grid0[1]}; the probe needs one grid for all images"
            )
        if not isinstance(rec["objects"], list):
            raise InputError(f"{where}: 'objects' must be a list")
        for j, obj in enumerate(rec["objects"]):
            r, c = (
                _int_field(obj, "r", f"{where} object {j}"),
                _int_field(obj, "c", f"{where} object {j}"),
            )
            if not (0 <= r < grid and 0 <= c < grid):
                raise InputError(
                    f"{where}: object {j} at r={r}, c={c} is outside the {grid}x{grid} grid"
                )
            for key, known in (("color", colors), ("shape", shapes)):
                value = obj[key]
                if not isinstance(value, str) or not value or " " in value:
                    raise InputError(f"{where}: object {j} has {key} {value!r}; expected one word")
                if value not in known:
                    if declared is not None:
                        raise InputError(
                            f"{where}: object {j} has unknown {key} {value!r}; {world_json} "
                            f"lists {known}"
                        )
                    known.append(value)
        image = rec["image"]
        if not isinstance(image, str) or not image:
            raise InputError(f"{where}: 'image' must be a path string (got {image!r})")
        path = Path(image) if Path(image).is_absolute() else root / image
        scenes.append(SceneRecord(lineno, image, path, grid, patch, tuple(rec["objects"])))
    paths = [str(s.path.resolve()) for s in scenes]
    if len(set(paths)) != len(paths):
        dup = next(s for s, p in zip(scenes, paths, strict=True) if paths.count(p) > 1)
        raise InputError(f"{annotations_path}:{dup.line}: image {dup.image!r} is listed twice")
    stems = [_safe(Path(s.image).stem) for s in scenes]
    if len(set(stems)) != len(stems):
        stems = [_safe(str(Path(s.image).with_suffix(""))) for s in scenes]
    scenes = [replace(s, image_id=i) for s, i in zip(scenes, stems, strict=True)]
    return World(annotations_path, tuple(scenes), tuple(colors), tuple(shapes))


def parse_target(text: str, world: World) -> Target:
    """``"green circle"`` -> Target; an unknown colour or shape is an error naming it."""
    words = text.strip().lower().split()
    if len(words) != 2:
        raise InputError(f"target {text!r}: give a colour and a shape, e.g. 'green circle'")
    color, shape = words
    if color not in world.colors:
        raise InputError(
            f"target {text!r}: unknown colour {color!r}; colours in this world: {list(world.colors)}"
        )
    if shape not in world.shapes:
        raise InputError(
            f"target {text!r}: unknown shape {shape!r}; shapes in this world: {list(world.shapes)}"
        )
    return Target(color, shape)


def resolve_targets(
    world: World, targets: Sequence[str], *, all_targets: bool = False
) -> list[Target]:
    """The targets to probe: those named (each must occur in some image), or every colour +
    shape pair that occurs when ``all_targets``."""
    present = {(o["color"], o["shape"]) for s in world.scenes for o in s.objects}
    if all_targets:
        if targets:
            raise InputError("give targets or --all-targets, not both")
        return [Target(c, s) for c, s in sorted(present)]
    if not targets:
        raise InputError("no target: give --target 'green circle' (repeatable) or --all-targets")
    out: list[Target] = []
    for text in targets:
        t = parse_target(text, world)
        if (t.color, t.shape) not in present:
            raise InputError(
                f"target {t.name!r} occurs in none of the {len(world.scenes)} images of "
                f"{world.annotations_path}; choose one that occurs (or use --all-targets)"
            )
        if t not in out:
            out.append(t)
    return out


def select_scenes(
    world: World, target: Target, n_images: int | None
) -> tuple[list[SceneRecord], list[SceneRecord]]:
    """``(with, without)``: at most ``n_images`` images, up to half of them holding the
    target, in file order (deterministic, and the same whatever other targets are asked)."""
    pos = [s for s in world.scenes if s.cells_of(target)]
    neg = [s for s in world.scenes if not s.cells_of(target)]
    if n_images is None:
        return pos, neg
    n_pos = min(len(pos), (n_images + 1) // 2)
    n_neg = min(len(neg), n_images - n_pos)
    return pos[:n_pos], neg[:n_neg]


def build_cases(
    world: World,
    targets: Sequence[Target],
    templates: PromptTemplates,
    *,
    n_images: int | None = None,
    paraphrase_ids: Sequence[str] | None = None,
    kinds: Sequence[str] = ("presence", "location"),
) -> list[ProbeCase]:
    """Every case, ordered by image so that one image's questions share a batch."""
    ids = list(paraphrase_ids or [])
    unknown = [i for i in ids if i not in templates.ids]
    if unknown:
        raise InputError(
            f"unknown paraphrase ids {unknown}; template file {templates.version} has {templates.ids}"
        )
    grid = world.grid
    cases: list[ProbeCase] = []
    for target in targets:
        pos, neg = select_scenes(world, target, n_images)
        for kind in kinds:
            paras = templates.paraphrases(kind, ids)
            scenes = (
                [*pos, *neg]
                if kind == "presence"
                else [s for s in pos if len(s.cells_of(target)) == 1]
            )
            for scene in scenes:
                cells = scene.cells_of(target)
                if kind == "presence":
                    expected = "yes" if cells else "no"
                else:
                    r, c = divmod(cells[0], grid)
                    expected = f"row {r}, column {c}"
                for p in paras:
                    cases.append(
                        ProbeCase(
                            case_id=f"{scene.image_id}-{target.slug}-{kind}-{p.id}",
                            scene=scene,
                            target=target,
                            kind=kind,
                            paraphrase_id=p.id,
                            question=p.render(target.color, target.shape, grid),
                            expected=expected,
                            evidence=cells,
                        )
                    )
    order = {s.image_id: i for i, s in enumerate(world.scenes)}
    cases.sort(key=lambda c: order[c.scene.image_id])  # stable: keeps target/kind/paraphrase order
    return cases


def check_image_sizes(scenes: Sequence[SceneRecord]) -> None:
    """Every image exists and is ``grid * patch`` pixels square; the error names the line."""
    from PIL import Image, UnidentifiedImageError

    for s in scenes:
        where = f"annotations line {s.line} ({s.path})"
        if not s.path.is_file():
            raise InputError(f"{where}: image file not found")
        try:
            with Image.open(s.path) as im:
                size = im.size
        except (UnidentifiedImageError, OSError) as e:
            raise InputError(f"{where}: not a readable image ({e})") from None
        side = s.grid * s.patch
        if size != (side, side):
            raise InputError(
                f"{where}: image is {size[0]}x{size[1]} px but grid {s.grid} x patch {s.patch} "
                f"means {side}x{side}; fix the image or the annotation's grid/patch"
            )
