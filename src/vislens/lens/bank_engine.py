"""Where the bank's caption batches run: ``encode_captions`` here, or in Ray Data actors.

``batch_states`` yields the states of every caption batch of the pending shards, in the
order ``build_bank`` writes them, from either engine; the bank's writer does not change.
With ``engine="ray"`` one unit is one local batch (its captions and kept positions as
JSON), so every forward pass sees the same captions as locally (see docs/scale.md).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vislens.engine import ENGINES
from vislens.engine.ray_data import RayOptions
from vislens.errors import ConfigError, ModelError
from vislens.lens.textmodel import BankModel


@dataclass
class BankWorker:
    """A Ray actor's half of the bank: loads the LM, encodes one caption batch per unit."""

    model: str
    """What ``load_bank_model`` takes: ``toy``, a directory on shared storage, or a hub id."""
    device: str
    fingerprint: str
    """The driver's model fingerprint: an actor that loaded other weights refuses to run."""
    layers: list[int]
    _model: BankModel = field(init=False, repr=False)

    def setup(self) -> None:
        from vislens.lens.textmodel import load_bank_model

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self._model = load_bank_model(self.model, device=device)
        if self._model.fingerprint() != self.fingerprint:
            raise ModelError(
                f"{self.model}: a Ray actor loaded other weights than the driver's model (another "
                "file, revision or dtype) — give --text-model / [model] a path every node shares"
            )

    def __call__(self, unit: dict[str, Any]) -> dict[str, torch.Tensor]:
        from vislens.lens.encode import encode_captions

        texts, positions = json.loads(unit["texts"]), json.loads(unit["positions"])
        states = encode_captions(self._model, texts, positions, self.layers)
        return {str(layer): s for layer, s in states.items()}


def batch_states(
    model: BankModel,
    captions: Sequence[str],
    by_caption: dict[int, list[int]],
    shard_captions: Sequence[Sequence[int]],
    batch_size: int,
    layers: Sequence[int],
    *,
    engine: str = "local",
    ray: RayOptions | None = None,
    model_ref: str | None = None,
    device: str = "auto",
) -> Generator[dict[int, torch.Tensor], None, None]:
    """States of each batch ``shard[b : b + batch_size]`` of each shard in turn, per layer.

    Checks the engine settings at once; the batches run as the iterator is consumed.
    ``device`` is where Ray actors put the model (``auto``: their GPU if they have one).
    """
    from vislens.lens.encode import encode_captions

    if engine not in ENGINES:
        raise ConfigError(f"engine '{engine}': choose one of {', '.join(ENGINES)}")
    if engine == "ray" and not model_ref:
        raise ConfigError(
            "--engine ray needs a model every actor can load: pass --text-model, or set the "
            "study's [model] name_or_path"
        )
    batches = [
        sh[b : b + batch_size] for sh in shard_captions for b in range(0, len(sh), batch_size)
    ]
    if engine == "local":
        return (
            encode_captions(
                model, [captions[c] for c in batch], [by_caption[c] for c in batch], layers
            )
            for batch in batches
        )
    return _ray_states(model, captions, by_caption, batches, layers, ray, str(model_ref), device)


def _ray_states(
    model: BankModel,
    captions: Sequence[str],
    by_caption: dict[int, list[int]],
    batches: Sequence[Sequence[int]],
    layers: Sequence[int],
    ray: RayOptions | None,
    model_ref: str,
    device: str,
) -> Generator[dict[int, torch.Tensor], None, None]:
    from vislens.engine.ray_data import map_units

    units = [
        {
            "texts": json.dumps([captions[c] for c in batch]),
            "positions": json.dumps([by_caption[c] for c in batch]),
        }
        for batch in batches
    ]
    worker = BankWorker(model_ref, device, model.fingerprint(), list(layers))
    for _, tensors in map_units(units, worker, ray or RayOptions()):
        yield {layer: tensors[str(layer)] for layer in layers}
