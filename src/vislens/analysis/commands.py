"""CLI of the analysis stage: `vislens agree labels|latentlens|task`."""

from __future__ import annotations

import json
from enum import Enum
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
        help="Share of an item's annotators the --rule needs, in (0, 1] (0.5 = half or more)."
    ),
]


class Rule(str, Enum):
    """How several annotators' answers to one item become one (analysis.agreement.aggregate)."""

    share = "share"
    plurality = "plurality"


RuleOpt = Annotated[
    Rule,
    typer.Option(
        "--rule",
        help=(
            "How annotators' answers become one per item. share (default, LatentLens' rule): "
            "positive (interpretable; related; for ratings the highest answer) when at least "
            "--threshold of the item's annotators gave it (or, for ratings, a higher one), else "
            "negative - every rated item gets a value, and a 1-1 split at 0.5 counts as "
            "positive. plurality: the single most common answer if its share is at least "
            "--threshold; ties and items below the threshold have no majority and are left out."
        ),
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
    rule: RuleOpt = Rule.share,
    n_resamples: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
) -> None:
    """LatentLens: the annotators' answer per instance ("interpretable") vs the judge →
    correlation_results.json."""
    from vislens.human.compare import latentlens_correlation

    rep = latentlens_correlation(
        instances,
        evaluations,
        llm,
        out,
        threshold=threshold,
        rule=rule.value,
        n_resamples=n_resamples,
        seed=seed,
    )
    c = rep["interpretability_correlation"]
    typer.echo(
        f"rule {rep['rule']} (threshold {threshold})  n {c['n']}  accuracy {_num(c.get('accuracy'))}  "
        f"kappa {_num(c.get('cohens_kappa'))}  pearson {_num(c.get('pearson_r'))}  "
        f"no majority {len(rep['no_majority'])}"
    )
    typer.echo(f"wrote {out}")


def _num(v: object) -> str:
    return "undefined" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


@agree_app.command("task")
def agree_task(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    task: Annotated[str, typer.Argument(help="Task name.")],
    judge: Annotated[
        str | None,
        typer.Option(help="Compare the annotators' answer per item with this judge's verdicts."),
    ] = None,
    threshold: ThresholdOpt = 0.5,
    rule: RuleOpt = Rule.share,
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
        rule=rule.value,
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
    if judge is not None:
        m = rep["majority_vs_judge"]
        typer.echo(
            f"annotators vs judge {judge} (rule {rule.value}, threshold {threshold}): n {m['n']}  "
            f"kappa {_num(m.get('cohens_kappa'))}  accuracy {_num(m.get('accuracy'))}  "
            f"no majority {len(rep['no_majority'])}"
        )
    if "groups" in rep:
        g = rep["groups"]["agreement"]
        typer.echo(
            f"group a vs group b (rule {rule.value}): n {g['n']}  kappa {_num(g.get('cohens_kappa'))}  "
            f"accuracy {_num(g.get('accuracy'))}"
        )
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `vislens agree ...`."""
    app.add_typer(agree_app, name="agree")
