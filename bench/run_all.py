"""Run every benchmark in its quick mode and write bench/results.md (``make bench``).

Each ``bench/*.py`` except helpers (names starting with ``_``) and this runner runs in its
own process, with ``--quick`` where the script accepts it, and a time limit. Figures a
bench reports through ``_report.figure`` land in one table, each beside its reference and
its goal; every bench's printed output follows, so a bench that reports no figures is
still in the file. The header says when, on which CPU, with how many threads, and by
which command. See bench/README.md for the convention.

    python bench/run_all.py [--full] [--only extract,judge] [--timeout 420] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ENV = "VISLENS_BENCH_JSONL"  # the same name as _report.ENV (kept importable without bench/ on sys.path)
TIME_UNITS = {"s": 1.0, "ms": 1e-3}
# Smaller sizes for benches that have no --quick yet (drop an entry once its bench has one).
QUICK_ARGS: dict[str, list[str]] = {}
MAX_OUTPUT_LINES = 80


@dataclass
class Run:
    """One bench's run: its command, status, seconds, figures and printed output."""

    name: str
    command: list[str]
    returncode: int | None = None  # None: killed at the time limit
    seconds: float = 0.0
    output: str = ""
    figures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.returncode is None:
            return "timed out"
        return "ok" if self.returncode == 0 else f"failed (exit {self.returncode})"


def discover(bench_dir: Path, only: set[str] | None) -> list[Path]:
    """Every benchmark script in ``bench_dir``, in name order."""
    scripts = [
        p
        for p in sorted(bench_dir.glob("*.py"))
        if not p.name.startswith("_") and p.resolve() != Path(__file__).resolve()
    ]
    return [p for p in scripts if only is None or p.stem in only]


def has_quick_mode(script: Path) -> bool:
    return '"--quick"' in script.read_text(encoding="utf-8")


def _clean(text: str) -> str:
    """Output as a terminal would show it: carriage-return progress lines keep their last state."""
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if len(lines) > MAX_OUTPUT_LINES:
        cut = len(lines) - MAX_OUTPUT_LINES
        lines = [f"... ({cut} earlier lines left out)", *lines[cut:]]
    return "\n".join(lines)


def run_one(script: Path, *, full: bool, timeout_s: float) -> Run:
    command = [sys.executable, str(script)]
    if not full and has_quick_mode(script):
        command.append("--quick")
    elif not full:
        command += QUICK_ARGS.get(script.stem, [])
    with tempfile.TemporaryDirectory(prefix="vislens-bench-") as tmp:
        jsonl = Path(tmp) / "figures.jsonl"
        env = dict(
            os.environ, **{ENV: str(jsonl), "VISLENS_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}
        )
        run = Run(script.stem, command)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                command,
                env=env,
                cwd=script.parent.parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
            run.returncode, out = proc.returncode, proc.stdout
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
        run.seconds = time.perf_counter() - t0
        run.output = _clean(out.decode("utf-8", "replace"))
        if jsonl.exists():
            run.figures = [json.loads(x) for x in jsonl.read_text().splitlines() if x.strip()]
    return run


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        if m:
            cpu = m.group(1).strip()
    n_cpu = os.cpu_count() or 0
    n_usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else n_cpu
    info = {
        "CPU": cpu,
        "cores": f"{n_usable} usable of {n_cpu}",
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        # Figures from a busy machine are slower: say how busy it was.
        info["load average (1, 5, 15 min) at the end"] = ", ".join(
            f"{x:.1f}" for x in os.getloadavg()
        )
    try:
        import numpy
        import torch

        info["torch threads"] = str(torch.get_num_threads())
        info["torch / numpy"] = f"{torch.__version__} / {numpy.__version__}"
    except ImportError:
        pass
    try:
        import vislens

        info["vislens"] = vislens.__version__
    except ImportError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    )
    if commit.returncode == 0:
        info["commit"] = commit.stdout.strip()
    return info


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    a = abs(value)
    text = (
        f"{value:,.0f}"
        if a >= 1000
        else f"{value:.1f}"
        if a >= 10
        else f"{value:.2f}"
        if a >= 0.1 or a == 0
        else f"{value:.3g}"
    )
    return f"{text} {unit}".strip()


def speed_vs_reference(row: dict[str, Any]) -> str:
    """How many times faster than the reference (>1: vislens is faster), where units allow."""
    ours, ref, unit = row["value"], row.get("reference_value"), row["unit"]
    if ref is None or not ours or not ref:
        return "—"
    ratio = ref / ours if unit in TIME_UNITS else ours / ref if unit.endswith("/s") else None
    return "—" if ratio is None else f"{ratio:.2f}×"


def _cell(text: Any) -> str:
    return str(text if text not in (None, "") else "—").replace("|", "\\|").replace("\n", " ")


def render(runs: list[Run], info: dict[str, str], command: str, when: dt.datetime) -> str:
    out = [
        "# vislens benchmarks",
        "",
        f"Written by `{command}` on {when:%Y-%m-%d %H:%M} UTC. Each bench ran in its quick mode"
        " (smaller inputs than its full run; see its docstring) unless marked otherwise.",
        '"× vs reference" is how many times faster vislens is than the reference (time'
        " figures: reference time / vislens time; rates: vislens rate / reference rate).",
        "",
        "| machine | |",
        "| --- | --- |",
        *[f"| {k} | {_cell(v)} |" for k, v in info.items()],
        "",
        "## Figures",
        "",
        "| bench | figure | vislens | reference | × vs reference | goal | met | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        if not run.figures:
            out.append(
                f"| {run.name} | (no figures reported; printed output below) | — | — | — | — | — |"
                f" {run.status} |"
            )
        for row in run.figures:
            ref = row.get("reference")
            ref_text = (
                f"{fmt(row.get('reference_value'), row['unit'])} ({ref})"
                if row.get("reference_value") is not None
                else ref
            )
            met = {True: "yes", False: "**no**", None: "—"}[row.get("met")]
            cells = [
                run.name,
                row["figure"],
                fmt(row["value"], row["unit"]),
                ref_text,
                speed_vs_reference(row),
                row.get("goal"),
                met,
                row.get("note"),
            ]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    out += [
        "",
        "## Runs",
        "",
        "| bench | command | seconds | status | figures |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        cmd = "python " + " ".join(shlex.quote(c) for c in run.command[1:])
        cmd = cmd.replace(str(HERE.parent) + "/", "")
        out.append(
            f"| {run.name} | `{cmd}` | {run.seconds:.0f} | {run.status} | {len(run.figures)} |"
        )
    for run in runs:
        out += ["", f"### {run.name}", "", "```", run.output or "(no output)", "```"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="run each bench's full size, not --quick")
    ap.add_argument("--only", default="", help="comma-separated bench names (default: all)")
    ap.add_argument("--timeout", type=float, default=420.0, help="seconds allowed per bench")
    ap.add_argument("--bench-dir", type=Path, default=HERE)
    ap.add_argument("--out", type=Path, default=None, help="default: BENCH_DIR/results.md")
    args = ap.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()} or None
    scripts = discover(args.bench_dir, only)
    if not scripts:
        print(f"no benchmarks found in {args.bench_dir}", file=sys.stderr)
        return 2
    runs = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        run = run_one(script, full=args.full, timeout_s=args.timeout)
        print(f"   {run.status} in {run.seconds:.0f} s, {len(run.figures)} figures", flush=True)
        runs.append(run)
    command = "make bench" if os.environ.get("MAKELEVEL") else "python bench/run_all.py"
    if argv is None and len(sys.argv) > 1:
        command += " " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    when = dt.datetime.now(dt.timezone.utc)
    out = args.out or args.bench_dir / "results.md"
    out.write_text(render(runs, machine(), command, when), encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
