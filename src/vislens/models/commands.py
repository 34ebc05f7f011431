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
    seed: int = typer.Option(0, help="Seeds initialisation, data order and questions."),
    tower_steps: int = typer.Option(None, help="Stage 1 steps (vision tower, per-patch heads)."),
    lm_steps: int = typer.Option(None, help="Stage 2 steps (connector + LM on questions)."),
    n_pool: int = typer.Option(None, help="Scenes stage 2 trains on."),
    threads: int = typer.Option(None, help="torch CPU threads."),
) -> None:
    """Train the toy VLM from scratch; the defaults reproduce the shipped weights."""
    import logging
    from dataclasses import replace

    from vislens.models.toy.train import ToyTrainConfig, train_toy_vlm

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    given: dict[str, Any] = {
        "tower_steps": tower_steps,
        "lm_steps": lm_steps,
        "n_pool": n_pool,
        "n_threads": threads,
    }
    cfg = replace(ToyTrainConfig(seed=seed), **{k: v for k, v in given.items() if v is not None})
    metrics = train_toy_vlm(out, cfg)
    typer.echo(json.dumps(metrics, indent=2))
    typer.echo(f"wrote {out}")


@toy_app.command("eval")
def toy_eval(
    model: str = typer.Option(
        "toy", help="'toy' (the shipped weights) or a directory `toy train` wrote."
    ),
    n: int = typer.Option(1000, "--n", help="Fresh scenes to ask about."),
    seed: int = typer.Option(
        None, help="World seed of the scenes (default: one training never used)."
    ),
    json_out: Path = typer.Option(None, "--json", help="Also write the report as JSON here."),
    record: bool = typer.Option(False, help="Also store the report in the model's train.json."),
) -> None:
    """Accuracy of the toy VLM per question type on freshly generated scenes."""
    from vislens.io import write_json_atomic
    from vislens.models.toy import load_toy_vlm
    from vislens.models.toy.evaluate import EVAL_WORLD_SEED, GOALS, evaluate_toy

    vlm = load_toy_vlm(None if model == "toy" else model)
    report = evaluate_toy(vlm, n, EVAL_WORLD_SEED if seed is None else seed)
    for task, acc in report.accuracy.items():
        goal = GOALS.get(task)
        mark = (
            "" if goal is None else f"  (goal >= {goal:.0%}: {'met' if acc >= goal else 'NOT met'})"
        )
        typer.echo(f"{task:<11} {acc:7.2%}  of {report.n_questions[task]} questions{mark}")
    if json_out is not None:
        write_json_atomic(json_out, report.to_json())
    if record:
        from vislens.models.toy import toy_model_dir
        from vislens.models.toy.train import record_eval

        record_eval(toy_model_dir() if model == "toy" else Path(model), report.to_json())


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
