"""The Python example in docs/judge.md runs as written (offline, against the scripted server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "judge.md"


def test_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "docs_example"})
    assert (tmp_path / "classified.json").is_file() and (tmp_path / "judge-cache.sqlite").is_file()


def test_documented_commands_exist() -> None:
    from typer.testing import CliRunner

    from vislens.cli import app

    text = DOC.read_text(encoding="utf-8")
    for cmd in sorted(set(re.findall(r"vislens (judge \w+|label-score|label)\b", text))):
        res = CliRunner().invoke(app, [*cmd.split(), "--help"])
        assert res.exit_code == 0, cmd
    for flag in set(re.findall(r" (--[a-z][a-z-]*)", text)):
        assert any(
            flag in CliRunner().invoke(app, [*c.split(), "--help"]).output
            for c in ("judge classify", "judge latentlens", "judge images", "label", "label-score")
        ), flag
