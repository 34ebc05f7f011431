"""Vision-encoder adapters: one contract, every architecture (tiny random weights, loaded from disk)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vislens.errors import ModelError
from vislens.models.tiny import ARCHES
from vislens.models.vision import load_vision_encoder, select_tokens


def _images(n=3):
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (60 + 7 * i, 80, 3), dtype=np.uint8)) for i in range(n)
    ]


@pytest.fixture(params=ARCHES)
def encoder(request, tiny_vision):
    return load_vision_encoder(str(tiny_vision(request.param)))


def test_residual_stream_equals_direct_forward(encoder):
    pv = encoder.preprocess(_images())
    got = encoder.residual_stream(pv, [0, 1, -1])
    ref = encoder.model(pixel_values=pv, output_hidden_states=True).hidden_states
    assert sorted(got) == [0, 1, encoder.n_layers]
    for layer, acts in got.items():
        torch.testing.assert_close(acts, ref[layer], rtol=0, atol=0)


def test_layout_matches_sequence(encoder):
    pv = encoder.preprocess(_images(2))
    layout = encoder.layout(pv)
    acts = encoder.residual_stream(pv, [-1])[encoder.n_layers]
    assert acts.shape == (2, layout.n_tokens, encoder.d_model)
    assert layout.grid_h == pv.shape[-2] // encoder.patch_size
    assert layout.has_cls == (encoder.model_type != "siglip_vision_model")


def test_token_selection(encoder):
    pv = encoder.preprocess(_images(2))
    layout = encoder.layout(pv)
    acts = encoder.residual_stream(pv, [1])[1]
    patches = select_tokens(acts, "patches", layout)
    assert patches.shape == (2, layout.n_patches, encoder.d_model)
    torch.testing.assert_close(select_tokens(acts, "mean", layout), patches.mean(1))
    if layout.has_cls:
        torch.testing.assert_close(select_tokens(acts, "cls", layout), acts[:, 0])
    else:
        with pytest.raises(ModelError, match="no CLS"):
            select_tokens(acts, "cls", layout)


def test_embed_is_one_vector_per_image(encoder):
    emb = encoder.embed(encoder.preprocess(_images(3)))
    assert emb.shape[0] == 3 and emb.ndim == 2
    assert torch.isfinite(emb).all()


def test_layer_out_of_range(encoder):
    with pytest.raises(ModelError, match="out of range"):
        encoder.resolve_layers([encoder.n_layers + 1])
    with pytest.raises(ModelError, match="out of range"):
        encoder.resolve_layers([-(encoder.n_layers + 2)])


def test_unknown_model_id_and_bad_dirs(tmp_path):
    with pytest.raises(ModelError, match="not fetchable"):
        load_vision_encoder("no-such-org/no-such-model")
    with pytest.raises(ModelError, match=r"no config.json"):
        load_vision_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="not a supported vision encoder"):
        load_vision_encoder(str(tmp_path))


def test_half_precision_option(tiny_vision):
    enc = load_vision_encoder(str(tiny_vision("clip")), dtype="bfloat16")
    acts = enc.residual_stream(enc.preprocess(_images(1)), [-1])
    assert next(iter(acts.values())).dtype == torch.bfloat16
