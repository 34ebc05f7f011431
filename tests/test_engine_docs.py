"""docs/scale.md names every Ray option the code has, and only options the CLI has."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from typer.testing import CliRunner

from vislens.cli import app
from vislens.engine.ray_data import RayOptions

DOC = Path(__file__).resolve().parents[1] / "docs" / "scale.md"

# RayOptions field -> how the doc's option table names it (a CLI flag or the Python field).
SPELLING = {
    "address": "--ray-address",
    "n_actors": "--actors",
    "num_gpus": "--gpus-per-actor",
    "num_cpus": "RayOptions.num_cpus",
    "batch_size": "RayOptions.batch_size",
}


def _table_rows(text: str) -> list[str]:
    section = text.split("| option | CLI | default |", 1)[1].split("\n\n", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]


def test_every_ray_option_is_in_the_doc_table() -> None:
    fields = {f.name for f in dataclasses.fields(RayOptions)}
    assert fields == set(SPELLING), "a RayOptions field was added or renamed: document it"
    table = "\n".join(_table_rows(DOC.read_text()))
    for name in fields:
        assert f"`{SPELLING[name]}`" in table, name


def test_doc_flags_exist_on_the_commands() -> None:
    text = DOC.read_text()
    flags = set(re.findall(r"`(--[a-z-]+)`", "\n".join(_table_rows(text))))
    flags |= set(re.findall(r"vislens extract .*?(--[a-z-]+)", text))
    assert {"--engine", "--ray-address", "--actors", "--gpus-per-actor"} <= flags
    help_text = CliRunner().invoke(app, ["extract", "--help"], terminal_width=200).output
    for flag in flags:
        assert flag in help_text, flag
