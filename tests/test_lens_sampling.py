"""The bank's sampling rules as properties (LatentLens: skip 0-1, prefer >= 10, cap M per
token string, one decision for every layer)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.lens.sampling import SamplingRules, plan_bank

VOCAB = 6
SPECIAL = 0
STR = {i: f"w{i % 4}" for i in range(VOCAB)}  # ids 1 and 5 share a string: the cap is per string

corpora = st.lists(
    st.lists(st.integers(0, VOCAB - 1), min_size=0, max_size=25), min_size=1, max_size=12
)
rules_st = st.builds(
    SamplingRules,
    max_per_token=st.integers(1, 6),
    skip_positions=st.integers(0, 3),
    prefer_from=st.integers(0, 12),
    seed=st.integers(0, 3),
)


def _candidates(corpus: list[list[int]], r: SamplingRules) -> list[tuple[int, int]]:
    """Every (caption, position) the rules allow at all: the slow, obvious reference."""
    return [
        (ci, p)
        for ci, ids in enumerate(corpus)
        for p in range(r.skip_positions, len(ids))
        if ids[p] != SPECIAL
    ]


@settings(max_examples=150, deadline=None)
@given(corpus=corpora, r=rules_st)
def test_plan_obeys_every_rule(corpus: list[list[int]], r: SamplingRules) -> None:
    kept = plan_bank(corpus, STR, r, special_ids=[SPECIAL])
    cands = _candidates(corpus, r)
    assert kept == sorted(set(kept)), "sorted, no duplicates"
    assert set(kept) <= set(cands), "skipped positions and special tokens are never kept"
    by_str = Counter(STR[corpus[c][p]] for c, p in kept)
    total = Counter(STR[corpus[c][p]] for c, p in cands)
    for s, n in total.items():
        assert by_str[s] == min(n, r.max_per_token), "cap respected, filled when possible"
    for s in total:
        mine = [(c, p) for c, p in kept if STR[corpus[c][p]] == s]
        pref_all = [(c, p) for c, p in cands if STR[corpus[c][p]] == s and p >= r.prefer_from]
        early_kept = [x for x in mine if x[1] < r.prefer_from]
        if early_kept:  # an early position only fills slots the preferred ones cannot
            assert set(pref_all) <= set(mine)
        else:
            assert (
                len(mine) == min(len(pref_all), r.max_per_token) or len(pref_all) >= r.max_per_token
            )


@settings(max_examples=60, deadline=None)
@given(corpus=corpora, r=rules_st)
def test_plan_is_seeded(corpus: list[list[int]], r: SamplingRules) -> None:
    assert plan_bank(corpus, STR, r, [SPECIAL]) == plan_bank(corpus, STR, r, [SPECIAL])


def test_reservoir_samples_beyond_the_cap() -> None:
    # 200 occurrences of one string past position 10, cap 5: different seeds keep different sets,
    # and over seeds every occurrence can be drawn (not just the first five).
    corpus = [[9, 9] + [1] * 200]
    str_ = {1: "a", 9: "b"}
    seen: set[tuple[int, int]] = set()
    for seed in range(40):
        kept = plan_bank(corpus, str_, SamplingRules(5, 2, 10, seed))
        assert len(kept) == 5
        assert all(p >= 10 for _, p in kept)
        seen |= set(kept)
    assert len(seen) > 50
    assert max(p for _, p in seen) > 150
