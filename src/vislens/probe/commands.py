"""CLI commands of the probe stage: ``vislens probe run``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

probe_app = typer.Typer(
    help="Visual-search probe: questions on the grid world, answers scored, attention to the grid.",
    no_args_is_help=True,
)


@probe_app.command("run")
def probe_run(
    study: Path = typer.Argument(
        ..., help="A study directory, or a grid world with annotations.jsonl."
    ),
    model: str | None = typer.Option(
        None, "--model", help="'toy', a hub id or a model directory (default: the study's)."
    ),
    target: list[str] | None = typer.Option(
        None, "--target", help="A target such as 'green circle'; repeat for more."
    ),
    all_targets: bool = typer.Option(
        False, "--all-targets", help="Every colour + shape pair that occurs."
    ),
    n_images: int | None = typer.Option(
        None, "--n-images", help="Images per target, up to half holding it (default 100)."
    ),
    paraphrase: list[str] | None = typer.Option(
        None, "--paraphrase", help="Paraphrase id to ask (p0..p5, l0..l4); repeat; default all."
    ),
    kind: list[str] | None = typer.Option(
        None, "--kind", help="presence or location; repeat; default both."
    ),
    attention: bool | None = typer.Option(
        None, "--attention/--no-attention", help="Dump attention to the grid (default on)."
    ),
    query: str | None = typer.Option(
        None, "--query", help="Attention query: 'last' prompt token (default) or 'answer_start'."
    ),
    templates: str | None = typer.Option(
        None, "--templates", help="Template file: shipped name (prompts_v1) or a JSON path."
    ),
    plot_layer: int | None = typer.Option(
        None, "--plot-layer", help="Layer whose head mean is drawn (default: best localising)."
    ),
    plot_head: list[str] | None = typer.Option(
        None, "--plot-head", help="A head to draw, LAYER:HEAD; repeat (default: best three)."
    ),
    n_figures: int | None = typer.Option(
        None, "--n-figures", help="Cases to draw heatmaps for, TP and FN first (default 12)."
    ),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Cases per forward pass."),
    device: str = typer.Option("cpu", help="Torch device (cpu, cuda, auto)."),
    dtype: str = typer.Option("float32", help="float32, float16 or bfloat16."),
) -> None:
    """Ask presence and location questions (several paraphrases), score them, dump attention
    to the grid and rank heads TP vs FN; writes STUDY/probe/reports/."""
    from vislens.probe.runner import run_probe

    summary = run_probe(
        study,
        model=model,
        targets=target or None,
        all_targets=all_targets or None,
        n_images=n_images,
        paraphrases=paraphrase or None,
        kinds=kind or None,
        attention=attention,
        query=query,
        templates=templates,
        plot_layer=plot_layer,
        plot_heads=plot_head or None,
        n_figures=n_figures,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
    )
    for target_name, block in summary["presence"].items():
        m = block["overall"]
        typer.echo(
            f"{target_name}: presence P={_pct(m['precision'])} R={_pct(m['recall'])} "
            f"F1={_pct(m['f1'])} ({m['n']} questions, {m['n_unparseable']} unparseable)"
        )
    for target_name, block in summary["location"].items():
        m = block["overall"]
        typer.echo(
            f"{target_name}: location exact={_pct(m['accuracy'])} within one="
            f"{_pct(m['accuracy_within_one'])} ({m['n']} questions, {m['n_unparseable']} unparseable)"
        )
    typer.echo(f"head ranking: {summary['head_ranking'].get('message', '')}")
    typer.echo(json.dumps(summary["counts"]))
    typer.echo(f"wrote {Path(study) / 'probe' / 'reports'}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def register(app: typer.Typer) -> None:
    """Add ``vislens probe ...``."""
    app.add_typer(probe_app, name="probe")
