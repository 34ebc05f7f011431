"""Bad input to the probe: one clear error naming the line or value, nothing written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vislens.data.synthetic import generate_grid_world
from vislens.errors import ConfigError, InputError
from vislens.probe import load_templates, run_probe
from vislens.probe.templates import TEMPLATES_DIR


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe-inputs") / "world"
    generate_grid_world(out, 8, seed=1, show_progress=False)
    return out


@pytest.fixture
def world(world_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "world"
    shutil.copytree(world_dir, dst)
    return dst


def present_target(world: Path) -> str:
    first = json.loads((world / "annotations.jsonl").read_text().splitlines()[0])
    o = first["objects"][0]
    return f"{o['color']} {o['shape']}"


def rewrite_line(world: Path, lineno: int, edit) -> None:  # type: ignore[no-untyped-def]
    path = world / "annotations.jsonl"
    lines = path.read_text().splitlines()
    rec = json.loads(lines[lineno - 1])
    edit(rec)
    lines[lineno - 1] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")


def expect_error(world: Path, match: str, cls: type = InputError, **kwargs) -> None:  # type: ignore[no-untyped-def]
    kwargs.setdefault("targets", [present_target(world)])
    with pytest.raises(cls, match=match):
        run_probe(world, model="toy", show_progress=False, **kwargs)
    assert not (world / "probe").exists()  # nothing half-written


def test_annotation_line_missing_a_key(world: Path) -> None:
    rewrite_line(world, 3, lambda r: r.pop("patch"))
    expect_error(world, r"annotations.jsonl:3: missing key 'patch'")


def test_object_missing_a_field(world: Path) -> None:
    rewrite_line(world, 2, lambda r: r["objects"][0].pop("color"))
    expect_error(world, r"annotations.jsonl:2: object 0 lacks \['color'\]")


def test_object_with_unknown_colour(world: Path) -> None:
    rewrite_line(world, 4, lambda r: r["objects"][0].update(color="grean"))
    expect_error(world, r"annotations.jsonl:4: object 0 has unknown color 'grean'")


def test_object_outside_the_grid(world: Path) -> None:
    rewrite_line(world, 5, lambda r: r["objects"][0].update(r=12))
    expect_error(world, r"annotations.jsonl:5: object 0 at r=12")


def test_image_size_not_grid_times_patch(world: Path) -> None:
    rec = json.loads((world / "annotations.jsonl").read_text().splitlines()[1])
    Image.new("RGB", (300, 280)).save(world / rec["image"])
    expect_error(world, r"line 2 .*300x280 px but grid 10 x patch 28 means 280x280", n_images=None)


def test_target_that_never_occurs(world: Path) -> None:
    present = {
        (o["color"], o["shape"])
        for line in (world / "annotations.jsonl").read_text().splitlines()
        for o in json.loads(line)["objects"]
    }
    absent = next(
        f"{c} {s}"
        for c in ("red", "green", "blue")
        for s in ("circle", "cross")
        if (c, s) not in present
    )
    expect_error(world, rf"target '{absent}' occurs in none of the 8 images", targets=[absent])


def test_unknown_colour_and_shape_in_target(world: Path) -> None:
    expect_error(world, r"unknown colour 'grean'.*colours in this world", targets=["grean circle"])
    expect_error(world, r"unknown shape 'hexagon'", targets=["green hexagon"])
    expect_error(world, r"give a colour and a shape", targets=["green"])


def test_unknown_paraphrase_id(world: Path) -> None:
    expect_error(world, r"unknown paraphrase ids \['p9'\]", paraphrases=["p9"])


def test_template_file_needs_five_paraphrases(tmp_path: Path) -> None:
    tpl = json.loads((TEMPLATES_DIR / "prompts_v1.json").read_text())
    tpl["location"] = tpl["location"][:4]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(tpl))
    with pytest.raises(ConfigError, match="at least 5 paraphrases"):
        load_templates(path)


def test_shipped_templates_hold_the_toys_trained_phrasings() -> None:
    from vislens.models.toy.tasks import location_question, presence_question

    tpl = load_templates()
    assert tpl.version == "prompts_v1"
    assert len(tpl.kinds["presence"]) >= 5 and len(tpl.kinds["location"]) >= 5
    import numpy as np

    from vislens.data.synthetic import GridObject

    objs = [GridObject("circle", "orange", 2, 3, (0, 0, 1, 1))]
    rng = np.random.default_rng(0)
    trained_p = presence_question(objs, rng, present=True).question
    trained_l = location_question(objs, rng).question  # type: ignore[union-attr]
    assert tpl.kinds["presence"][0].render("orange", "circle", 10) == trained_p
    assert tpl.kinds["location"][0].render("orange", "circle", 10) == trained_l


def test_cli_prints_one_line_and_exits_2(world: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vislens.cli",
            "probe",
            "run",
            str(world),
            "--model",
            "toy",
            "--target",
            "grean circle",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown colour 'grean'" in proc.stderr and "Traceback" not in proc.stderr
