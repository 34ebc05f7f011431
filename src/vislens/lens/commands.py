"""CLI of the lens stage: ``vislens lens bank|neighbors|sample|rates``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vislens.engine.options import (
    ActorsOption,
    EngineOption,
    GpusPerActorOption,
    RayAddressOption,
    ray_options,
)
from vislens.errors import InputError

lens_app = typer.Typer(
    help="LatentLens: contextual bank, nearest words of every visual token, baselines, rates.",
    no_args_is_help=True,
)

StudyArg = Annotated[Path, typer.Argument(help="Study directory.")]


def _layers(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--layers {text!r}: give comma-separated integers, e.g. 1,2,4") from None


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


@lens_app.command("bank")
def bank_cmd(
    study: StudyArg,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            help="Captions: text file (one a line) or JSONL (caption/text field). Default: [lens] corpus or the grid world's captions.jsonl.",
        ),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option("--layers", help="Contextual layers, e.g. 1,2,4 (default: the paper's set)."),
    ] = None,
    max_per_token: Annotated[
        int | None,
        typer.Option("--max-per-token", help="Embeddings kept per token string (default 20)."),
    ] = None,
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="fp16 or int8 (per-row scale).")
    ] = None,
    text_model: Annotated[
        str | None,
        typer.Option(
            "--text-model",
            help="Build with this causal LM / text encoder instead of the study's VLM.",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing bank.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="The VLM LatentLens reads (saved as [lens] model; `lens neighbors` uses it too). Default: [lens] model, else the study's model.",
        ),
    ] = None,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    actors: ActorsOption = None,
    gpus_per_actor: GpusPerActorOption = None,
) -> None:
    """Build the contextual bank (resumable: run it again after a kill)."""
    from vislens.lens.run import build_study_bank
    from vislens.study import Study

    r = build_study_bank(
        Study.open(study), corpus, layers=_layers(layers), max_per_token=max_per_token,
        dtype=dtype, text_model=text_model, overwrite=overwrite, model=model,
        engine=engine, ray=ray_options(ray_address, actors, gpus_per_actor),
    )  # fmt: skip
    typer.echo(
        f"bank {r.root}: {r.n_rows} embeddings per layer, {r.n_shards_written}/{r.n_shards} shards "
        f"built in {r.seconds:.1f} s ({r.tokens_per_s:.0f} tokens/s), {_mib(r.bytes_on_disk)} on disk"
    )


@lens_app.command("neighbors")
def neighbors_cmd(
    study: StudyArg,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers", help="Visual layers (0 = connector output); default: the paper's set."
        ),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Neighbours per visual token (5).")
    ] = None,
    index: Annotated[
        str | None,
        typer.Option("--index", help="scan (exact), or FAISS: flat (exact), ivf, ivfpq."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N images.")] = None,
) -> None:
    """Visual tokens, their LatentLens neighbours and the two baselines, every export, layer alignment."""
    from vislens.lens.run import run_neighbors
    from vislens.study import Study

    r = run_neighbors(
        Study.open(study), visual_layers=_layers(layers), top_k=top_k, index=index, limit=limit
    )
    typer.echo(
        f"{r.n_images} images, {r.n_rows} neighbour rows in {r.seconds:.1f} s -> {r.lens_dir}"
    )
    for p in r.files:
        typer.echo(f"  {p}")


@lens_app.command("sample")
def sample_cmd(
    study: StudyArg,
    n_images: Annotated[int | None, typer.Option("--n-images", help="Images (60).")] = None,
    n_patches: Annotated[
        int | None, typer.Option("--n-patches", help="Patches per image (6).")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed ([lens] seed).")] = None,
) -> None:
    """Sample K patches x N images for the human study and the judge (seed 000 layouts)."""
    from vislens.lens.run import sample_study
    from vislens.study import Study

    for name, path in sample_study(
        Study.open(study), n_images=n_images, n_patches=n_patches, seed=seed
    ).items():
        typer.echo(f"{name}: {path}")


@lens_app.command("rates")
def rates_cmd(
    study: StudyArg,
    source: Annotated[
        str, typer.Option("--source", help="truth (grid-world annotations), judge, or human.")
    ] = "truth",
    threshold: Annotated[
        float,
        typer.Option(
            "--threshold", help="Human majority: share of annotators needed (ties at 0.5 count)."
        ),
    ] = 0.5,
    n_resamples: Annotated[int, typer.Option("--n-resamples", help="Bootstrap resamples.")] = 1000,
) -> None:
    """Interpretability rate per method x visual layer, with bootstrap CIs and a figure."""
    from vislens.lens.run import rates_study
    from vislens.study import Study

    rates, files = rates_study(
        Study.open(study), source=source, threshold=threshold, n_resamples=n_resamples
    )
    show = rates[rates["contextual_layer"] == -1] if "contextual_layer" in rates else rates
    typer.echo(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for p in files:
        typer.echo(f"  {p}")


def register(app: typer.Typer) -> None:
    """Add ``vislens lens ...`` to the vislens app."""
    app.add_typer(lens_app, name="lens")
