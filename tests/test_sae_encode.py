"""Encoding stored activations of a tiny real CLIP: codes equal ``sae.encode`` token by token,
for every token choice; mismatched SAEs and NaN activations fail clearly; resume is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers_sae import random_sae
from vislens.data.setup import init_study
from vislens.data.synthetic import generate_grid_world
from vislens.errors import InputError, ModelError
from vislens.sae.encode import encode_store
from vislens.store.activations import ActivationStore, shard_path
from vislens.store.extract import extract

LAYER = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_vision):
    root = tmp_path_factory.mktemp("enc")
    generate_grid_world(root / "w", 11, seed=0, show_progress=False)
    study = init_study(
        root / "s",
        images=str(root / "w"),
        model=str(tiny_vision("clip")),
        layers=[1, LAYER],
        tokens="all",
    )
    extract(study, batch_size=4, shard_size=5)
    return ActivationStore.open(study.activations_dir)


def _dense(codes, n_tokens: int, d_sae: int) -> np.ndarray:
    out = np.zeros((codes.n_items, n_tokens, d_sae), np.float32)
    for i in range(codes.n_items):
        for t, (f, v) in enumerate(codes.item_rows(i)):
            out[i, t, f] = v
    return out


@pytest.mark.parametrize("arch", ["standard", "topk", "jumprelu"])
@pytest.mark.parametrize(
    ("tokens", "start", "stop"), [("all", 0, 17), ("cls", 0, 1), ("patches", 1, 17)]
)
def test_codes_equal_direct_encode(tmp_path, store, arch, tokens, start, stop):
    sae = random_sae(
        arch, d_in=store.info.d_model, d_sae=48, k=6, norm="layer_norm", hook_layer=LAYER
    )
    codes = encode_store(sae, store, tmp_path / "codes", tokens=tokens, max_dense_elems=48 * 7)
    acts = store.load(LAYER)[:, start:stop]
    expect = sae.encode(acts).numpy()
    np.testing.assert_allclose(_dense(codes, stop - start, 48), expect, rtol=1e-5, atol=1e-6)
    assert codes.info.n_tokens == stop - start and codes.info.layer == LAYER
    assert codes.info.has_cls == (tokens in ("all", "cls"))
    assert codes.info.grid_h * codes.info.grid_w == 16


def test_cls_only_sae_encodes_the_cls_token(tmp_path, store):
    sae = random_sae("standard", d_in=store.info.d_model, hook_layer=LAYER)
    sae.spec = type(sae.spec)(**{**sae.spec.to_dict(), "token_scope": "cls"})
    assert encode_store(sae, store, tmp_path / "c").info.n_tokens == 1


def test_width_and_layer_mismatch_are_clear(tmp_path, store):
    with pytest.raises(ModelError, match="d_in=12"):
        encode_store(random_sae("standard", d_in=12, hook_layer=LAYER), store, tmp_path / "a")
    sae = random_sae("standard", d_in=store.info.d_model, hook_layer=8)
    with pytest.raises(InputError, match="layer 8 was not extracted"):
        encode_store(sae, store, tmp_path / "b")
    with pytest.raises(ModelError, match="--layer 8"):
        encode_store(sae, store, tmp_path / "b", layer=LAYER)
    assert (
        encode_store(sae, store, tmp_path / "b", layer=LAYER, allow_layer_mismatch=True).n_items
        == 11
    )


def test_resume_rewrites_only_missing_shards(tmp_path, store):
    sae = random_sae("topk", d_in=store.info.d_model, hook_layer=LAYER)
    first = encode_store(sae, store, tmp_path / "c")
    before = _dense(first, 17, sae.d_sae)
    manifest_path = tmp_path / "c" / "manifest.json"
    m = json.loads(manifest_path.read_text())
    m["complete_shards"] = [0, 2]  # as if killed while writing shard 1
    manifest_path.write_text(json.dumps(m))
    (tmp_path / "c" / "shard_00001.safetensors").unlink()
    again = encode_store(sae, store, tmp_path / "c")
    assert again.shard_ids() == [0, 1, 2]
    np.testing.assert_array_equal(_dense(again, 17, sae.d_sae), before)


def test_nan_activations_name_the_item(tmp_path, store):
    import shutil

    root = tmp_path / "acts"
    shutil.copytree(store.root, root)
    path = shard_path(root, LAYER, 1)
    t = load_file(str(path))
    t["acts"][2, 4, 0] = float("inf")
    save_file(t, str(path))
    bad = ActivationStore.open(root)
    with pytest.raises(InputError, match=rf"NaN/inf.*'{bad.item_ids[7]}'"):
        encode_store(
            random_sae("standard", d_in=bad.info.d_model, hook_layer=LAYER), bad, tmp_path / "c"
        )
    assert torch.isfinite(store.load(LAYER)).all()
