"""Which caption tokens the contextual bank keeps (LatentLens' sampling rules).

The plan is made once, from the tokenized corpus alone, before any forward pass, so every
contextual layer holds exactly the same (caption, position) pairs:

- positions ``0 .. skip_positions-1`` of each caption are never kept (the BOS token and the
  first word see almost no context), nor are special tokens;
- each token *string* keeps at most ``max_per_token`` embeddings;
- positions ``>= prefer_from`` are preferred: a string's cap is filled from them first
  (a seeded reservoir sample when it has more than the cap), and from the earlier
  positions only for the slots left over (again a seeded sample).

Reservoir sampling (Algorithm R) keeps the pass streaming: memory grows with the number of
distinct strings times the cap, never with the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingRules:
    """The bank's token-selection settings."""

    max_per_token: int = 20
    skip_positions: int = 2
    prefer_from: int = 10
    seed: int = 0


class _Reservoir:
    """Algorithm R over a stream, one reservoir per key, all drawing from one seeded RNG."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        self.size = size
        self.rng = rng
        self.items: dict[str, list[tuple[int, int]]] = {}
        self.seen: dict[str, int] = {}

    def offer(self, key: str, item: tuple[int, int]) -> None:
        n = self.seen.get(key, 0)
        bucket = self.items.setdefault(key, [])
        if n < self.size:
            bucket.append(item)
        else:
            j = int(self.rng.integers(0, n + 1))
            if j < self.size:
                bucket[j] = item
        self.seen[key] = n + 1


def plan_bank(
    token_ids: Sequence[Sequence[int]],
    token_str: dict[int, str],
    rules: SamplingRules,
    special_ids: Iterable[int] = (),
) -> list[tuple[int, int]]:
    """The kept ``(caption index, position)`` pairs, sorted, for captions tokenized as
    ``token_ids`` (unpadded, special tokens included as the model sees them)."""
    special = set(special_ids)
    rng = np.random.default_rng(rules.seed)
    preferred = _Reservoir(rules.max_per_token, rng)
    early = _Reservoir(rules.max_per_token, rng)
    for ci, ids in enumerate(token_ids):
        for pos in range(rules.skip_positions, len(ids)):
            tid = int(ids[pos])
            if tid in special:
                continue
            target = preferred if pos >= rules.prefer_from else early
            target.offer(token_str[tid], (ci, pos))
    kept: list[tuple[int, int]] = []
    fill_rng = np.random.default_rng([rules.seed, 1])
    for key in sorted(set(preferred.items) | set(early.items)):
        mine = preferred.items.get(key, [])
        kept.extend(mine)
        left = rules.max_per_token - len(mine)
        pool = sorted(early.items.get(key, []))
        if left > 0 and pool:
            if len(pool) > left:
                pick = fill_rng.choice(len(pool), size=left, replace=False)
                pool = [pool[i] for i in sorted(pick.tolist())]
            kept.extend(pool)
    return sorted(kept)
