"""The ``vislens demo`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def print_summary(summary: dict) -> None:
    """The demo's answers, stage timings and scorecard, as a reader wants them in a terminal."""
    from vislens.demo.report import scorecard_lines

    for qa in summary["questions"]:
        mark = "ok " if qa["correct"] else "NO "
        typer.echo(f"  {mark} {qa['question']:<48} -> {qa['answer']!r} (truth: {qa['truth']})")
    for line in scorecard_lines(summary["scorecard"]):
        typer.echo(line)
    stages = []
    for t in summary["stages"]:
        stages.append(f"{t['stage']} " + ("reused" if t["reused"] else f"{t['seconds']:.1f} s"))
    typer.echo("stages: " + ", ".join(stages))
    typer.echo(f"scorecard: {Path(str(summary['study'])) / 'reports' / 'scorecard.json'}")


def demo_command(
    out_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to put the world and the study.")
    ] = Path("demo-study"),
    n: Annotated[int, typer.Option("--n", help="Images in the synthetic world.")] = 200,
    seed: Annotated[int, typer.Option(help="World seed (and every sampling seed).")] = 0,
) -> None:
    """Run every stage on the toy world and score each lens against its ground truth."""
    from vislens.demo import run_demo

    summary = run_demo(out_dir, n_images=n, seed=seed, log=typer.echo)
    print_summary(summary)


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command("demo")(demo_command)
