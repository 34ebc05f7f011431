"""Per-item views of the codes: spatial heatmaps of a feature, and a JSON export of one item.

The JSON export keeps seed 001's sparse-JSON shape (``SAEFeatureResult``: num_active,
top_indices, top_values, plus the sparse ``features`` map) for tools that read it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vislens.errors import InputError
from vislens.store.codes import CodesStore


def feature_heatmap(codes: CodesStore, item_index: int, feature: int) -> np.ndarray:
    """``[grid_h, grid_w]`` activations of ``feature`` over one item's patch tokens."""
    info = codes.info
    n_patches = info.n_tokens - info.n_prefix_tokens
    if n_patches != info.grid_h * info.grid_w or n_patches <= 1:
        raise InputError(
            f"{codes.dir}: heatmaps need codes for every patch (tokens 'all' or 'patches'); these hold '{info.tokens}'"
        )
    if not 0 <= feature < info.d_sae:
        raise InputError(f"feature {feature} is out of range 0..{info.d_sae - 1}")
    rows = codes.item_rows(item_index)[info.n_prefix_tokens :]
    grid = np.zeros(n_patches, dtype=np.float32)
    for tok, (feats, vals) in enumerate(rows):
        hit = feats == feature
        if hit.any():
            grid[tok] = vals[hit][0]
    return grid.reshape(info.grid_h, info.grid_w)


def feature_heatmaps(codes: CodesStore, item_indices: list[int], feature: int) -> np.ndarray:
    """``[n_items, grid_h, grid_w]`` heatmaps of one feature (e.g. over its top-k items)."""
    return np.stack([feature_heatmap(codes, i, feature) for i in item_indices])


def _token_record(feats: np.ndarray, vals: np.ndarray, top_n: int) -> dict[str, Any]:
    order = np.argsort(-vals, kind="stable")[:top_n]
    return {
        "num_active": len(feats),
        "top_indices": feats[order].astype(int).tolist(),
        "top_values": vals[order].astype(float).tolist(),
        "features": {str(int(f)): float(v) for f, v in zip(feats, vals, strict=True)},
    }


def export_item(codes: CodesStore, item_id: str, *, top_n: int = 20) -> dict[str, Any]:
    """One item's codes as a JSON-ready dict: the CLS (or only) token at the top level, and
    per-patch records (token, row, col) under ``patches`` when patch codes exist."""
    info = codes.info
    idx = codes.item_index_of(item_id)
    rows = codes.item_rows(idx)
    out: dict[str, Any] = {"item_id": item_id, "layer": info.layer, "sae": info.sae, "d_sae": info.d_sae,
                           "tokens": info.tokens}  # fmt: skip
    if info.n_tokens == 1 or info.has_cls:
        out.update(_token_record(*rows[0], top_n))
    patches = rows[info.n_prefix_tokens :]
    if len(patches) == info.grid_h * info.grid_w and len(patches) > 1:
        out["grid_h"], out["grid_w"] = info.grid_h, info.grid_w
        out["patches"] = [
            {"token": t + info.n_prefix_tokens, "row": t // info.grid_w, "col": t % info.grid_w}
            | _token_record(f, v, top_n)
            for t, (f, v) in enumerate(patches)
        ]
    return out
