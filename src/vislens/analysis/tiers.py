"""Tiered feature selection of seed 001: which features to label first.

| tier | rule (defaults) | purpose |
| 1 | MS ≥ 0.50 and abs(r) ≥ 0.25 | interpretable and predictive |
| 2 | MS ≥ 0.35 or abs(r) ≥ 0.15 (not tier 1) | either interpretable or predictive |
| 3 | the top ``n_tier3`` remaining features by MS | exploratory coverage |
| 0 | everything else | |
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vislens.analysis.monosemanticity import Calibration


@dataclass(frozen=True)
class TierThresholds:
    """Thresholds of the tier rules; the MS ones default to the seed's 0.50 / 0.35."""

    ms_high: float = 0.50
    """Tier 1 needs MS at least this (the seed's mean + 2σ of random pairs)."""
    ms_low: float = 0.35
    """Tier 2 accepts MS at least this (the seed's mean + 1σ)."""
    r_high: float = 0.25
    """Tier 1 needs abs(r) at least this."""
    r_low: float = 0.15
    """Tier 2 accepts abs(r) at least this."""
    n_tier3: int = 50
    """How many of the remaining features (highest MS first) form tier 3."""

    @classmethod
    def from_calibration(cls, cal: Calibration, **kw: float | int) -> TierThresholds:
        """MS thresholds at the data's own mean + 2σ / mean + 1σ of random pairs."""
        return cls(ms_high=cal.monosemantic, ms_low=cal.moderate, **kw)  # type: ignore[arg-type]


def assign_tiers(
    ms: np.ndarray, abs_r: np.ndarray, th: TierThresholds = TierThresholds()
) -> np.ndarray:
    """Tier (1, 2, 3, or 0) of every feature; NaN MS or r never satisfies a threshold."""
    ms = np.asarray(ms, dtype=np.float64)
    r = np.nan_to_num(np.abs(np.asarray(abs_r, dtype=np.float64)), nan=-np.inf)
    m = np.nan_to_num(ms, nan=-np.inf)
    tier = np.zeros(len(ms), dtype=np.int8)
    t1 = (m >= th.ms_high) & (r >= th.r_high)
    t2 = ~t1 & ((m >= th.ms_low) | (r >= th.r_low))
    tier[t1], tier[t2] = 1, 2
    rest = np.flatnonzero((tier == 0) & np.isfinite(ms))
    if th.n_tier3 > 0 and len(rest):
        order = rest[np.lexsort((rest, -ms[rest]))]  # MS descending, feature index for ties
        tier[order[: th.n_tier3]] = 3
    return tier
