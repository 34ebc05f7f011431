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
    no_serve: Annotated[
        bool,
        typer.Option("--no-serve", help="Stop after the scorecard; do not serve the workbench."),
    ] = False,
    port: Annotated[int, typer.Option(help="Port of the workbench (bound to 127.0.0.1).")] = 8050,
    quick: Annotated[
        bool,
        typer.Option(
            help="A one-minute look: 24 images, a short SAE, a few images per lens (--n is ignored)."
        ),
    ] = False,
) -> None:
    """Run every stage on the toy world, score each lens against its ground truth, then serve
    the workbench over the study."""
    from vislens.demo.pipeline import DemoSettings
    from vislens.demo.run import run_demo

    settings = DemoSettings.quick(seed) if quick else DemoSettings(n_images=n, seed=seed)
    summary = run_demo(out_dir, settings=settings, log=typer.echo)
    print_summary(summary)
    if no_serve:
        return
    from vislens.app.shell import serve

    url = f"http://127.0.0.1:{port}"

    def ready() -> None:
        typer.echo(f"\nvislens workbench on {url}/ (Ctrl-C stops it)")
        for path, what in PAGES:
            typer.echo(f"  {url}{path:<11} {what}")

    serve(Path(str(summary["study"])), host="127.0.0.1", port=port, on_ready=ready)


PAGES: tuple[tuple[str, str], ...] = (
    ("/", "overview: what ran, counts, links"),
    ("/features", "SAE features: MS band, tier, correlations, top images with heatmaps"),
    ("/patches", "LatentLens: hover a cell for its neighbours per visual layer, baselines beside"),
    (
        "/probe",
        "visual-search probe: attention heatmaps per case, head ranking, prompt sensitivity",
    ),
    ("/explorer", "2-D map of the images, coloured by truth, the toy's answers and rationales"),
    ("/annotate", "human annotation tasks"),
)
"""The workbench's pages over the demo study, as the demo prints them."""


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command("demo")(demo_command)
