"""CLI of the human stage: `vislens human task|tasks|annotator|import|export ...`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from vislens.store.annotations import AnnotationStore

human_app = typer.Typer(
    help="Human annotation tasks, annotators, imports and exports.", no_args_is_help=True
)
task_app = typer.Typer(help="Create an annotation task in a study.", no_args_is_help=True)
annotator_app = typer.Typer(help="Annotators and their personal links.", no_args_is_help=True)
import_app = typer.Typer(
    help="Load labels, annotator files or judge results into the store.", no_args_is_help=True
)
export_app = typer.Typer(
    help="Write a task's labels in seed 002 / LatentLens layouts.", no_args_is_help=True
)

StudyArg = Annotated[Path, typer.Argument(help="Study directory.")]
TaskArg = Annotated[str, typer.Argument(help="Task name (see `vislens human tasks`).")]
NameOpt = Annotated[
    str | None, typer.Option("--name", help="Task name; a default is derived from the file.")
]


def _store(study_dir: Path) -> AnnotationStore:
    from vislens.store.annotations import AnnotationStore
    from vislens.study import Study

    return AnnotationStore.for_study(Study.open(study_dir))


@task_app.command("binary")
def task_binary(
    study: StudyArg,
    export: Annotated[Path, typer.Argument(help="Neuronpedia explanation export (JSON).")],
    mode: Annotated[
        str, typer.Option(help="alignment, formatting, or any topic text for a custom question.")
    ] = "alignment",
    n: Annotated[int, typer.Option("--n", help="Descriptions to sample.")] = 300,
    seed: Annotated[int, typer.Option(help="Sampling seed (pandas random_state).")] = 42,
    name: NameOpt = None,
) -> None:
    """Sample N feature descriptions into a Related / Not related task (seed 002)."""
    from vislens.human.tasks import create_binary_task

    task = create_binary_task(_store(study), export, mode=mode, n=n, seed=seed, name=name)
    typer.echo(f"task {task.name}: {task.n_items} items — {task.question}")


@task_app.command("patch")
def task_patch(
    study: StudyArg,
    instances: Annotated[
        Path, typer.Argument(help="LatentLens data.json or a lens run's instances JSON.")
    ],
    name: NameOpt = None,
) -> None:
    """A patch-interpretability task (LatentLens human study)."""
    from vislens.human.tasks import create_patch_task

    task = create_patch_task(_store(study), instances, name=name)
    typer.echo(f"task {task.name}: {task.n_items} instances")


@task_app.command("rating")
def task_rating(
    study: StudyArg,
    features: Annotated[
        Path | None, typer.Argument(help="JSON list of {feature_id, label, images, heatmaps?}.")
    ] = None,
    sae: Annotated[
        str | None, typer.Option(help="Take features from this SAE run instead (topk + labels).")
    ] = None,
    feature: Annotated[
        list[int] | None, typer.Option(help="With --sae: only these features (repeat the option).")
    ] = None,
    n_images: Annotated[int, typer.Option(help="With --sae: top images per feature.")] = 9,
    name: NameOpt = None,
) -> None:
    """A feature-rating task: is the feature coherent, is its label right."""
    from vislens.errors import InputError
    from vislens.human.tasks import create_rating_task, create_rating_task_from_sae
    from vislens.study import Study

    if (features is None) == (sae is None):
        raise InputError("give either a features JSON file or --sae NAME")
    if sae is not None:
        task = create_rating_task_from_sae(
            _store(study),
            Study.open(study),
            sae,
            n_images=n_images,
            features=feature or None,
            name=name,
        )
    else:
        assert features is not None
        task = create_rating_task(_store(study), features, name=name)
    typer.echo(f"task {task.name}: {task.n_items} features")


@human_app.command("tasks")
def tasks(study: StudyArg) -> None:
    """List the study's annotation tasks with their progress."""
    from vislens.human.transfer import current_table

    store = _store(study)
    for t in store.tasks():
        table = current_table(store, t.name)
        typer.echo(
            f"{t.name}\t{t.kind}\t{t.n_items} items\t{table['annotator'].nunique()} annotators\t{len(table)} labels"
        )


@annotator_app.command("add")
def annotator_add(
    study: StudyArg,
    name: Annotated[str, typer.Argument(help="Annotator name.")],
    base_url: Annotated[
        str, typer.Option(help="Where the workbench is served.")
    ] = "http://127.0.0.1:8050",
) -> None:
    """Add an annotator and print their personal link token."""
    ann = _store(study).add_annotator(name)
    typer.echo(f"{ann.name}\t{ann.token}\t{base_url.rstrip('/')}/annotate/<task>?token={ann.token}")


@annotator_app.command("list")
def annotator_list(study: StudyArg) -> None:
    """List annotators and their tokens."""
    for ann in _store(study).annotators():
        typer.echo(f"{ann.name}\t{ann.token}")


@import_app.command("labels")
def import_labels(
    study: StudyArg,
    file: Annotated[Path, typer.Argument(help="Seed 002 human-label JSON.")],
    annotator: Annotated[str, typer.Option(help="Whose labels these are.")],
    task: Annotated[
        str | None, typer.Option(help="Task to add them to (default: the file's stem).")
    ] = None,
) -> None:
    """Load a seed 002 human-label file (creating the task from it if needed)."""
    from vislens.human.transfer import import_human_labels

    n = import_human_labels(_store(study), file, annotator=annotator, task_name=task)
    typer.echo(f"imported {n} labels")


@import_app.command("evaluations")
def import_evaluations_cmd(
    study: StudyArg,
    task: TaskArg,
    files: Annotated[list[Path], typer.Argument(help="evaluation_<user>_<session>.json files.")],
) -> None:
    """Load LatentLens annotator files into a patch task."""
    from vislens.human.transfer import import_evaluations

    typer.echo(f"imported {import_evaluations(_store(study), task, files)} answers")


@import_app.command("judge")
def import_judge(
    study: StudyArg,
    task: TaskArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="human_study_llm_results.json (patch) or a seed 002 classification JSON (binary)."
        ),
    ],
    judge: Annotated[str, typer.Option(help="Name to store the verdicts under (e.g. the model).")],
) -> None:
    """Load a judge's answers as verdicts on a task (patch: LatentLens results; binary: seed 002 classifications)."""
    from vislens.human.transfer import import_classifications, import_llm_results

    store = _store(study)
    if store.task(task).kind == "binary":
        n = import_classifications(store, task, file, judge=judge)
    else:
        n = import_llm_results(store, task, file, judge=judge)
    typer.echo(f"imported {n} verdicts")


@export_app.command("labels")
def export_labels(
    study: StudyArg,
    task: TaskArg,
    annotator: Annotated[
        str | None, typer.Option(help="Whose labels (needed when several).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Default: reports/human_labels/<task>.json")
    ] = None,
) -> None:
    """Write seed 002 human-label JSON."""
    from vislens.human.seed002 import write_human_labels
    from vislens.human.transfer import export_human_labels
    from vislens.study import Study

    recs = export_human_labels(_store(study), task, annotator)
    path = out or Study.open(study).reports_dir / "human_labels" / f"{task}.json"
    write_human_labels(path, recs)
    typer.echo(f"wrote {len(recs)} labels to {path}")


@export_app.command("instances")
def export_instances(
    study: StudyArg,
    task: TaskArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="data.json to write.")],
) -> None:
    """Write a patch task's instances as LatentLens data.json."""
    from vislens.human.latentlens import write_instances

    store = _store(study)
    store.task(task)  # an unknown task is an error naming the known ones
    write_instances(out, [it.payload for it in store.items(task)])
    typer.echo(f"wrote {out}")


@export_app.command("evaluations")
def export_evaluations_cmd(
    study: StudyArg,
    task: TaskArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the files.")],
) -> None:
    """Write one evaluation_<user>_<session>.json per annotator."""
    from vislens.human.transfer import export_evaluations

    for p in export_evaluations(_store(study), task, out):
        typer.echo(f"wrote {p}")


@export_app.command("judge")
def export_judge(
    study: StudyArg,
    task: TaskArg,
    judge: Annotated[str, typer.Option(help="Judge name.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="human_study_llm_results.json to write.")
    ],
) -> None:
    """Write a judge's stored verdicts in LatentLens' layout."""
    from vislens.human.transfer import export_llm_results

    typer.echo(
        f"wrote {export_llm_results(_store(study), task, out, judge=judge)} verdicts to {out}"
    )


@export_app.command("events")
def export_events(
    study: StudyArg,
    task: TaskArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV to write.")],
) -> None:
    """Write every event of a task (the full, append-only log) as CSV."""
    import json

    import pandas as pd

    from vislens.errors import InputError
    from vislens.io import atomic_path

    store = _store(study)
    store.task(task)
    rows = [
        {**e.__dict__, "value": json.dumps(e.value), "created_at": e.created_at.isoformat()}
        for e in store.events(task)
    ]
    if not rows:
        raise InputError(f"task {task!r} has no events yet — nothing to export")
    with atomic_path(out) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    typer.echo(f"wrote {len(rows)} events to {out}")


@export_app.command("comments")
def export_comments(
    study: StudyArg,
    task: TaskArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="CSV to write.")],
) -> None:
    """Write the annotators' current comments on a task's items as CSV."""
    from vislens.errors import InputError
    from vislens.human.comments import comments_table
    from vislens.io import atomic_path

    table = comments_table(_store(study), task)
    if table.empty:
        raise InputError(f"task {task!r} has no comments yet — nothing to export")
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    typer.echo(f"wrote {len(table)} comments to {out}")


human_app.add_typer(task_app, name="task")
human_app.add_typer(annotator_app, name="annotator")
human_app.add_typer(import_app, name="import")
human_app.add_typer(export_app, name="export")


def register(app: typer.Typer) -> None:
    """Add `vislens human ...`."""
    app.add_typer(human_app, name="human")
