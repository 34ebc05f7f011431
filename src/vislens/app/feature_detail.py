"""A feature's page, the figures: the activation histogram from the SAE's code store, its MS
beside the calibration band, and the patch heatmap of the feature over each top image."""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

_store_cache: dict[tuple[str, float], Any] = {}
_lock = threading.Lock()


def open_codes(codes_dir: Path) -> Any:
    """The ``CodesStore`` in ``codes_dir`` (cached by its manifest's mtime), or None when
    there is none or it cannot be read."""
    from vislens.errors import VislensError
    from vislens.store.codes import MANIFEST, CodesStore

    path = Path(codes_dir) / MANIFEST
    if not path.is_file():
        return None
    key = (str(path), path.stat().st_mtime)
    with _lock:
        hit = _store_cache.get(key)
    if hit is None:
        try:
            hit = CodesStore.open(Path(codes_dir))
        except (VislensError, OSError, ValueError, TypeError):
            return None
        with _lock:
            _store_cache.clear()
            _store_cache[key] = hit
    return hit


def feature_item_values(store: Any, feature: int, reduce: str | None = None) -> np.ndarray:
    """The feature's per-item value for every item, zeros included; float64 ``[n_items]``.

    ``reduce`` as the store's ``shard_item_coo`` (default: its CLS token, else the max over
    patches), computed on this feature's non-zeros only so a page stays quick on a large
    store."""
    info = store.info
    reduce = store._check_reduce(reduce)
    t, prefix = info.n_tokens, info.n_prefix_tokens
    out = np.zeros(store.n_items, dtype=np.float64)
    for shard in store.iter_shards():
        hit = (shard.feature == feature).numpy()
        if not hit.any():
            continue
        rows = shard.row_ids().numpy()[hit]
        vals = shard.value.numpy()[hit].astype(np.float64)
        local, tok = rows // t, rows % t
        items = shard.item_index.numpy()
        if reduce == "cls" or t == 1:
            keep = tok == 0
            out[items[local[keep]]] = vals[keep]
            continue
        keep = tok >= prefix
        local, vals = local[keep], vals[keep]
        n_local = len(items)
        if reduce == "max":
            acc = np.full(n_local, -np.inf)
            np.maximum.at(acc, local, vals)
            seen = np.bincount(local, minlength=n_local) > 0
            out[items[seen]] = acc[seen]
        else:
            out[items] += np.bincount(local, weights=vals, minlength=n_local) / (t - prefix)
    return out


def histogram_figure(values: np.ndarray, feature: int) -> Any:
    """A histogram of the non-zero values, with the count of zero items in the title."""
    import plotly.graph_objects as go

    nz = values[values != 0]
    fig = go.Figure(go.Histogram(x=nz, nbinsx=40, marker={"color": "#4c78a8"}))
    fig.update_layout(
        title={
            "text": f"feature {feature}: {len(nz):,} of {len(values):,} items active "
            f"({len(values) - len(nz):,} at zero, not drawn)",
            "font": {"size": 13},
        },
        xaxis_title="activation",
        yaxis_title="items",
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        bargap=0.05,
    )
    return fig


def read_calibration(path: Path) -> dict[str, float] | None:
    """``moderate`` and ``monosemantic`` thresholds (and ``mean``/``sd`` when there) from
    calibration.json; None when missing or malformed."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        out = {k: float(raw[k]) for k in ("moderate", "monosemantic")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for k in ("mean", "sd"):
        if isinstance(raw.get(k), int | float):
            out[k] = float(raw[k])
    return out


def band_figure(ms: float, cal: dict[str, float]) -> Any:
    """The MS axis with the three calibration bands shaded and the feature's MS marked."""
    import plotly.graph_objects as go

    mod, mono = cal["moderate"], cal["monosemantic"]
    finite = bool(np.isfinite(ms))
    hi = max(1.0, mono * 1.1, ms if finite else 0.0)
    lo = min(0.0, ms if finite else 0.0)
    fig = go.Figure()
    bands = [
        (lo, mod, "polysemantic", "rgba(214,39,40,0.18)"),
        (mod, mono, "moderate", "rgba(255,187,0,0.22)"),
        (mono, hi, "monosemantic", "rgba(44,160,44,0.22)"),
    ]
    shapes = [
        {"type": "rect", "x0": a, "x1": b, "y0": 0, "y1": 1, "yref": "paper",
         "fillcolor": color, "line": {"width": 0}, "layer": "below", "name": name}
        for a, b, name, color in bands
    ]  # fmt: skip
    for a, b, name, _ in bands:
        fig.add_annotation(x=(a + b) / 2, y=0.9, yref="paper", text=name, showarrow=False)
    if finite:
        fig.add_trace(
            go.Scatter(
                x=[ms], y=[0.4], mode="markers+text", text=[f"MS {ms:.3f}"],
                textposition="bottom center", marker={"size": 14, "color": "#222"},
                hovertemplate="MS %{x:.3f}<extra></extra>", name="MS",
            )
        )  # fmt: skip
    fig.update_layout(
        shapes=shapes,
        title={"text": "MS beside the calibration band" + ("" if finite else " (MS undefined)"),
               "font": {"size": 13}},
        xaxis={"range": [lo, hi], "title": "monosemanticity score"},
        yaxis={"visible": False, "range": [0, 1]},
        showlegend=False,
        margin={"l": 20, "r": 20, "t": 40, "b": 40},
    )  # fmt: skip
    return fig


def patch_grid(store: Any, item_index: int, feature: int) -> np.ndarray | None:
    """The feature's value on each patch of one item as ``[grid_h, grid_w]``; None when
    the store holds no patch-grid tokens for it."""
    from vislens.errors import VislensError

    info = store.info
    n_patch = info.grid_h * info.grid_w
    if info.tokens not in ("patches", "all") or n_patch <= 0:
        return None
    if info.n_tokens - info.n_prefix_tokens != n_patch:
        return None
    try:
        rows = store.item_rows(int(item_index))
    except (VislensError, OSError, IndexError, ValueError):
        return None
    grid = np.zeros(n_patch, dtype=np.float64)
    for k, (feats, vals) in enumerate(rows[info.n_prefix_tokens :]):
        hit = vals[feats == feature]
        if len(hit):
            grid[k] = float(hit[0])
    return grid.reshape(info.grid_h, info.grid_w)


def overlay_uri(image_path: Path, grid: np.ndarray, vmax: float | None = None) -> str:
    """``data:`` URI of the image with ``grid`` drawn over it (viz.heatmap); '' when the
    image cannot be read."""
    from PIL import Image, UnidentifiedImageError

    from vislens.viz.heatmap import overlay_heatmap

    try:
        with Image.open(image_path) as img:
            img.thumbnail((256, 256))
            out = overlay_heatmap(img, np.clip(grid, 0, None), vmax=vmax)
    except (OSError, UnidentifiedImageError, ValueError):
        return ""
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
