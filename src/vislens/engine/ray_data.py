"""Ray Data execution of a stage's batch function (``--engine ray``).

A stage describes its work as *units*, one per forward pass of its local loop (say shard 3,
items 96..128), each a dict of ints and strings, and a *worker*: a picklable object whose
``setup()`` loads the model once per actor and whose ``__call__(unit)`` returns the unit's
named tensors. ``map_units`` puts the units in a Ray Dataset, runs ``map_batches`` with an
actor class on an ``ActorPoolStrategy`` (``num_gpus`` per actor where the cluster has GPUs)
and an explicit ``batch_size`` (units per actor call), and yields every unit's tensors back
in unit order (a vislens error raised for a unit is raised again in the driver, after the
units before it). The stage writes them with the writer its local loop uses, so the files do
not depend on the engine.

Why a row per forward pass and not per image: Ray cuts batches at block boundaries of its
own choosing, and a forward pass over a different set of images may round differently in
the batched matmuls. With one unit per local batch every forward pass sees exactly the
images it sees locally, and both engines write the same bytes.

Tensors travel from actor to driver as one safetensors blob per unit, so every dtype
(bfloat16 included) and shape round-trips exactly without Arrow tensor extensions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from vislens.errors import ConfigError, VislensError

if TYPE_CHECKING:
    from torch import Tensor

UNIT = "unit"
PAYLOAD = "payload"
ERROR = "error"


class UnitWorker(Protocol):
    """A stage's batch function, shipped to every actor (so it must pickle)."""

    def setup(self) -> None:
        """Load what every unit needs (the model); called once per actor."""

    def __call__(self, unit: dict[str, Any]) -> dict[str, Tensor]:
        """The named tensors of one unit of work."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide ``--engine ray`` runs."""

    address: str | None = None
    """Ray cluster address (``auto``, ``ray://head:10001``, ...); None: ``RAY_ADDRESS`` if set,
    else a Ray instance started on this machine for the run."""

    n_actors: int | None = None
    """Most actors (model replicas) at once; None: one per GPU, or one per ``num_cpus``
    slice of the cluster's CPUs where it has no GPUs."""

    num_gpus: float | None = None
    """GPUs per actor; None: 1 where the cluster has GPUs, else 0."""

    num_cpus: float = 1.0
    """CPUs per actor; its torch thread count is this, rounded down (at least 1)."""

    batch_size: int = 1
    """Units (forward passes) per ``map_batches`` call."""


def require_ray() -> Any:
    """The ``ray`` module, or one clear error saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(
            "--engine ray needs Ray Data, which is not installed — run `pip install 'vislens[ray]'`"
        ) from None
    return ray


def _resources(ray: Any, options: RayOptions) -> tuple[int, float]:
    """(most actors, GPUs per actor) for this cluster."""
    total = ray.cluster_resources()
    n_gpus = float(total.get("GPU", 0.0))
    num_gpus = options.num_gpus if options.num_gpus is not None else (1.0 if n_gpus else 0.0)
    if options.n_actors is not None:
        return options.n_actors, num_gpus
    if num_gpus > 0:
        return max(1, int(n_gpus // num_gpus)), num_gpus
    return max(1, int(float(total.get("CPU", 1.0)) // options.num_cpus)), num_gpus


class _UnitActor:
    """The actor class ``map_batches`` runs: a worker set up once, then fed batches of units."""

    def __init__(self, worker: UnitWorker, n_threads: int) -> None:
        import torch

        # As many threads as the CPUs the actor reserved: it also makes the float rounding
        # of CPU matmuls match a local run with that many threads.
        torch.set_num_threads(n_threads)
        self.worker = worker
        self.setup_error: VislensError | None = None
        try:
            worker.setup()
        except VislensError as e:  # reported with the first unit, like any user error
            self.setup_error = e

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from safetensors.torch import save

        keys = list(batch)
        blobs, errors = [], []
        for i in range(len(batch[UNIT])):
            unit = {k: _plain(batch[k][i]) for k in keys}
            try:
                if self.setup_error is not None:
                    raise self.setup_error
                tensors = {name: t.contiguous() for name, t in self.worker(unit).items()}
            except VislensError as e:
                # A user's mistake travels back as data: Ray's wrappers would bury it in a
                # remote traceback. Bugs are not caught and keep theirs.
                blobs.append(b"")
                errors.append(f"{type(e).__name__}:{e}")
                continue
            blobs.append(save(tensors))
            errors.append("")
        return {
            UNIT: batch[UNIT],
            PAYLOAD: np.array(blobs, dtype=object),
            ERROR: np.array(errors, dtype=object),
        }


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _user_error(text: str) -> VislensError:
    """The vislens error an actor reported as ``ClassName:message``, rebuilt."""
    import vislens.errors

    name, _, message = text.partition(":")
    cls = getattr(vislens.errors, name, VislensError)
    if not (isinstance(cls, type) and issubclass(cls, VislensError)):
        cls = VislensError
    return cls(message)


def map_units(
    units: Sequence[dict[str, Any]],
    worker: UnitWorker,
    options: RayOptions,
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Run ``worker`` over ``units`` on Ray; yield ``(unit index, tensors)`` in unit order.

    Connects to ``options.address`` (or starts a local Ray) unless Ray is already initialised
    in this process, and shuts down only what it started. A vislens error raised inside an
    actor (a corrupt image, say) is raised here, as the same class with the same message,
    once the units before it have been yielded.
    """
    ray = require_ray()
    from safetensors.torch import load

    if not units:
        return
    started = not ray.is_initialized()
    if started:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False  # vislens shows its own
        n_actors, num_gpus = _resources(ray, options)
        rows = [{UNIT: i, **u} for i, u in enumerate(units)]
        ds = ray.data.from_items(rows).map_batches(
            _UnitActor,
            fn_constructor_args=(worker, max(1, int(options.num_cpus))),
            batch_size=options.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n_actors),
            num_gpus=num_gpus,
            num_cpus=options.num_cpus,
        )
        for row in ds.iter_rows():
            if row[ERROR]:
                raise _user_error(str(row[ERROR]))
            yield int(row[UNIT]), load(bytes(row[PAYLOAD]))
    finally:
        if started:
            ray.shutdown()
