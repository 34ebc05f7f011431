"""CLI commands of the data stage: `vislens init`, `vislens synth grid`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

synth_app = typer.Typer(
    help="Generate synthetic image worlds with known content.", no_args_is_help=True
)


@synth_app.command("grid")
def synth_grid(
    out: Annotated[
        Path, typer.Argument(help="Directory to write images/ and annotations.jsonl into.")
    ],
    n: Annotated[int, typer.Option("--n", help="Number of images.")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same bytes.")] = 0,
    grid: Annotated[int, typer.Option(help="Cells per side.")] = 10,
    patch: Annotated[int, typer.Option(help="Pixels per cell side.")] = 28,
    shapes: Annotated[
        str, typer.Option(help="Comma-separated shapes to draw from.")
    ] = "circle,square,triangle,diamond,cross",
    colors: Annotated[
        str, typer.Option(help="Comma-separated colours to draw from.")
    ] = "red,green,blue,yellow,purple,orange",
    min_objects: Annotated[int, typer.Option(help="Fewest objects per image.")] = 1,
    max_objects: Annotated[int, typer.Option(help="Most objects per image.")] = 6,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty OUT.")] = False,
) -> None:
    """Write the synthetic grid world of seed 004 (images + annotations.jsonl + captions.jsonl)."""
    from vislens.data.synthetic import WorldSpec, generate_grid_world

    spec = WorldSpec(
        grid=grid,
        patch=patch,
        shapes=tuple(s.strip() for s in shapes.split(",") if s.strip()),
        colors=tuple(c.strip() for c in colors.split(",") if c.strip()),
        min_objects=min_objects,
        max_objects=max_objects,
    )
    path = generate_grid_world(out, n, seed, spec, overwrite=overwrite)
    typer.echo(f"wrote {n} images and {path}")


def init_command(
    study_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="Directory to create the study in.")
    ],
    images: Annotated[
        str | None, typer.Option(help="Folder, CSV/JSONL manifest, or grid-world directory.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Vision encoder: hub id or local directory.")
    ] = None,
    layers: Annotated[str | None, typer.Option(help="Layers to extract, e.g. 7,8,11.")] = None,
    tokens: Annotated[str | None, typer.Option(help="cls, patches, all or mean.")] = None,
    name: Annotated[str, typer.Option(help="Study name (default: the directory name).")] = "",
) -> None:
    """Create a study directory with a validated study.toml (and index its images)."""
    from vislens.data.setup import init_study, parse_layers

    study = init_study(
        study_dir,
        images=images,
        model=model,
        name=name,
        layers=parse_layers(layers) if layers else None,
        tokens=tokens,
    )
    n = "" if not study.images_path.exists() else " and images.parquet"
    typer.echo(f"created {study.config_path}{n}")


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)
    app.add_typer(synth_app, name="synth")
