"""Top-k items per feature: the one-pass streaming merge equals a per-feature sort."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.sae.top_items import topk_from_coo


def _reference(dense: np.ndarray, k: int) -> list[tuple[int, int, int, float]]:
    """For each feature: positive values sorted by value desc, item asc — the slow obvious way."""
    out = []
    for f in range(dense.shape[1]):
        pairs = sorted((-float(dense[n, f]), n) for n in range(dense.shape[0]) if dense[n, f] > 0)
        out += [(f, r, n, -v) for r, (v, n) in enumerate(pairs[:k])]
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40), f=st.integers(1, 12), k=st.integers(1, 6), n_chunks=st.integers(1, 5),
    density=st.floats(0, 1), ties=st.booleans(), seed=st.integers(0, 10**6),
)  # fmt: skip
def test_streaming_topk_equals_per_feature_sort(n, f, k, n_chunks, density, ties, seed):
    rng = np.random.default_rng(seed)
    vals = (
        rng.integers(1, 4, (n, f)).astype(np.float32)
        if ties
        else rng.random((n, f)).astype(np.float32)
    )
    dense = (rng.random((n, f)) < density) * vals
    items, feats = np.nonzero(dense)
    order = rng.permutation(len(items))  # chunks arrive in any order
    chunks = [
        (torch.tensor(items[c]), torch.tensor(feats[c]), torch.tensor(dense[items[c], feats[c]]))
        for c in np.array_split(order, n_chunks)
    ]
    ref = _reference(dense, k)
    # without / with the per-feature threshold cut; merging after every chunk / once at the end
    for n_features, max_buffer in ((None, None), (f, None), (None, 1), (f, 1)):
        feat, rank, item, val = topk_from_coo(chunks, k, n_features, max_buffer=max_buffer)
        assert (
            list(zip(feat.tolist(), rank.tolist(), item.tolist(), val.tolist(), strict=True)) == ref
        )
