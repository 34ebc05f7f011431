"""The CLI options every ``--engine``-capable command shares (one definition, not pasted)."""

from __future__ import annotations

from typing import Annotated

import typer

from vislens.engine import ENGINES
from vislens.engine.ray_data import RayOptions


def _check_engine(value: str) -> str:
    if value not in ENGINES:
        raise typer.BadParameter(f"'{value}': choose one of {', '.join(ENGINES)}")
    return value


EngineOption = Annotated[
    str,
    typer.Option(
        callback=_check_engine,
        help="local: this process; ray: Ray Data actors on a Ray cluster (needs the optional 'ray' extra).",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster to use with --engine ray (e.g. auto); default: RAY_ADDRESS, else a local Ray."
    ),
]
ActorsOption = Annotated[
    int | None,
    typer.Option(
        min=1, help="Most Ray actors (model copies); default: one per GPU, else one per CPU."
    ),
]
GpusPerActorOption = Annotated[
    float | None,
    typer.Option(min=0, help="GPUs per Ray actor; default: 1 where the cluster has GPUs, else 0."),
]


def ray_options(
    address: str | None, actors: int | None, gpus_per_actor: float | None
) -> RayOptions:
    """The ``RayOptions`` the shared CLI options describe."""
    return RayOptions(address=address, n_actors=actors, num_gpus=gpus_per_actor)
