"""The sparse-code store: CSR round trips, per-item reductions and resume, checked against
dense references with Hypothesis-chosen shapes and shard boundaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vislens.errors import InputError
from vislens.store.codes import CodesInfo, CodesStore, CodesWriter, concat_csr, dense_to_csr

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(
    tmp_dir, dense_ntf: np.ndarray, shard_size: int, *, has_cls: bool, n_prefix: int, grid=(1, 1)
):
    n, t, f = dense_ntf.shape
    info = CodesInfo(d_sae=f, n_tokens=t, tokens="all", has_cls=has_cls, n_prefix_tokens=n_prefix,
                     grid_h=grid[0], grid_w=grid[1], n_items=n, shard_size=shard_size, top_n=3)  # fmt: skip
    w = CodesWriter(tmp_dir, info, [f"it{i}" for i in range(n)], overwrite=True)
    for k, s in enumerate(range(0, n, shard_size)):
        block = torch.tensor(dense_ntf[s : s + shard_size]).reshape(-1, f)
        w.write_shard(k, torch.arange(s, min(s + shard_size, n)), dense_to_csr(block))
    return CodesStore.open(tmp_dir)


dims = st.tuples(
    st.integers(1, 13),
    st.integers(1, 5),
    st.integers(1, 9),
    st.integers(1, 6),
    st.integers(0, 10**6),
)


@SETTINGS
@given(dims=dims, density=st.floats(0.0, 1.0))
def test_csr_round_trip_and_reductions(tmp_path_factory, dims, density):
    n, t, f, shard, seed = dims
    rng = np.random.default_rng(seed)
    dense = ((rng.random((n, t, f)) < density) * rng.random((n, t, f))).astype(np.float32)
    store = _write(
        tmp_path_factory.mktemp("c"), dense, shard, has_cls=t > 1, n_prefix=1 if t > 1 else 0
    )
    # every row comes back exactly
    for i in range(n):
        for tok, (feats, vals) in enumerate(store.item_rows(i)):
            row = np.zeros(f, np.float32)
            row[feats] = vals
            np.testing.assert_array_equal(row, dense[i, tok])
    # per-item reductions equal the dense ones
    np.testing.assert_array_equal(store.item_matrix("cls").toarray(), dense[:, 0])
    if t > 1:
        np.testing.assert_allclose(store.item_matrix("max").toarray(), dense[:, 1:].max(axis=1))
        np.testing.assert_allclose(
            store.item_matrix("mean").toarray(), dense[:, 1:].mean(axis=1), rtol=1e-6
        )
    summary = store.summary()
    assert len(summary) == n * t
    np.testing.assert_array_equal(
        summary["num_active"].to_numpy(), (dense.reshape(n * t, f) > 0).sum(1)
    )
    first = summary.iloc[0]
    assert list(first["top_features"]) == list(
        np.argsort(-dense[0, 0], kind="stable")[: min(3, int((dense[0, 0] > 0).sum()))]
    )


@SETTINGS
@given(
    sizes=st.lists(st.integers(0, 6), min_size=1, max_size=5),
    f=st.integers(1, 7),
    seed=st.integers(0, 999),
)
def test_concat_csr_equals_stacking(sizes, f, seed):
    rng = np.random.default_rng(seed)
    blocks = [
        torch.tensor((rng.random((r, f)) < 0.4) * rng.random((r, f)), dtype=torch.float32)
        for r in sizes
    ]
    indptr, feat, val = concat_csr([dense_to_csr(b) for b in blocks])
    full = torch.cat(blocks)
    rebuilt = torch.zeros_like(full)
    for r in range(full.shape[0]):
        a, b = int(indptr[r]), int(indptr[r + 1])
        rebuilt[r, feat[a:b].long()] = val[a:b]
    torch.testing.assert_close(rebuilt, full)


def test_resume_keeps_shards_and_refuses_other_settings(tmp_path):
    dense = np.ones((4, 1, 3), np.float32)
    store = _write(tmp_path / "c", dense, 2, has_cls=True, n_prefix=1)
    info = store.info
    w = CodesWriter(
        tmp_path / "c", CodesInfo(**{**info.__dict__, "complete_shards": []}), store.item_ids
    )
    assert w.is_complete(0) and w.is_complete(1)
    other = CodesInfo(**{**info.__dict__, "d_sae": 5, "complete_shards": []})
    with pytest.raises(InputError, match="d_sae"):
        CodesWriter(tmp_path / "c", other, store.item_ids)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="sae encode"):
        CodesStore.open(tmp_path)
    store = _write(tmp_path / "c", np.ones((2, 3, 2), np.float32), 2, has_cls=False, n_prefix=0)
    with pytest.raises(InputError, match="no CLS"):
        store.item_matrix("cls")
    with pytest.raises(InputError, match="no item"):
        store.item_index_of("nope")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(manifest | {"schema_version": 99}))
    with pytest.raises(InputError, match="upgrade"):
        CodesStore.open(tmp_path / "c")
