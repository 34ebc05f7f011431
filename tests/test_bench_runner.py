"""bench/run_all.py: every bench runs (quick where it can), figures and plain output both land."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load_runner():
    spec = importlib.util.spec_from_file_location("bench_run_all", BENCH / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


REPORTING = """
import argparse
from _report import figure
ap = argparse.ArgumentParser()
ap.add_argument("--quick", action="store_true")
args = ap.parse_args()
print("progress 1/2\\rprogress 2/2")
print("quick" if args.quick else "full")
figure("fast thing", 0.5, "s", reference="slow loop", reference_value=10.0, goal=">= 10x",
       met=True, note="a|b")
figure("rate", 50.0, "items/s", reference="ideal", reference_value=100.0)
"""

PLAIN = 'print("plain bench: 42 widgets/s")\n'
FAILING = 'import sys\nprint("about to fail")\nsys.exit(3)\n'
SLOW = "import time\ntime.sleep(30)\n"


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bench"
    d.mkdir()
    shutil.copy(BENCH / "_report.py", d / "_report.py")
    (d / "a_reporting.py").write_text(REPORTING)
    (d / "b_plain.py").write_text(PLAIN)
    (d / "c_failing.py").write_text(FAILING)
    (d / "_helper.py").write_text("raise SystemExit('helpers are not benches')\n")
    return d


def test_runner_writes_figures_and_output(
    bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(
        "MAKELEVEL", raising=False
    )  # `make test` sets it; the header names make then
    runner = _load_runner()
    out = tmp_path / "results.md"
    rc = runner.main(["--bench-dir", str(bench_dir), "--out", str(out), "--timeout", "60"])
    assert rc == 1  # c_failing failed; the others still ran and are in the file
    text = out.read_text()
    assert (
        "| a_reporting | fast thing | 0.50 s | 10.0 s (slow loop) | 20.00× | >= 10x | yes | a\\|b |"
        in text
    )
    assert "| a_reporting | rate | 50.0 items/s | 100.0 items/s (ideal) | 0.50× |" in text
    assert "| b_plain | (no figures reported" in text and "plain bench: 42 widgets/s" in text
    assert "failed (exit 3)" in text and "about to fail" in text
    assert "_helper" not in text
    # --quick was passed to the bench that has it, and not to the others.
    assert "a_reporting.py --quick" in text and "b_plain.py --quick" not in text
    section = text.split("### a_reporting")[1]
    assert "quick" in section and "progress 2/2" in section and "progress 1/2" not in section
    for key in ("CPU", "cores", "torch threads", "python"):
        assert f"| {key} |" in text
    assert "Written by `python bench/run_all.py`" in text


def test_slow_bench_is_cut_at_the_time_limit(bench_dir: Path, tmp_path: Path) -> None:
    runner = _load_runner()
    (bench_dir / "d_slow.py").write_text(SLOW)
    run = runner.run_one(bench_dir / "d_slow.py", full=False, timeout_s=1)
    assert run.status == "timed out" and run.returncode is None


def test_figure_writes_nothing_without_the_runner(tmp_path: Path) -> None:
    script = tmp_path / "x.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(BENCH)!r})\n"
        "from _report import figure\nfigure('f', 1.0, 's')\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True)
    assert r.returncode == 0 and list(tmp_path.iterdir()) == [script]
    jsonl = tmp_path / "f.jsonl"
    env["VISLENS_BENCH_JSONL"] = str(jsonl)
    subprocess.run([sys.executable, str(script)], env=env, cwd=tmp_path, check=True)
    row = json.loads(jsonl.read_text())
    assert row["bench"] == "x" and row["value"] == 1.0 and row["met"] is None


def test_every_repo_bench_reports_figures_or_is_listed() -> None:
    """The benches that follow the convention keep following it."""
    runner = _load_runner()
    following = {"extract", "vlm", "judge", "sae_correlation", "sae_ms", "sae_topk"}
    for script in runner.discover(BENCH, None):
        if script.stem in following:
            text = script.read_text()
            assert "from _report import figure" in text and runner.has_quick_mode(script), script
