"""Tiered selection follows the seed's table, feature by feature."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.analysis.monosemanticity import Calibration
from vislens.analysis.tiers import TierThresholds, assign_tiers


def reference_tiers(ms, r, th: TierThresholds):
    tiers = []
    for m, c in zip(ms, r, strict=True):
        m_ok, c_ok = np.isfinite(m), np.isfinite(c)
        if m_ok and c_ok and m >= th.ms_high and abs(c) >= th.r_high:
            tiers.append(1)
        elif (m_ok and m >= th.ms_low) or (c_ok and abs(c) >= th.r_low):
            tiers.append(2)
        else:
            tiers.append(0)
    rest = sorted(
        (i for i, t in enumerate(tiers) if t == 0 and np.isfinite(ms[i])), key=lambda i: (-ms[i], i)
    )
    for i in rest[: th.n_tier3]:
        tiers[i] = 3
    return tiers


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.floats(-0.2, 1), st.just(float("nan"))),
                          st.one_of(st.floats(-1, 1), st.just(float("nan")))), min_size=1, max_size=40),
       st.integers(0, 10))  # fmt: skip
def test_tiers_equal_the_rule_table(pairs, n_tier3):
    ms = np.array([p[0] for p in pairs])
    r = np.array([p[1] for p in pairs])
    th = TierThresholds(n_tier3=n_tier3)
    assert list(assign_tiers(ms, r, th)) == reference_tiers(ms, r, th)


def test_seed_examples_and_calibrated_thresholds():
    ms = np.array([0.55, 0.55, 0.40, 0.10, 0.30, 0.20])
    r = np.array([0.30, 0.10, 0.00, 0.20, 0.00, 0.00])
    assert list(assign_tiers(ms, r, TierThresholds(n_tier3=1))) == [1, 2, 2, 2, 3, 0]
    th = TierThresholds.from_calibration(Calibration(mean=0.1, sd=0.1, n_pairs=10), n_tier3=0)
    assert (th.ms_high, th.ms_low) == (0.30000000000000004, 0.2)
    assert list(assign_tiers(ms, r, th)) == [1, 2, 2, 2, 2, 2]
