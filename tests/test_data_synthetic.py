"""The seed-004 grid world: determinism, layout, and annotations that agree with the pixels."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from vislens.data.synthetic import (
    COLORS,
    WorldSpec,
    caption_for,
    generate_grid_world,
    read_annotations,
    sample_scene,
)
from vislens.errors import InputError


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    generate_grid_world(tmp_path / "a", 12, seed=3, show_progress=False)
    generate_grid_world(tmp_path / "b", 12, seed=3, show_progress=False)
    generate_grid_world(tmp_path / "c", 12, seed=4, show_progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_prefix_stability(tmp_path):
    """Scene i is the same whatever n is: a bigger set extends a smaller one."""
    generate_grid_world(tmp_path / "small", 3, seed=1, show_progress=False)
    generate_grid_world(tmp_path / "big", 6, seed=1, show_progress=False)
    for i in range(1, 4):
        name = f"images/img_{i:05d}.png"
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "big" / name).read_bytes()


def test_layout_is_the_seeds(tmp_path):
    path = generate_grid_world(tmp_path / "w", 5, seed=0, show_progress=False)
    lines = path.read_text().splitlines()
    assert len(lines) == 5
    rec = json.loads(lines[0])
    assert set(rec) == {"image", "grid", "patch", "objects"}
    assert rec["image"] == "images/img_00001.png"
    assert rec["grid"] == 10 and rec["patch"] == 28
    for obj in rec["objects"]:
        assert set(obj) == {"shape", "color", "r", "c", "bbox"}
    assert Image.open(tmp_path / "w" / rec["image"]).size == (280, 280)
    caps = [json.loads(x) for x in (tmp_path / "w" / "captions.jsonl").read_text().splitlines()]
    assert [c["image"] for c in caps] == [json.loads(x)["image"] for x in lines]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), index=st.integers(0, 10_000))
def test_annotations_agree_with_pixels(seed, index):
    spec = WorldSpec()
    img, objects = sample_scene(spec, seed, index)
    px = np.asarray(img)
    covered = np.zeros(px.shape[:2], bool)
    cells = set()
    for o in objects:
        x0, y0, x1, y1 = o.bbox
        # The bbox is tight, inside the object's cell, and the shape's colour fills part of it.
        assert o.c * spec.patch <= x0 < x1 <= (o.c + 1) * spec.patch
        assert o.r * spec.patch <= y0 < y1 <= (o.r + 1) * spec.patch
        region = px[y0:y1, x0:x1]
        is_color = np.all(region == np.array(COLORS[o.color]), axis=-1)
        assert is_color.mean() > 0.2
        assert (
            is_color[0].any()
            and is_color[-1].any()
            and is_color[:, 0].any()
            and is_color[:, -1].any()
        )
        covered[y0:y1, x0:x1] = True
        cells.add((o.r, o.c))
    assert len(cells) == len(objects)  # one object per cell at most
    assert np.all(px[~covered] == np.array(spec.background))
    assert spec.min_objects <= len(objects) <= spec.max_objects


def test_caption_names_every_object():
    _, objects = sample_scene(WorldSpec(), 0, 0)
    text = caption_for(objects)
    for o in objects:
        assert f"{o.color} {o.shape} in row {o.r}, column {o.c}" in text


def test_options_and_bad_options(tmp_path):
    spec = WorldSpec(
        grid=4, patch=16, shapes=("circle",), colors=("red",), min_objects=2, max_objects=2
    )
    generate_grid_world(tmp_path / "w", 3, seed=0, spec=spec, show_progress=False)
    for rec in read_annotations(tmp_path / "w" / "annotations.jsonl"):
        assert rec["grid"] == 4 and len(rec["objects"]) == 2
        assert {o["shape"] for o in rec["objects"]} == {"circle"}
    with pytest.raises(InputError, match="unknown shapes"):
        WorldSpec(shapes=("hexagon",))
    with pytest.raises(InputError, match="max_objects"):
        WorldSpec(grid=2, max_objects=5)
    with pytest.raises(InputError, match="not empty"):
        generate_grid_world(tmp_path / "w", 3, seed=0, show_progress=False)


def test_read_annotations_names_the_line(tmp_path):
    p = tmp_path / "annotations.jsonl"
    p.write_text('{"image": "a.png", "grid": 10, "patch": 28, "objects": []}\n{"image": "b.png"}\n')
    with pytest.raises(InputError, match=r"annotations.jsonl:2: missing key 'grid'"):
        read_annotations(p)
