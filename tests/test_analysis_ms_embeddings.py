"""Embedding providers for MS: the vision-encoder provider equals the adapter's own pooled
embedding, caches it, and the in-memory provider follows the seed's protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vislens.data.setup import init_study
from vislens.data.sources import load_image
from vislens.data.synthetic import generate_grid_world
from vislens.data.table import read_records
from vislens.errors import InputError
from vislens.models.embeddings import (
    EmbeddingProvider,
    InMemoryEmbeddings,
    VisionEncoderEmbeddings,
    embedding_matrix,
)
from vislens.models.vision import load_vision_encoder


def test_vision_encoder_embeddings_equal_the_adapter(tmp_path, tiny_vision):
    generate_grid_world(tmp_path / "w", 5, seed=2, show_progress=False)
    study = init_study(tmp_path / "s", images=str(tmp_path / "w"), model=str(tiny_vision("clip")))
    dino = str(tiny_vision("dinov2"))
    provider = VisionEncoderEmbeddings(study.root, dino, batch_size=2, device="cpu")
    assert isinstance(provider, EmbeddingProvider)
    records = read_records(study.images_path)
    ids = [r.item_id for r in records]
    got = embedding_matrix(provider, ids)
    enc = load_vision_encoder(dino, device="cpu")
    with torch.inference_mode():
        ref = enc.embed(enc.preprocess([load_image(r) for r in records])).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert (provider.cache_dir / "embeddings.npy").is_file()
    again = VisionEncoderEmbeddings(study.root, dino, cache_dir=provider.cache_dir)
    np.testing.assert_array_equal(again.get_embeddings(ids), got)  # read back from the cache
    with pytest.raises(InputError, match="nope"):
        provider.get_embeddings(["nope"])


def test_in_memory_provider_and_protocol_fallback():
    mem = InMemoryEmbeddings.from_arrays(["a", "b"], np.eye(2))
    np.testing.assert_array_equal(embedding_matrix(mem, ["b", "a"]), [[0, 1], [1, 0]])

    class OneByOne:  # only the seed's single-item method
        def get_embedding(self, item_id: str):
            return None if item_id == "x" else np.ones(3)

    assert embedding_matrix(OneByOne(), ["a"]).shape == (1, 3)
    with pytest.raises(InputError, match="'x'"):
        embedding_matrix(OneByOne(), ["a", "x"])
