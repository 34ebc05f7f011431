"""Per-head features of one case's attention map (seed 004's stage 4 input).

For head ``(layer, head)`` with raw map ``a`` over the ``R x C`` cells, ``p = a / sum(a)``
(its attention *within* the image) and target cells ``T`` (the case's evidence):

- ``target_mass``   ``sum(p[T])``: share of the image attention on the target's cells
- ``target_ratio``  ``mean(p[T]) / mean(p)``: the target cells against the mean cell (> 1: above it)
- ``target_rank``   1 + the number of cells with more attention than the best target cell
- ``entropy``       ``-sum(p log p)`` in nats (``log(R*C)`` is uniform)
- ``relative_mass`` ``target_mass`` of the per-head relative map ``a / (g + eps)``, ``g``
  the generic prompt's map (Zhang et al. 2025), ``eps`` as in ``attention.py``
- ``image_mass``    ``sum(a)``: the share of the query's attention that went to the image
- ``argmax_cell``   ``r * C + c`` of the most-attended cell; ``argmax_in_evidence`` whether
  it is one of ``T``

Target features are NaN when the case has no target cells (an absent target). Every
feature is computed from the float16 maps as stored, so a resumed run gives the same
numbers as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import Float

from vislens.probe.attention import REL_EPS

FEATURES: tuple[str, ...] = (
    "target_mass",
    "target_ratio",
    "target_rank",
    "entropy",
    "relative_mass",
    "image_mass",
)


def head_features(
    attention_lhrc: Float[np.ndarray, "l h r c"],
    generic_lhrc: Float[np.ndarray, "l h r c"] | None,
    target_cells: Sequence[int],
) -> dict[str, np.ndarray]:
    """Every feature for every head, each an ``[l, h]`` array (plus ``argmax_cell`` and
    ``argmax_in_evidence``)."""
    a = attention_lhrc.astype(np.float32)
    n_l, n_h = a.shape[:2]
    flat = a.reshape(n_l, n_h, -1)
    n_cells = flat.shape[-1]
    total = flat.sum(-1)
    p = flat / np.where(total > 0, total, 1.0)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(-1)
    argmax = flat.argmax(-1)
    cells = np.asarray(list(target_cells), dtype=np.int64)
    nan = np.full((n_l, n_h), np.nan, dtype=np.float32)
    out = {
        "target_mass": nan.copy(),
        "target_ratio": nan.copy(),
        "target_rank": nan.copy(),
        "entropy": entropy.astype(np.float32),
        "relative_mass": nan.copy(),
        "image_mass": total.astype(np.float32),
        "argmax_cell": argmax.astype(np.int64),
        "argmax_in_evidence": np.isin(argmax, cells) if len(cells) else np.zeros_like(argmax, bool),
    }
    if len(cells):
        pt = p[..., cells]
        out["target_mass"] = pt.sum(-1)
        out["target_ratio"] = pt.mean(-1) * n_cells  # mean(p) is 1 / n_cells
        best = pt.max(-1, keepdims=True)
        out["target_rank"] = (1 + (p > best).sum(-1)).astype(np.float32)
        if generic_lhrc is not None:
            g = generic_lhrc.astype(np.float32).reshape(n_l, n_h, -1)
            eps = REL_EPS * g.mean(-1, keepdims=True) + 1e-12
            rel = flat / (g + eps)
            rel_total = rel.sum(-1)
            out["relative_mass"] = rel[..., cells].sum(-1) / np.where(rel_total > 0, rel_total, 1)
    return out
