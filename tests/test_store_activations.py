"""The activation store: shard arithmetic, round trips, compatibility checks."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from vislens.errors import InputError
from vislens.store.activations import ActivationStore, ActivationWriter, StoreInfo, items_digest


def _info(n_items, shard_size, layers=(1, 3), n_tokens=5, d=4, tokens="all"):
    ids = [f"i{k}" for k in range(n_items)]
    return StoreInfo(
        model="m",
        model_type="vit",
        layers=list(layers),
        tokens=tokens,
        has_cls=True,
        n_prefix_tokens=1,
        grid_h=2,
        grid_w=2,
        n_tokens=n_tokens,
        d_model=d,
        dtype="float32",
        shard_size=shard_size,
        n_items=n_items,
        items_sha256=items_digest(ids),
    ), ids


@given(n_items=st.integers(1, 5000), shard_size=st.integers(1, 700))
def test_shards_tile_the_items_exactly(n_items, shard_size):
    info, _ = _info(n_items, shard_size)
    covered = []
    for k in range(info.n_shards):
        start, stop = info.shard_bounds(k)
        assert 0 < stop - start <= shard_size
        covered.extend(range(start, stop))
    assert covered == list(range(n_items))
    with pytest.raises(IndexError):
        info.shard_bounds(info.n_shards)


def test_round_trip_and_resume_state(tmp_path):
    info, ids = _info(10, 4)
    data = {layer: torch.randn(10, 5, 4) for layer in info.layers}
    writer = ActivationWriter(tmp_path, info, ids)
    assert writer.pending_shards() == [0, 1, 2]
    writer.write_shard(1, {layer: data[layer][4:8] for layer in info.layers})
    again = ActivationWriter(tmp_path, info, ids)  # a resumed run sees shard 1 as done
    assert again.pending_shards() == [0, 2]
    store = ActivationStore.open(tmp_path)
    assert not store.is_complete
    with pytest.raises(InputError, match="not finished"):
        store.load(1)
    for k in (0, 2):
        start, stop = info.shard_bounds(k)
        again.write_shard(k, {layer: data[layer][start:stop] for layer in info.layers})
    store = ActivationStore.open(tmp_path)
    assert store.is_complete and store.item_ids == ids and store.layers == [1, 3]
    for layer in info.layers:
        torch.testing.assert_close(store.load(layer), data[layer], rtol=0, atol=0)
        idx = torch.cat([torch.from_numpy(i) for i, _ in store.iter_shards(layer)])
        assert idx.tolist() == list(range(10))
    with pytest.raises(InputError, match="layer 2 was not extracted"):
        store.load(2)


def test_other_settings_need_overwrite(tmp_path):
    info, ids = _info(6, 3)
    ActivationWriter(tmp_path, info, ids)
    other, _ = _info(6, 2)
    with pytest.raises(InputError, match=r"shard_size.*--overwrite"):
        ActivationWriter(tmp_path, other, ids)
    writer = ActivationWriter(tmp_path, other, ids, overwrite=True)
    assert writer.pending_shards() == [0, 1, 2]


def test_reader_refuses_unknown_schema(tmp_path):
    info, ids = _info(2, 2)
    ActivationWriter(tmp_path, info, ids)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["schema_version"] = 7
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="upgrade vislens"):
        ActivationStore.open(tmp_path)
    with pytest.raises(InputError, match="vislens extract"):
        ActivationStore.open(tmp_path / "nothing")


def test_format_doc_lists_every_manifest_key():
    """docs/formats/activations.md and the code name the same manifest keys."""
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "formats" / "activations.md").read_text()
    keys = set(StoreInfo.__dataclass_fields__) | {
        "schema_version",
        "vislens_version",
        "complete_shards",
    }
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert missing == []
