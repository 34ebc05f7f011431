"""CLI of the map stage: `vislens map STUDY --source ... --method ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def map_cmd(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    source: Annotated[
        str,
        typer.Option(
            help="What to map: activations (a layer, mean over tokens), sae (codes), embeddings."
        ),
    ] = "activations",
    method: Annotated[str, typer.Option(help="umap (umap-learn) or pca (scikit-learn).")] = "umap",
    layer: Annotated[
        int | None, typer.Option(help="Activation layer (default: the last stored).")
    ] = None,
    sae: Annotated[
        str | None, typer.Option(help="SAE run name under sae/ (default: the only one).")
    ] = None,
    embeddings_file: Annotated[
        Path | None,
        typer.Option("--embeddings-file", help="Parquet with item_id + embedding columns."),
    ] = None,
    embedder: Annotated[
        str, typer.Option(help="Vision encoder for --source embeddings without a file.")
    ] = "",
    name: Annotated[
        str | None,
        typer.Option(help="Map name: writes map/<name>_coords.npy (default: <source>_<method>)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the projection.")] = 0,
    n_neighbors: Annotated[int, typer.Option(help="UMAP neighbourhood size.")] = 15,
    replace: Annotated[bool, typer.Option(help="Start map/ over when its items differ.")] = False,
) -> None:
    """Compute a 2-D map of the study's items into STUDY/map/ (seed 003's cache layout)."""
    from vislens.map.run import map_study

    out = map_study(
        study, source=source, method=method, layer=layer, sae=sae, embeddings_file=embeddings_file,
        embedder=embedder, name=name, seed=seed, n_neighbors=n_neighbors, replace=replace,
    )  # fmt: skip
    typer.echo(f"wrote {out} — explore it with `vislens serve {study}` (Explorer)")
