"""A probe run killed with SIGKILL resumes, and ends with what an uninterrupted run writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vislens.data.synthetic import generate_grid_world
from vislens.probe import read_case_npz, run_probe


def n_answers(cache: Path) -> int:
    if not cache.is_file():
        return 0
    try:
        with sqlite3.connect(cache) as db:
            return int(db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not there yet
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    world = tmp_path / "world"
    generate_grid_world(world, 8, seed=4, show_progress=False)
    o = json.loads((world / "annotations.jsonl").read_text().splitlines()[0])["objects"][0]
    target = f"{o['color']} {o['shape']}"
    reference = tmp_path / "reference"
    shutil.copytree(world, reference)
    args = ["--model", "toy", "--target", target, "--paraphrase", "p0", "--paraphrase", "l0"]
    args += ["--batch-size", "2", "--n-figures", "2"]
    cmd = [sys.executable, "-m", "vislens.cli", "probe", "run", str(world), *args]
    env = os.environ | {"VISLENS_NO_PROGRESS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cache = world / "judge-cache.sqlite"
    deadline = time.monotonic() + 300
    while n_answers(cache) < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reports = world / "probe" / "reports"
    killed_at = n_answers(cache)
    assert killed_at >= 4
    assert not (reports / "per_case.csv").exists()  # reports only come at the end
    assert not list((reports / "attn_cache").glob("*.partial"))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    counts = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert counts["answers_cached"] >= killed_at - 2  # at most one batch was in flight
    run_probe(
        reference,
        model="toy",
        targets=[target],
        paraphrases=["p0", "l0"],
        batch_size=2,
        n_figures=2,
        show_progress=False,
    )
    ref = reference / "probe" / "reports"
    assert (reports / "per_case.csv").read_bytes() == (ref / "per_case.csv").read_bytes()
    assert (reports / "prompt_sensitivity.csv").read_bytes() == (
        ref / "prompt_sensitivity.csv"
    ).read_bytes()
    files = sorted(p.name for p in (ref / "attn_cache").glob("*.npz"))
    assert files == sorted(p.name for p in (reports / "attn_cache").glob("*.npz"))
    for name in files:
        a, b = (
            read_case_npz(reports / "attn_cache" / name),
            read_case_npz(ref / "attn_cache" / name),
        )
        for key in ("attention", "generic", "relative"):
            np.testing.assert_array_equal(a[key], b[key])
        assert a["meta"] == b["meta"]
