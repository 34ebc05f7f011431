"""CLI behaviour of the judge commands: one-line errors, defaults, and templates that render."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers_judge import FakeOpenAIServer
from vislens.cli import app
from vislens.judge.templates import load_template

TASKS = ["classify_description", "classify_image", "latentlens", "label_feature", "reask"]


def _vislens(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VISLENS_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vislens.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_export_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "export.json"
    bad.write_text(json.dumps([{"index": "x1", "description": "d"}]))
    proc = _vislens(
        "judge", "classify", str(bad), "--model", "m", "--base-url", "http://127.0.0.1:9/v1"
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "record 0 has index 'x1'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    export = tmp_path / "e.json"
    export.write_text(json.dumps([{"index": "1", "description": "bold text"}]))
    proc = _vislens("judge", "classify", str(export))
    assert proc.returncode == 2 and "--model" in proc.stderr
    assert not (tmp_path / "judge-cache.sqlite").exists()


def test_classify_default_output_name(tmp_path: Path) -> None:
    export = tmp_path / "12-res__l0-21.json"
    export.write_text(json.dumps([{"index": "1", "description": "bold text"}]))
    with FakeOpenAIServer(lambda body: '{"label": "related"}') as srv:
        res = CliRunner().invoke(
            app,
            [
                "judge",
                "classify",
                str(export),
                "--category",
                "formatting",
                "--model",
                "org/m",
                "--base-url",
                srv.base_url,
            ],
        )
    assert res.exit_code == 0, res.output
    out = tmp_path / "12-res__l0-21_formatting_classified_org_m.json"
    assert json.loads(out.read_text())[0]["label"] == "related"
    assert (tmp_path / "judge-cache.sqlite").is_file()
    assert re.search(r"1/1 ok, 0 parse failures, 0 refusals, 0 errors", res.output)


@pytest.mark.parametrize("task", TASKS)
def test_every_template_renders_completely(task: str) -> None:
    tpl = load_template(task)
    names = set(re.findall(r"\$(\w+)", tpl.system + tpl.user))
    system, user = tpl.render(**{n: f"<{n}>" for n in names})
    assert "$" not in system + user and user.strip()
    assert tpl.id == f"{task}/v1"
    with pytest.raises(KeyError):
        if names:
            tpl.render()
        else:
            raise KeyError("no placeholders")


def test_unknown_template_version_is_named() -> None:
    from vislens.errors import InputError

    with pytest.raises(InputError, match="no prompt version 9"):
        load_template("latentlens", 9)


def test_shared_judge_options_are_defined_once_and_offered_everywhere() -> None:
    import typer.main

    from vislens.judge.commands import SHARED_OPTIONS

    group = typer.main.get_command(app)
    judge = group.commands["judge"].commands  # type: ignore[attr-defined]
    for name in ("classify", "latentlens", "images"):
        opts = {p.name for p in judge[name].params}
        assert set(SHARED_OPTIONS) <= opts, name
    label = {p.name for p in group.commands["label"].params}  # type: ignore[attr-defined]
    assert set(SHARED_OPTIONS) - {"study"} <= label and "study" in label  # the argument
