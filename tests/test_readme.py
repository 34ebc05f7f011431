"""The README's quick start runs as written (in a temporary directory)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def quick_start_commands() -> list[list[str]]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README's Quick start has no bash block"
    return [
        shlex.split(line)
        for line in block.group(1).splitlines()
        if line.strip().startswith("vislens ")
    ]


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None
    lines = [ln.split("#")[0].strip() for ln in first_block.group(1).splitlines() if ln.strip()]
    assert lines == ["make demo", "make test"]


@pytest.mark.slow
def test_quick_start_runs(tmp_path):
    commands = quick_start_commands()
    assert len(commands) >= 3
    env = dict(os.environ, VISLENS_NO_PROGRESS="1", HF_HUB_OFFLINE="1")
    for argv in commands:
        assert argv[0] == "vislens"
        r = subprocess.run(
            [sys.executable, "-m", "vislens.cli", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert r.returncode == 0, f"{shlex.join(argv)} failed:\n{r.stdout}\n{r.stderr}"
