"""`vislens lens ...`: bad input is one line and exit status 2, and nothing is written;
a bank run prints its size and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers_vlm import save_tiny_llava
from vislens.cli import main
from vislens.data.config import ImagesConfig
from vislens.data.synthetic import generate_grid_world
from vislens.models.config import ModelConfig
from vislens.study import Study, StudyConfig


@pytest.fixture()
def study(tmp_path: Path) -> Path:
    generate_grid_world(tmp_path / "world", 3, seed=1, show_progress=False)
    Study.init(
        tmp_path / "s",
        StudyConfig(
            images=ImagesConfig(source=str(tmp_path / "world")),
            model=ModelConfig(name_or_path="toy"),
        ),
    )
    return tmp_path / "s"


class Result:
    def __init__(self, exit_code: int, output: str) -> None:
        self.exit_code, self.output = exit_code, output


@pytest.fixture()
def run(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """``vislens ARGS`` through the real entry point (errors: one line, status 2)."""

    def go(*args: str) -> Result:
        code = 0
        try:
            main(list(args))
        except SystemExit as e:
            code = int(e.code or 0)
        out = capsys.readouterr()
        return Result(code, out.out + out.err)

    return go


def test_bad_input_is_one_line_and_status_2(study: Path, tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    r = run("lens", "bank", str(study), "--corpus", str(empty))
    assert r.exit_code == 2 and "corpus is empty" in r.output
    assert r.output.strip().count("\n") == 0
    r = run("lens", "bank", str(study), "--layers", "1,7")
    assert r.exit_code == 2 and "out of range" in r.output
    r = run("lens", "neighbors", str(study))
    assert r.exit_code == 2 and "no bank here" in r.output
    assert not (study / "lens" / "bank").exists()
    assert list((study / "lens").iterdir()) == []


def test_bank_prints_size_and_time(study: Path, run) -> None:  # type: ignore[no-untyped-def]
    r = run("lens", "bank", str(study), "--layers", "1,4", "--dtype", "int8")
    assert r.exit_code == 0, r.output
    assert (
        "embeddings per layer" in r.output and "MiB on disk" in r.output and "tokens/s" in r.output
    )
    cfg = Study.open(study).config.lens
    assert cfg.contextual_layers == [1, 4] and cfg.dtype == "int8"
    r = run("lens", "bank", str(study), "--layers", "1,4", "--dtype", "int8")
    assert r.exit_code == 2 and "already complete" in r.output


def test_lens_model_reads_another_vlm_than_the_study_and_neighbors_follow_it(
    study: Path, tmp_path: Path, run
) -> None:  # type: ignore[no-untyped-def]
    other = save_tiny_llava(tmp_path / "tiny-llava")
    r = run("lens", "bank", str(study), "--model", str(other), "--layers", "1")
    assert r.exit_code == 0, r.output
    assert Study.open(study).config.lens.model == str(other)
    r = run("lens", "neighbors", str(study), "--limit", "1")
    assert r.exit_code == 0, r.output
    assert json.loads((study / "lens" / "run.json").read_text())["model"] == str(other)
    # Without [lens] model the study's own VLM (toy) would read a bank it did not build.
    s = Study.open(study)
    s.config = s.config.model_copy(update={"lens": s.config.lens.model_copy(update={"model": ""})})
    s.save()
    r = run("lens", "neighbors", str(study), "--limit", "1")
    assert r.exit_code == 2 and "not with 'toy'" in r.output
