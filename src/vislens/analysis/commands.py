"""CLI of the analysis stage: `vislens agree labels|latentlens|task`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

agree_app = typer.Typer(
    help="Agreement between raters: humans, judges, models.", no_args_is_help=True
)

ResamplesOpt = Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals.")]
SeedOpt = Annotated[int, typer.Option(help="Bootstrap seed.")]
ThresholdOpt = Annotated[
    float,
    typer.Option(
        help="Majority: an item takes a value when at least this share of its annotators gave it."
    ),
]


@agree_app.command("labels")
def agree_labels(
    human: Annotated[Path, typer.Argument(help="Reference labels (seed 002 human-label JSON).")],
    model: Annotated[
        Path,
        typer.Argument(
            help="Labels to compare (a model's classification JSON, or another person's)."
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Where the metrics JSON and merged CSV go.")
    ] = Path("metrics"),
    n_resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """Seed 002: accuracy, confusion, phi (and kappa, balanced accuracy, CIs) of two label files."""
    from vislens.human.compare import compare_label_files

    m, mp, cp = compare_label_files(human, model, out_dir, n_resamples=n_resamples, seed=seed)
    phi = "undefined" if m["phi"] is None else f"{m['phi']:.3f}"
    acc = "undefined" if m["accuracy"] is None else f"{m['accuracy']:.3f}"
    typer.echo(
        f"samples {m['samples']}  accuracy {acc}  TP={m['tp']} TN={m['tn']} FP={m['fp']} FN={m['fn']}  phi {phi}"
    )
    for name, why in m["agreement"].get("undefined", {}).items():
        typer.echo(f"  {name}: undefined — {why}")
    typer.echo(f"wrote {mp} and {cp}")


@agree_app.command("latentlens")
def agree_latentlens(
    instances: Annotated[Path, typer.Argument(help="LatentLens data.json (instances).")],
    evaluations: Annotated[
        list[Path], typer.Argument(help="evaluation_<user>_<session>.json files.")
    ],
    llm: Annotated[Path, typer.Option(help="The judge's human_study_llm_results.json.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output file.")] = Path(
        "correlation_results.json"
    ),
    threshold: ThresholdOpt = 0.5,
    n_resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """LatentLens: human majority "interpretable" vs the judge → correlation_results.json."""
    from vislens.human.compare import latentlens_correlation

    rep = latentlens_correlation(
        instances, evaluations, llm, out, threshold=threshold, n_resamples=n_resamples, seed=seed
    )
    c = rep["interpretability_correlation"]
    typer.echo(
        f"n {c['n']}  accuracy {c.get('accuracy')}  kappa {c.get('cohens_kappa')}  pearson {c.get('pearson_r')}"
    )
    typer.echo(f"wrote {out}")


@agree_app.command("task")
def agree_task(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    task: Annotated[str, typer.Argument(help="Task name.")],
    judge: Annotated[
        str | None,
        typer.Option(help="Compare the annotators' majority with this judge's verdicts."),
    ] = None,
    threshold: ThresholdOpt = 0.5,
    field: Annotated[
        str, typer.Option(help="Rating tasks: which question (coherent or label).")
    ] = "coherent",
    group_by: Annotated[
        str | None, typer.Option(help="Item field to break results down by (e.g. model).")
    ] = None,
    raters_a: Annotated[
        str | None, typer.Option(help="Comma-separated annotators: their majority vs --raters-b's.")
    ] = None,
    raters_b: Annotated[
        str | None, typer.Option(help="Comma-separated annotators of the second group.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Default: reports/agreement/<task>.json")
    ] = None,
    n_resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """Agreement on a stored task: among annotators, group vs group, majority vs a judge."""
    from vislens.human.compare import task_agreement
    from vislens.io import write_json_atomic
    from vislens.store.annotations import AnnotationStore
    from vislens.study import Study

    s = Study.open(study)

    def _names(v: str | None) -> list[str] | None:
        return [n.strip() for n in v.split(",") if n.strip()] if v else None

    rep = task_agreement(
        AnnotationStore.for_study(s),
        task,
        judge=judge,
        threshold=threshold,
        field=field,
        group_by=group_by,
        raters_a=_names(raters_a),
        raters_b=_names(raters_b),
        n_resamples=n_resamples,
        seed=seed,
    )
    path = out or s.reports_dir / "agreement" / f"{task}.json"
    write_json_atomic(path, rep)
    typer.echo(
        json.dumps(
            {k: rep[k] for k in ("n_annotators", "n_rated_items", "fleiss", "krippendorff")},
            indent=1,
        )
    )
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `vislens agree ...`."""
    app.add_typer(agree_app, name="agree")
