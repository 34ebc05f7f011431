"""Embedding providers for monosemanticity scoring (seed 001's ``EmbeddingProvider``).

They live with the models because the default provider loads a vision encoder and runs it
over a study's images; ``vislens.analysis`` stays pure statistics and takes the vectors.
MS must be measured with an encoder independent of the one the SAE was trained on
(scoring a CLIP SAE with CLIP embeddings is circular); DINOv2 is the default for real runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from vislens.errors import InputError

DEFAULT_EMBEDDER = "facebook/dinov2-base"


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Gives one embedding vector per item id (None when it has none)."""

    def get_embedding(self, item_id: str) -> np.ndarray | None: ...


def embedding_matrix(provider: EmbeddingProvider, item_ids: Sequence[str]) -> np.ndarray:
    """``[len(item_ids), dim]`` float array; uses ``provider.get_embeddings`` when it has one.

    A missing embedding is an InputError naming the item.
    """
    batch = getattr(provider, "get_embeddings", None)
    if callable(batch):
        out = np.asarray(batch(list(item_ids)))
        if out.shape[0] != len(item_ids):
            raise InputError(
                f"embedding provider returned {out.shape[0]} rows for {len(item_ids)} items"
            )
        return out
    rows = []
    for item_id in item_ids:
        e = provider.get_embedding(item_id)
        if e is None:
            raise InputError(f"no embedding for item '{item_id}'; every scored item needs one")
        rows.append(np.asarray(e, dtype=np.float64))
    return np.stack(rows)


class InMemoryEmbeddings:
    """Embeddings held in a dict (tests, notebooks, precomputed vectors)."""

    def __init__(self, vectors: Mapping[str, np.ndarray]) -> None:
        self.vectors = {k: np.asarray(v, dtype=np.float64) for k, v in vectors.items()}

    @classmethod
    def from_arrays(cls, item_ids: Sequence[str], emb_nd: np.ndarray) -> InMemoryEmbeddings:
        return cls(dict(zip(item_ids, np.asarray(emb_nd), strict=True)))

    def get_embedding(self, item_id: str) -> np.ndarray | None:
        return self.vectors.get(item_id)

    def get_embeddings(self, item_ids: Sequence[str]) -> np.ndarray:
        missing = [i for i in item_ids if i not in self.vectors]
        if missing:
            raise InputError(f"no embedding for {len(missing)} item(s), first '{missing[0]}'")
        return np.stack([self.vectors[i] for i in item_ids])


class VisionEncoderEmbeddings:
    """Pooled embeddings of a study's images from any vision-encoder adapter (DINOv2 by
    default), computed in batches once and cached as ``.npy`` + item-id list."""

    def __init__(
        self,
        study_dir: Path,
        model: str = DEFAULT_EMBEDDER,
        *,
        batch_size: int = 32,
        device: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        from vislens.study import Study

        self.study = Study.open(Path(study_dir))
        self.model = model
        self.batch_size = batch_size
        self.device = device
        safe = model.replace("/", "__")
        self.cache_dir = (
            Path(cache_dir) if cache_dir else self.study.root / "sae" / "_embeddings" / safe
        )
        self._cache: dict[str, np.ndarray] | None = None

    def _compute(self) -> dict[str, np.ndarray]:
        import torch

        from vislens.data.sources import load_image
        from vislens.io import atomic_path, write_json_atomic
        from vislens.models.vision import load_vision_encoder
        from vislens.progress import track
        from vislens.store.extract import ensure_image_table

        ids_path, emb_path = self.cache_dir / "item_ids.json", self.cache_dir / "embeddings.npy"
        records = ensure_image_table(self.study)
        ids = [r.item_id for r in records]
        if ids_path.is_file() and emb_path.is_file():
            import json

            cached = json.loads(ids_path.read_text())
            if cached == ids:
                return dict(zip(ids, np.load(emb_path), strict=True))
        enc = load_vision_encoder(self.model, device=self.device)
        rows = []
        timeout = self.study.config.images.url_timeout_s
        for s in track(range(0, len(records), self.batch_size), f"embed images ({self.model})"):
            batch = records[s : s + self.batch_size]
            with torch.inference_mode():
                px = enc.preprocess([load_image(r, url_timeout_s=timeout) for r in batch])
                rows.append(enc.embed(px).float().cpu().numpy())
        emb = np.concatenate(rows) if rows else np.zeros((0, enc.d_model), np.float32)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(emb_path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, emb)
        write_json_atomic(ids_path, ids)
        return dict(zip(ids, emb, strict=True))

    def _vectors(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = self._compute()
        return self._cache

    def get_embedding(self, item_id: str) -> np.ndarray | None:
        return self._vectors().get(item_id)

    def get_embeddings(self, item_ids: Sequence[str]) -> np.ndarray:
        vec = self._vectors()
        missing = [i for i in item_ids if i not in vec]
        if missing:
            raise InputError(
                f"{self.study.root}: no image for {len(missing)} item(s), first '{missing[0]}'"
            )
        return np.stack([vec[i] for i in item_ids])
