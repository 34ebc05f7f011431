"""LatentLens' own JSON layouts, written from (and read back into) the neighbours table.

Files (docs/formats/lens-exports.md), as LatentLens' scripts name them:

- ``contextual_nearest_neighbors/contextual_neighbors_visual{L}_allLayers.json``
- ``logit_lens/logit_lens_layer{L}_topk{k}_multi-gpu.json`` (``top_predictions``)
- ``nearest_neighbors/nearest_neighbors_analysis_pixmo_cap_multi-gpu_layer{L}.json``
  (EmbeddingLens, ``splits.validation.images``)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vislens.errors import InputError
from vislens.human.seed002 import read_json
from vislens.io import write_json_atomic
from vislens.lens.neighbors import COLUMN_DTYPES, NEIGHBOR_COLUMNS, groups, records

CHUNK_NAME = "Full Image"
CONTEXTUAL_KEYS = (
    "checkpoint", "contextual_dir", "visual_layer", "contextual_layers_used", "split",
    "num_images", "image_indices", "top_k", "processing_time_seconds", "results",
)  # fmt: skip
RESULT_KEYS = ("image_idx", "ground_truth_caption", "feature_shape", "llm_layer_used", "chunks")
PATCH_KEYS = ("patch_idx", "patch_row", "patch_col", "nearest_contextual_neighbors")
NEIGHBOR_KEYS = ("token_str", "token_id", "caption", "position", "similarity", "contextual_layer")
LOGIT_KEYS = ("checkpoint", "layer_idx", "num_images", "top_k", "results")
PREDICTION_KEYS = ("token", "token_id", "logit")
EMBEDDING_KEYS = ("checkpoint", "llm_layer", "num_images", "top_k", "splits")
EMBEDDING_NEIGHBOR_KEYS = ("token", "token_id", "similarity")

DIRS = {
    "latentlens": "contextual_nearest_neighbors",
    "logitlens": "logit_lens",
    "embeddinglens": "nearest_neighbors",
}


def export_name(method: str, visual_layer: int, top_k: int = 5) -> str:
    if method == "latentlens":
        return f"contextual_neighbors_visual{visual_layer}_allLayers.json"
    if method == "logitlens":
        return f"logit_lens_layer{visual_layer}_topk{top_k}_multi-gpu.json"
    return f"nearest_neighbors_analysis_pixmo_cap_multi-gpu_layer{visual_layer}.json"


def _neighbor_entry(method: str, r: dict[str, Any]) -> dict[str, Any]:
    if method == "latentlens":
        return {
            "token_str": r["token_str"],
            "token_id": int(r["token_id"]),
            "caption": r["caption"],
            "position": int(r["position"]),
            "similarity": float(r["score"]),
            "contextual_layer": int(r["contextual_layer"]),
        }
    if method == "logitlens":
        return {"token": r["token_str"], "token_id": int(r["token_id"]), "logit": float(r["score"])}
    return {
        "token": r["token_str"],
        "token_id": int(r["token_id"]),
        "similarity": float(r["score"]),
    }


NEIGHBOR_LIST = {
    "latentlens": "nearest_contextual_neighbors",
    "logitlens": "top_predictions",
    "embeddinglens": "nearest_neighbors",
}


def _images(
    df: pd.DataFrame, method: str, visual_layer: int, captions: dict[int, str], d_model: int
) -> list[dict[str, Any]]:
    """The ``results`` / ``images`` list: one pass over the rows sorted by image, patch, rank
    (a groupby per patch is far slower at 576 patches x hundreds of images)."""
    key = NEIGHBOR_LIST[method]
    out: list[dict[str, Any]] = []
    patch: dict[str, Any] | None = None
    for r in records(df.sort_values(["image_idx", "patch_idx", "rank"])):
        img = int(r["image_idx"])
        if not out or out[-1]["image_idx"] != img:
            rec: dict[str, Any] = {
                "image_idx": img,
                "ground_truth_caption": captions.get(img, ""),
            }
            if method == "latentlens":
                rec["feature_shape"] = [1, 1, 0, d_model]
                rec["llm_layer_used"] = visual_layer
            rec["chunks"] = [{"chunk_name": CHUNK_NAME, "patches": []}]
            out.append(rec)
            patch = None
        patches = out[-1]["chunks"][0]["patches"]
        if patch is None or patch["patch_idx"] != int(r["patch_idx"]):
            patch = {
                "patch_idx": int(r["patch_idx"]),
                "patch_row": int(r["patch_row"]),
                "patch_col": int(r["patch_col"]),
                key: [],
            }
            patches.append(patch)
        patch[key].append(_neighbor_entry(method, r))
    if method == "latentlens":
        for rec in out:
            rec["feature_shape"][2] = len(rec["chunks"][0]["patches"])
    return out


def write_exports(
    table: pd.DataFrame,
    out_dir: Path,
    *,
    checkpoint: str,
    contextual_dir: str,
    contextual_layers: Sequence[int],
    captions: dict[int, str],
    d_model: int,
    top_k: int,
    split: str = "validation",
    seconds: float = 0.0,
) -> list[Path]:
    """Every method x visual layer of ``table`` in LatentLens' layout under ``out_dir``."""
    written = []
    for (method, vl), df in groups(table, ["method", "visual_layer"]):
        vl = int(vl)
        method = str(method)
        images = _images(df, method, vl, captions, d_model)
        indices = [r["image_idx"] for r in images]
        doc: dict[str, Any]
        if method == "latentlens":
            doc = {
                "checkpoint": checkpoint, "contextual_dir": contextual_dir, "visual_layer": vl,
                "contextual_layers_used": list(contextual_layers), "split": split,
                "num_images": len(images), "image_indices": indices, "top_k": top_k,
                "processing_time_seconds": round(seconds, 3), "results": images,
            }  # fmt: skip
        elif method == "logitlens":
            doc = {
                "checkpoint": checkpoint,
                "layer_idx": vl,
                "num_images": len(images),
                "top_k": top_k,
                "results": images,
            }
        else:
            doc = {
                "checkpoint": checkpoint, "llm_layer": vl, "num_images": len(images), "top_k": top_k,
                "splits": {split: {"images": images}},
            }  # fmt: skip
        path = Path(out_dir) / DIRS[method] / export_name(method, vl, top_k)
        write_json_atomic(path, doc, indent=None)
        written.append(path)
    return written


def read_export(path: Path, item_ids: dict[int, str] | None = None) -> pd.DataFrame:
    """Rows of the neighbours table from any of the three layouts (LatentLens' own files
    too); ``item_ids`` maps image_idx to item_id (default: the index as a string)."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object")
    if "splits" in doc:
        method, vl = "embeddinglens", doc.get("llm_layer")
        split: Any = next(iter(doc["splits"].values()), {})
        images = split.get("images", [])
        key, score = "nearest_neighbors", "similarity"
    elif "visual_layer" in doc:
        method, vl, images = "latentlens", doc.get("visual_layer"), doc.get("results", [])
        key, score = "nearest_contextual_neighbors", "similarity"
    elif "layer_idx" in doc:
        method, vl, images = "logitlens", doc.get("layer_idx"), doc.get("results", [])
        key, score = "top_predictions", "logit"
    else:
        raise InputError(f"{path}: not a LatentLens, LogitLens or EmbeddingLens export")
    if not isinstance(vl, int):
        raise InputError(f"{path}: the layer key is missing or not an integer")
    rows = []
    for i, img in enumerate(images):
        try:
            idx = int(img["image_idx"])
            for chunk in img["chunks"]:
                for p in chunk["patches"]:
                    for rank, n in enumerate(p[key], start=1):
                        rows.append(
                            {
                                "method": method,
                                "item_id": (item_ids or {}).get(idx, str(idx)),
                                "image_idx": idx,
                                "visual_layer": vl,
                                "patch_idx": int(p["patch_idx"]),
                                "patch_row": int(p.get("patch_row", -1)),
                                "patch_col": int(p.get("patch_col", -1)),
                                "rank": rank,
                                "token_str": n.get("token_str", n.get("token", "")),
                                "token_id": int(n.get("token_id", -1)),
                                "score": float(n[score]),
                                "contextual_layer": int(n.get("contextual_layer", -1)),
                                "caption": n.get("caption", ""),
                                "position": int(n.get("position", -1)),
                            }
                        )
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(
                f"{path}: results[{i}] does not follow the layout ({type(e).__name__}: {e})"
            ) from None
    dtypes: Any = COLUMN_DTYPES
    return pd.DataFrame(rows, columns=list(NEIGHBOR_COLUMNS)).astype(dtypes)
