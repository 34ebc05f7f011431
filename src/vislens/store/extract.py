"""Activation extraction: images -> vision encoder -> sharded activation store.

``extract(study)`` is resumable: shards already listed as complete in the manifest are
skipped, and a shard is recomputed with exactly the batches an uninterrupted run would use,
so kill-and-resume gives identical bytes. Image decoding and preprocessing run in threads
one batch ahead of the model.

``engine="ray"`` runs the same batches (``_prepare`` then ``_forward``) in Ray Data actors
instead (see vislens.engine.ray_data) and writes them through the same ``ActivationWriter``,
so both engines leave the same store.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vislens.data.sources import ImageRecord, load_image
from vislens.engine import ENGINES
from vislens.engine.ray_data import RayOptions
from vislens.errors import ConfigError
from vislens.models.vision import TokenLayout, VisionEncoder, load_vision_encoder, select_tokens
from vislens.store.activations import ActivationWriter, StoreInfo, items_digest
from vislens.study import Study

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class ExtractResult:
    """What one ``extract`` call did."""

    root: Path
    n_items: int
    n_shards: int
    n_shards_written: int
    n_items_written: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        """Throughput of this call (items it computed per second of wall time)."""
        return self.n_items_written / self.seconds if self.seconds > 0 else float("nan")


def ensure_image_table(study: Study) -> list[ImageRecord]:
    """The study's image records, indexing ``[images] source`` into images.parquet if needed."""
    from vislens.data.sources import open_source
    from vislens.data.table import build_image_table, read_records, write_image_table

    if not study.images_path.exists():
        cfg = study.config.images
        if not cfg.source:
            raise ConfigError(
                f"{study.config_path}: key 'images.source' is empty — set it to a folder, a "
                "manifest or a grid-world directory (or run `vislens init DIR --images PATH`)"
            )
        source = open_source(
            study.resolve(cfg.source),
            cfg.kind,
            path_column=cfg.path_column,
            id_column=cfg.id_column,
        )
        write_image_table(build_image_table(source), study.images_path)
    return read_records(study.images_path)


def _prepare(
    encoder: VisionEncoder, records: Sequence[ImageRecord], url_timeout_s: float
) -> Tensor:
    images = [load_image(r, url_timeout_s=url_timeout_s) for r in records]
    return encoder.preprocess(images)


def _forward(
    encoder: VisionEncoder,
    pixel_values: Tensor,
    layer_ids: Sequence[int],
    tokens: str,
    layout: TokenLayout,
    store_dtype: torch.dtype,
) -> dict[int, Tensor]:
    """One batch's stored activations per layer (selected tokens, on the CPU, store dtype)."""
    acts = encoder.residual_stream(pixel_values, list(layer_ids))
    return {
        layer: select_tokens(acts[layer], tokens, layout).to("cpu", store_dtype)
        for layer in layer_ids
    }


@dataclass
class ExtractWorker:
    """One forward pass per unit ``{shard, start, stop}``: what a Ray actor runs.

    It reads images.parquet and loads the model itself, so on a cluster both must be
    reachable from every node (shared storage for the study, a hub id or a shared path).
    """

    model: str
    device: str
    model_dtype: str
    images_path: str
    layer_ids: list[int]
    tokens: str
    layout: TokenLayout
    store_dtype: str
    url_timeout_s: float
    _encoder: VisionEncoder = field(init=False, repr=False)
    _records: list[ImageRecord] = field(init=False, repr=False)

    def setup(self) -> None:
        from vislens.data.table import read_records

        self._encoder = load_vision_encoder(self.model, device=self.device, dtype=self.model_dtype)
        self._records = read_records(Path(self.images_path))

    def __call__(self, unit: dict[str, Any]) -> dict[str, Tensor]:
        batch = self._records[int(unit["start"]) : int(unit["stop"])]
        pixel_values = _prepare(self._encoder, batch, self.url_timeout_s)
        acts = _forward(
            self._encoder,
            pixel_values,
            self.layer_ids,
            self.tokens,
            self.layout,
            _DTYPES[self.store_dtype],
        )
        return {str(layer): a for layer, a in acts.items()}


def extract(
    study: Study,
    *,
    layers: Sequence[int] | None = None,
    tokens: str | None = None,
    batch_size: int | None = None,
    shard_size: int | None = None,
    overwrite: bool = False,
    encoder: VisionEncoder | None = None,
    engine: str = "local",
    ray: RayOptions | None = None,
) -> ExtractResult:
    """Run the study's images through its vision encoder into ``activations/``.

    Arguments override study.toml's ``[extract]`` section, and the values used are saved
    back to study.toml, so the file always says what was run. ``engine="ray"`` computes
    the batches on a Ray cluster (``ray`` says which and how wide); the store is the same.
    """
    from vislens.progress import make_progress

    cfg = study.config
    updates = {
        k: v
        for k, v in {
            "layers": list(layers) if layers is not None else None,
            "tokens": tokens,
            "batch_size": batch_size,
            "shard_size": shard_size,
        }.items()
        if v is not None
    }
    ex = cfg.extract.model_copy(update=updates)
    type(ex).model_validate(ex.model_dump())  # re-validate the overrides
    if engine not in ENGINES:
        raise ConfigError(f"engine '{engine}': choose one of {', '.join(ENGINES)}")
    if encoder is None:
        if not cfg.model.name_or_path:
            raise ConfigError(
                f"{study.config_path}: key 'model.name_or_path' is empty — name a hub id or model directory"
            )
        name = cfg.model.name_or_path
        local = study.resolve(name)
        encoder = load_vision_encoder(
            str(local) if local.is_dir() else name, device=cfg.model.device, dtype=cfg.model.dtype
        )
    layer_ids = encoder.resolve_layers(ex.layers)
    records = ensure_image_table(study)
    url_timeout = cfg.images.url_timeout_s

    first = _prepare(encoder, records[:1], url_timeout)
    layout = encoder.layout(first)
    probe = select_tokens(torch.zeros(1, layout.n_tokens, 1), ex.tokens, layout)
    n_tokens = 1 if probe.dim() == 2 else int(probe.shape[1])
    ids = [r.item_id for r in records]
    info = StoreInfo(
        model=encoder.name_or_path,
        model_type=encoder.model_type,
        layers=layer_ids,
        tokens=ex.tokens,
        has_cls=layout.has_cls,
        n_prefix_tokens=layout.n_prefix_tokens,
        grid_h=layout.grid_h,
        grid_w=layout.grid_w,
        n_tokens=n_tokens,
        d_model=encoder.d_model,
        dtype=ex.dtype,
        shard_size=ex.shard_size,
        n_items=len(records),
        items_sha256=items_digest(ids),
    )
    writer = ActivationWriter(study.activations_dir, info, ids, overwrite=overwrite)
    study.config = cfg.model_copy(update={"extract": ex})
    study.save()

    pending = writer.pending_shards()
    store_dtype = _DTYPES[ex.dtype]
    if engine == "ray":
        worker = ExtractWorker(
            model=encoder.name_or_path,
            device=cfg.model.device,
            model_dtype=cfg.model.dtype,
            images_path=str(study.images_path),
            layer_ids=layer_ids,
            tokens=ex.tokens,
            layout=layout,
            store_dtype=ex.dtype,
            url_timeout_s=url_timeout,
        )
        n_done, seconds = _extract_ray(writer, worker, pending, ex.batch_size, ray or RayOptions())
        return ExtractResult(
            study.activations_dir, len(records), info.n_shards, len(pending), n_done, seconds
        )
    batches = [
        (k, records[s : min(s + ex.batch_size, stop)])
        for k in pending
        for start, stop in [info.shard_bounds(k)]
        for s in range(start, stop, ex.batch_size)
    ]
    n_todo = sum(len(b) for _, b in batches)
    t0 = time.perf_counter()
    parts: dict[int, list[Tensor]] = {layer: [] for layer in layer_ids}
    with (
        ThreadPoolExecutor(max_workers=max(1, ex.num_workers)) as pool,
        make_progress() as progress,
    ):
        task = progress.add_task("extract", total=n_todo)
        ahead = max(2, ex.num_workers)
        futures: list[Future[Tensor]] = [
            pool.submit(_prepare, encoder, b, url_timeout) for _, b in batches[:ahead]
        ]
        for i, (k, batch) in enumerate(batches):
            pixel_values = futures[i].result()
            if i + ahead < len(batches):
                futures.append(pool.submit(_prepare, encoder, batches[i + ahead][1], url_timeout))
            acts = _forward(encoder, pixel_values, layer_ids, ex.tokens, layout, store_dtype)
            for layer in layer_ids:
                parts[layer].append(acts[layer])
            progress.advance(task, len(batch))
            if i + 1 == len(batches) or batches[i + 1][0] != k:
                writer.write_shard(k, {layer: torch.cat(parts[layer]) for layer in layer_ids})
                parts = {layer: [] for layer in layer_ids}
    seconds = time.perf_counter() - t0
    return ExtractResult(
        study.activations_dir, len(records), info.n_shards, len(pending), n_todo, seconds
    )


def _extract_ray(
    writer: ActivationWriter,
    worker: ExtractWorker,
    pending: Sequence[int],
    batch_size: int,
    options: RayOptions,
) -> tuple[int, float]:
    """The pending shards' batches on Ray, each shard written once all its batches are back.

    Returns (items computed, seconds).
    """
    from vislens.engine.ray_data import map_units
    from vislens.progress import make_progress

    info = writer.info
    units = [
        {"shard": k, "start": s, "stop": min(s + batch_size, stop)}
        for k in pending
        for start, stop in [info.shard_bounds(k)]
        for s in range(start, stop, batch_size)
    ]
    left = {k: sum(1 for u in units if u["shard"] == k) for k in pending}
    parts: dict[int, dict[int, dict[str, Tensor]]] = {k: {} for k in pending}
    n_todo = sum(u["stop"] - u["start"] for u in units)
    t0 = time.perf_counter()
    with make_progress() as progress:
        task = progress.add_task("extract (ray)", total=n_todo)
        for i, tensors in map_units(units, worker, options):
            unit = units[i]
            k = unit["shard"]
            parts[k][i] = tensors
            progress.advance(task, unit["stop"] - unit["start"])
            left[k] -= 1
            if left[k] == 0:
                got = parts.pop(k)
                done = [got[j] for j in sorted(got)]
                writer.write_shard(
                    k, {layer: torch.cat([d[str(layer)] for d in done]) for layer in info.layers}
                )
    return n_todo, time.perf_counter() - t0
