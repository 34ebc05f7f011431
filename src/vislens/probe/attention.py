"""Attention to the image, aggregated onto the grid, and the per-case attention files.

Each case's file ``attn_cache/<case_id>.npz`` (docs/formats/probe-attn-cache.md) holds:

- ``attention`` ``[layers, heads, rows, cols]`` float16: the softmax weight from the query
  position (the last prompt token, or the first answer token) to each image token, placed
  at that token's grid cell. Raw weights: a head's map sums to the share of its attention
  that went to the image, not to 1.
- ``generic`` the same map for the generic prompt ("Write a general description of the
  image.") on the same image, query at its last token.
- ``relative`` ``[layers, rows, cols]`` float16: the relative attention of Zhang et al.
  2025 ("MLLMs Know Where to Look"), the head-mean ``attention`` divided elementwise by
  the head-mean ``generic`` of the same layer. The denominator gets ``1e-3`` of its own
  mean added so an empty cell cannot divide by zero.
- ``meta``: a JSON string (case id, model, query, template version, grid, layers ...).

Files are written to a temporary name and renamed, so a killed run leaves whole files
only; a file whose ``meta`` does not match the current run is recomputed.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float, Int

NPZ_KEYS: tuple[str, ...] = ("attention", "generic", "relative", "meta")
META_KEYS: tuple[str, ...] = (
    "schema_version",
    "case_id",
    "image",
    "question",
    "model",
    "query",
    "query_position",
    "templates",
    "generic_prompt",
    "grid",
    "layers",
    "n_heads",
    "evidence",
)
SCHEMA_VERSION = 1
REL_EPS = 1e-3


def tokens_to_grid(
    attn_blhn: Float[np.ndarray, "b l h n"],
    grid_rc_n2: Int[np.ndarray, "n 2"],
    grid_shape: tuple[int, int],
) -> Float[np.ndarray, "b l h r c"]:
    """Put each image token's weight at its ``(row, col)`` cell (summing tokens that share
    a cell, which no supported adapter produces but a coarser grid would)."""
    rows, cols = grid_shape
    flat = grid_rc_n2[:, 0] * cols + grid_rc_n2[:, 1]
    out = np.zeros((*attn_blhn.shape[:3], rows * cols), dtype=np.float32)
    np.add.at(out, (..., flat), attn_blhn.astype(np.float32))  # type: ignore[arg-type]
    return out.reshape(*attn_blhn.shape[:3], rows, cols)


def relative_attention(
    attention_lhrc: Float[np.ndarray, "l h r c"], generic_lhrc: Float[np.ndarray, "l h r c"]
) -> Float[np.ndarray, "l r c"]:
    """Zhang et al. 2025: per layer, head-mean attention over head-mean generic attention."""
    a = attention_lhrc.astype(np.float32).mean(1)
    g = generic_lhrc.astype(np.float32).mean(1)
    eps = REL_EPS * g.mean(axis=(1, 2), keepdims=True) + 1e-12
    return a / (g + eps)


def write_case_npz(
    path: Path,
    attention_lhrc: np.ndarray,
    generic_lhrc: np.ndarray,
    meta: dict[str, Any],
) -> None:
    """Write one case's file atomically (float16 maps, ``meta`` as JSON)."""
    att16 = attention_lhrc.astype(np.float16)
    gen16 = generic_lhrc.astype(np.float16)
    rel16 = relative_attention(att16, gen16).astype(np.float16)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    buf = io.BytesIO()
    np.savez(buf, attention=att16, generic=gen16, relative=rel16, meta=np.array(json.dumps(meta)))
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def read_case_npz(path: Path) -> dict[str, Any]:
    """A case file as ``{"attention", "generic", "relative": arrays, "meta": dict}``."""
    with np.load(path, allow_pickle=False) as z:
        out: dict[str, Any] = {k: z[k] for k in ("attention", "generic", "relative")}
        out["meta"] = json.loads(str(z["meta"]))
    return out


def read_meta(path: Path) -> dict[str, Any] | None:
    """Only the ``meta`` of a case file, or None if the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return dict(json.loads(str(z["meta"])))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        return None
