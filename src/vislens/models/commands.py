"""CLI commands of the models stage: ``vislens toy train|eval`` and ``vislens ask``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

toy_app = typer.Typer(help="The toy VLM trained on the synthetic grid world.", no_args_is_help=True)


@toy_app.command("train")
def toy_train(
    out: Path = typer.Option(..., "--out", help="Directory to write the trained model to."),
    variant: str = typer.Option(
        "qa",
        help="qa: the shipped `toy` (LM + connector on questions); mlp: LatentLens' recipe "
        "(text-pretrained LM, frozen; connector on captions): the shipped `toy-mlp`.",
    ),
    seed: int = typer.Option(0, help="Seeds initialisation, data order and questions."),
    tower_steps: int = typer.Option(None, help="Stage 1 steps (vision tower, per-patch heads)."),
    lm_steps: int = typer.Option(None, help="qa: stage 2 steps (connector + LM on questions)."),
    text_steps: int = typer.Option(None, help="mlp: text stage steps (LM alone, text only)."),
    connector_steps: int = typer.Option(
        None, help="mlp: connector stage steps (connector alone, captions)."
    ),
    slots: str = typer.Option(
        None,
        help="mlp: how the text stage writes a scene — 'teacher' (a frozen caption-trained "
        "copy's contextual states, the shipped recipe) or 'sum' (word-embedding sums).",
    ),
    tower: str = typer.Option(
        None, help="mlp: 'toy' (the shipped toy's frozen tower, the default) or 'train'."
    ),
    teacher_steps: int = typer.Option(None, help="mlp, --slots teacher: teacher stage steps."),
    slot_layer: int = typer.Option(
        None, help="mlp, --slots teacher: the teacher's block that writes the scene."
    ),
    text_layers: int = typer.Option(None, help="mlp: blocks of the LM."),
    n_pool: int = typer.Option(None, help="Scenes the later stages train on."),
    threads: int = typer.Option(None, help="torch CPU threads."),
) -> None:
    """Train a toy VLM from scratch; the defaults reproduce the shipped weights."""
    import logging
    from dataclasses import replace

    from vislens.errors import InputError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    given: dict[str, Any] = {"tower_steps": tower_steps, "n_pool": n_pool, "n_threads": threads}
    cfg: Any
    if variant == "qa":
        from vislens.models.toy.train import ToyTrainConfig, train_toy_vlm

        mlp_only = (text_steps, connector_steps, slots, teacher_steps, slot_layer, text_layers)
        if any(v is not None for v in (*mlp_only, tower)):
            raise InputError(
                "--text-steps/--connector-steps/--slots/--teacher-steps/--slot-layer/"
                "--text-layers/--tower belong to --variant mlp"
            )
        given["lm_steps"] = lm_steps
        cfg = replace(
            ToyTrainConfig(seed=seed), **{k: v for k, v in given.items() if v is not None}
        )
        metrics = train_toy_vlm(out, cfg)
    elif variant == "mlp":
        from vislens.models.toy.mlp import ToyMlpConfig, train_toy_mlp

        if lm_steps is not None:
            raise InputError(
                "--lm-steps belongs to --variant qa; use --text-steps/--connector-steps"
            )
        given |= {"text_steps": text_steps, "connector_steps": connector_steps}
        given |= {"slots": slots, "teacher_steps": teacher_steps, "slot_layer": slot_layer}
        given["tower"] = tower
        if text_layers is not None:
            given["arch"] = replace(ToyMlpConfig().arch, text_layers=text_layers)
        cfg = replace(ToyMlpConfig(seed=seed), **{k: v for k, v in given.items() if v is not None})
        metrics = train_toy_mlp(out, cfg)
    else:
        raise InputError(f"--variant {variant!r}: choose qa or mlp")
    typer.echo(json.dumps(metrics, indent=2))
    typer.echo(f"wrote {out}")


@toy_app.command("eval")
def toy_eval(
    model: str = typer.Option(
        "toy", help="'toy', 'toy-mlp' (the shipped weights) or a directory `toy train` wrote."
    ),
    n: int = typer.Option(1000, "--n", help="Fresh scenes to ask about."),
    seed: int = typer.Option(
        None, help="World seed of the scenes (default: one training never used)."
    ),
    json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON here."),
    record: bool = typer.Option(False, help="Also store the report in the model's train.json."),
    tasks: str = typer.Option(
        None,
        help="Comma-separated tasks (presence, cell_color, cell_shape, location, count, caption); "
        "default: all but caption, and caption too for a model of the mlp recipe.",
    ),
) -> None:
    """Accuracy of a toy VLM per question type on freshly generated scenes."""
    from vislens.errors import InputError
    from vislens.io import write_json_atomic
    from vislens.models.toy import load_toy_vlm, toy_model_dir
    from vislens.models.toy.evaluate import (
        ALL_TASKS,
        EVAL_TASKS,
        EVAL_WORLD_SEED,
        GOALS,
        evaluate_toy,
    )
    from vislens.models.toy.paths import is_toy_name

    model_dir = toy_model_dir(model) if is_toy_name(model) else Path(model)
    info_path = model_dir / "train.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    is_mlp = info.get("config", {}).get("variant") == "toy-mlp"
    chosen = tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else None
    if chosen is not None and (bad := [t for t in chosen if t not in ALL_TASKS]):
        raise InputError(f"--tasks: unknown task(s) {bad}; choose from {', '.join(ALL_TASKS)}")
    vlm = load_toy_vlm(model)
    report = evaluate_toy(
        vlm,
        n,
        EVAL_WORLD_SEED if seed is None else seed,
        tasks=chosen or (ALL_TASKS if is_mlp else EVAL_TASKS),
    )
    for task, acc in report.accuracy.items():
        goal = None if is_mlp else GOALS.get(task)  # the QA toy's goals, not toy-mlp's
        mark = (
            "" if goal is None else f"  (goal >= {goal:.0%}: {'met' if acc >= goal else 'NOT met'})"
        )
        typer.echo(f"{task:<11} {acc:7.2%}  of {report.n_questions[task]} questions{mark}")
    if json_out is not None:
        write_json_atomic(json_out, report.to_json())
    if record:
        from vislens.models.toy.train import record_eval

        record_eval(model_dir, report.to_json())


def ask(
    target: str = typer.Argument(
        ..., help="A study directory, a model directory, a hub id, or 'toy'."
    ),
    image: Path = typer.Option(..., "--image", help="Image file."),
    prompt: str = typer.Option(..., "--prompt", help="What to ask."),
    max_new_tokens: int = typer.Option(48, help="Longest answer in tokens."),
    device: str = typer.Option("cpu", help="Torch device (cpu, cuda, auto)."),
) -> None:
    """Answer a prompt about an image with any supported VLM."""
    from vislens.models.ask import ask_vlm

    typer.echo(ask_vlm(target, image, prompt, max_new_tokens=max_new_tokens, device=device))


def register(app: typer.Typer) -> None:
    """Add ``vislens toy ...`` and ``vislens ask``."""
    app.add_typer(toy_app, name="toy")
    app.command("ask")(ask)
