"""CLI commands of the store stage: `vislens extract`."""

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


def parse_layers(text: str) -> list[int]:
    """'7,8,11' or '-1' -> [7, 8, 11] / [-1]; a bad entry is a usage error."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"'{text}': give comma-separated integers, e.g. 7,8,11 or -1"
        ) from None


def extract_command(
    study_dir: Annotated[Path, typer.Argument(metavar="STUDY", help="The study directory.")],
    layers: Annotated[
        str | None, typer.Option(help="Layers, e.g. 7,8,11 (0 = embeddings, -1 = last block).")
    ] = None,
    tokens: Annotated[str | None, typer.Option(help="cls, patches, all or mean.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images per forward pass.")] = None,
    shard_size: Annotated[int | None, typer.Option(help="Images per shard.")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace activations made with other settings.")
    ] = False,
    engine: EngineOption = "local",
    ray_address: RayAddressOption = None,
    actors: ActorsOption = None,
    gpus_per_actor: GpusPerActorOption = None,
) -> None:
    """Extract residual-stream activations of the study's images (resumable: re-run after a kill)."""
    from vislens.store.extract import extract
    from vislens.study import Study

    study = Study.open(study_dir)
    result = extract(
        study,
        layers=parse_layers(layers) if layers else None,
        tokens=tokens,
        batch_size=batch_size,
        shard_size=shard_size,
        overwrite=overwrite,
        engine=engine,
        ray=ray_options(ray_address, actors, gpus_per_actor),
    )
    skipped = result.n_shards - result.n_shards_written
    if result.n_shards_written == 0:
        typer.echo(
            f"{result.n_items} images, all {result.n_shards} shards already done -> {result.root}"
        )
        return
    typer.echo(
        f"{result.n_items} images, {result.n_shards} shards ({skipped} already done) -> {result.root}\n"
        f"throughput: {result.images_per_s:.1f} images/s ({result.n_items_written} images in {result.seconds:.1f} s)"
    )


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_command)
