"""Chunked cosine top-k equals a brute-force reference (ties, chunk boundaries), layer merge,
and FAISS exact equals the scan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.lens.search import in_memory_chunks, merge_layers, topk_cosine


def brute_force(q: torch.Tensor, bank: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every cosine in float64, sorted by (score desc, row asc) with Python's stable sort."""
    qn = q.double() / q.double().norm(dim=1, keepdim=True).clamp(min=1e-12)
    bn = bank.double() / bank.double().norm(dim=1, keepdim=True).clamp(min=1e-12)
    s = (qn @ bn.T).numpy()
    idx = np.array(
        [sorted(range(s.shape[1]), key=lambda j, r=r: (-s[r, j], j))[:k] for r in range(s.shape[0])]
    )
    return np.take_along_axis(s, idx, 1), idx


def _search(
    q: torch.Tensor, bank: torch.Tensor, k: int, chunk: int, qchunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return topk_cosine(q, in_memory_chunks(bank, chunk), k, query_chunk=qchunk)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 40),
    q=st.integers(1, 9),
    d=st.integers(1, 5),
    k=st.integers(1, 7),
    chunk=st.integers(1, 13),
    qchunk=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_chunked_topk_equals_brute_force_with_ties(n, q, d, k, chunk, qchunk, seed) -> None:  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    # Bank rows are scaled axis vectors and queries small integers: cosines are q_j / |q|,
    # so many are exactly equal (in float32 as in float64) and the tie rule decides.
    axis = torch.randint(0, d, (n,), generator=g)
    bank = torch.nn.functional.one_hot(axis, d).float() * torch.randint(1, 4, (n, 1), generator=g)
    queries = torch.randint(-2, 3, (q, d), generator=g).float()
    queries[queries.norm(dim=1) == 0, 0] = 1.0
    k = min(k, n)
    v, i = _search(queries, bank, k, chunk, qchunk)
    ref_v, ref_i = brute_force(queries, bank, k)
    assert np.array_equal(i.numpy(), ref_i)
    np.testing.assert_allclose(v.numpy(), ref_v, atol=1e-6)


def test_exact_ties_go_to_the_lower_row_across_chunks() -> None:
    bank = torch.tensor([[1.0, 0], [0, 1], [2.0, 0], [1, 0], [0, 3], [5, 0]])
    q = torch.tensor([[1.0, 0]])
    for chunk in (1, 2, 3, 4, 6):
        v, i = _search(q, bank, 4, chunk, 1)
        assert i.tolist() == [[0, 2, 3, 5]]
        assert v.tolist() == [[1.0, 1.0, 1.0, 1.0]]


def test_random_data_matches_reference_exactly() -> None:
    g = torch.Generator().manual_seed(0)
    bank, q = torch.randn(1000, 16, generator=g), torch.randn(37, 16, generator=g)
    ref_v, ref_i = brute_force(q, bank, 5)
    for chunk in (1, 7, 64, 999, 1000, 5000):
        v, i = _search(q, bank, 5, chunk, 8)
        assert np.array_equal(i.numpy(), ref_i)
        np.testing.assert_allclose(v.numpy(), ref_v, atol=1e-6)


def test_scores_are_true_cosines() -> None:
    bank = torch.tensor([[3.0, 4.0], [10.0, 0.0]])
    v, i = _search(torch.tensor([[1.0, 0.0]]), bank, 2, 1, 1)
    assert i.tolist() == [[1, 0]]
    np.testing.assert_allclose(v.numpy(), [[1.0, 0.6]], atol=1e-7)


def test_merge_layers_keeps_each_neighbours_layer() -> None:
    per = [
        (2, torch.tensor([[0.9, 0.5]]), torch.tensor([[4, 1]])),
        (8, torch.tensor([[0.7, 0.5]]), torch.tensor([[0, 3]])),
    ]
    v, r, lay = merge_layers(per, 3)
    assert v.tolist() == [[pytest.approx(0.9), pytest.approx(0.7), 0.5]]
    assert r.tolist() == [[4, 0, 1]]
    assert lay.tolist() == [[2, 8, 2]]  # the 0.5 tie goes to the earlier layer


def test_global_topk_equals_brute_force_over_the_union() -> None:
    g = torch.Generator().manual_seed(3)
    banks = {1: torch.randn(50, 8, generator=g), 4: torch.randn(70, 8, generator=g)}
    q = torch.randn(11, 8, generator=g)
    per = [(layer, *_search(q, b, 5, 16, 4)) for layer, b in banks.items()]
    v, r, lay = merge_layers(per, 5)
    union = torch.cat([banks[1], banks[4]])
    ref_v, ref_i = brute_force(q, union, 5)
    np.testing.assert_allclose(v.numpy(), ref_v, atol=1e-6)
    assert np.array_equal(np.where(lay.numpy() == 1, r.numpy(), r.numpy() + 50), ref_i)


def test_faiss_flat_equals_the_scan_and_ivf_reports_recall() -> None:
    pytest.importorskip("faiss")
    from vislens.lens.faiss_index import build_index, recall_at_k

    g = torch.Generator().manual_seed(1)
    bank, q = torch.randn(2000, 32, generator=g), torch.randn(40, 32, generator=g)
    v, i = _search(q, bank, 5, 256, 16)
    fv, fi = build_index(bank, "flat").search(q, 5)
    assert torch.equal(fi, i)
    np.testing.assert_allclose(fv.numpy(), v.numpy(), atol=1e-5)
    for kind in ("ivf", "ivfpq"):
        _, ai = build_index(bank, kind).search(q, 5)
        r = recall_at_k(ai, i)
        assert 0.0 <= r <= 1.0
    assert recall_at_k(i, i) == 1.0
