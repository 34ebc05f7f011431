"""The vectors a map is computed from: one row per item, from activations (a layer, pooled
over its tokens), SAE codes (per-item, sparse) or image embeddings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from vislens.errors import InputError

Source = Literal["activations", "sae", "embeddings"]
SOURCES: tuple[str, ...] = ("activations", "sae", "embeddings")


def activation_features(study: Any, layer: int | None) -> tuple[list[str], np.ndarray]:
    """``(item_ids, [n, d])``: one layer's activations, averaged over tokens when the store
    holds every token (the mean-pooled image representation)."""
    from vislens.store.activations import ActivationStore

    store = ActivationStore.open(study.activations_dir)
    if layer is None:
        layer = store.layers[-1]
    acts = store.load(layer).float()
    if acts.ndim == 3:
        acts = acts.mean(dim=1)
    return store.item_ids, acts.numpy().astype(np.float32)


def sae_features(study: Any, name: str | None) -> tuple[list[str], Any]:
    """``(item_ids, csr [n, d_sae])``: each item's SAE codes (the run's per-item reduce)."""
    from vislens.sae.runs import open_codes

    codes = open_codes(study, name)
    return [str(i) for i in codes.item_ids], codes.item_matrix()


def embedding_features(
    study: Any, embeddings_file: Path | None, embedder: str
) -> tuple[list[str], np.ndarray]:
    """``(item_ids, [n, d])`` from a Parquet file (item_id + embedding) or a vision encoder."""
    from vislens.data.table import read_image_table

    ids = [str(i) for i in read_image_table(study.images_path)["item_id"]]
    if embeddings_file is not None:
        from vislens.sae.runs import read_embeddings_file

        return ids, read_embeddings_file(Path(embeddings_file), ids).astype(np.float32)
    from vislens.models.embeddings import VisionEncoderEmbeddings

    provider = VisionEncoderEmbeddings(study.root, model=embedder)
    return ids, np.asarray(provider.get_embeddings(ids), dtype=np.float32)


def load_features(
    study: Any,
    source: str,
    *,
    layer: int | None = None,
    sae: str | None = None,
    embeddings_file: Path | None = None,
    embedder: str = "",
) -> tuple[list[str], Any]:
    if source == "activations":
        return activation_features(study, layer)
    if source == "sae":
        return sae_features(study, sae)
    if source == "embeddings":
        from vislens.models.embeddings import DEFAULT_EMBEDDER

        return embedding_features(study, embeddings_file, embedder or DEFAULT_EMBEDDER)
    raise InputError(f"--source {source!r}: choose one of {', '.join(SOURCES)}")
