"""The human-study sample: K patches x N images (6 x 60 by default), seeded.

Writes seed 000's two files into ``lens/`` and one instance file per method x visual layer
into ``lens/sample/<method>_visual<L>/instances.json``, each in the legacy layout that
``vislens human task patch`` and ``vislens judge latentlens`` read directly (the judge
writes its verdicts beside it, in ``llm_judge_results/``):

- ``human_study_similarities_contextual.json`` (legacy, visual layer 0):
  ``{description, total_instances, instances[{instance_id, model, image_idx, patch_row,
  patch_col, layer, visual_layer, image_url, caption, neighbors[{rank, token_str,
  similarity, source_caption, position}]}]}``;
- ``human_study_similarities_all_visual_layers.json``: the same instances with neighbours
  nested per visual layer, ``visual_layers: {"<L>": {neighbors: [...]}}``, and the list of
  visual layers under ``visual_layers_<family>``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vislens.errors import InputError
from vislens.human.seed002 import read_json
from vislens.io import write_json_atomic
from vislens.lens.neighbors import records

LEGACY_FILE = "human_study_similarities_contextual.json"
ALL_LAYERS_FILE = "human_study_similarities_all_visual_layers.json"
INSTANCE_KEYS = (
    "instance_id", "model", "image_idx", "patch_row", "patch_col", "layer", "visual_layer",
    "image_url", "caption", "neighbors",
)  # fmt: skip
"""Keys of a legacy instance, in seed 000's order (extra keys follow them)."""
EXTRA_KEYS = ("image_path", "image_source", "grid", "item_id", "patch_idx", "method")
NEIGHBOR_KEYS = ("rank", "token_str", "similarity", "source_caption", "position")
ALL_LAYERS_INSTANCE_KEYS = (
    "instance_id", "model", "image_idx", "patch_row", "patch_col", "contextual_layer",
    "image_url", "visual_layers",
)  # fmt: skip
DESCRIPTION = "Cosine similarities for human-annotated instances (LatentLens/contextual)"


def sample_patches(
    table: pd.DataFrame, *, n_images: int = 60, n_patches: int = 6, seed: int = 0
) -> pd.DataFrame:
    """``(image_idx, patch_idx)`` pairs: ``n_images`` images, ``n_patches`` distinct patches each
    (all there are when fewer), drawn with ``seed``; sorted."""
    if n_images < 1 or n_patches < 1:
        raise InputError(
            f"sample sizes must be at least 1 (got {n_images} images, {n_patches} patches)"
        )
    patches = (
        table[["image_idx", "patch_idx"]].drop_duplicates().sort_values(["image_idx", "patch_idx"])
    )
    images = np.sort(patches["image_idx"].unique())
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(images, size=min(n_images, len(images)), replace=False))
    rows = []
    for img in chosen:
        avail = patches.loc[patches["image_idx"] == img, "patch_idx"].to_numpy()
        pick = np.sort(rng.choice(avail, size=min(n_patches, len(avail)), replace=False))
        rows += [(int(img), int(p)) for p in pick]
    return pd.DataFrame(rows, columns=["image_idx", "patch_idx"])


def model_family(model: str) -> str:
    """``visual_layers_<family>`` key: qwen for Qwen models, olmo_llama otherwise (the seed's two)."""
    return "qwen" if "qwen" in model.lower() else "olmo_llama"


def _neighbors(g: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "rank": int(r["rank"]),
            "token_str": r["token_str"],
            "similarity": round(float(r["score"]), 6),
            "source_caption": r["caption"],
            "position": int(r["position"]),
        }
        for r in g
    ]


def instance_id(model: str, image_idx: int, patch_idx: int) -> str:
    safe = re.sub(r"[^\w.-]+", "_", Path(model).name or model)
    return f"{safe}_{image_idx}_patch{patch_idx}"


def _local_copy(src: str, image_idx: int, folder: Path) -> str:
    """Hard-link (or copy) a local image into ``folder/images/``: the annotation server only
    serves images under the instance file's folder. Returns the relative path ('' for URLs)."""
    if not src or src.startswith(("http://", "https://")) or not Path(src).is_file():
        return ""
    rel = Path("images") / f"{image_idx}_{Path(src).name}"
    dest = folder / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copyfile(src, dest)
    return rel.as_posix()


def sample_instances(
    table: pd.DataFrame,
    out_dir: Path,
    *,
    model: str,
    images: list[dict[str, Any]],
    grid_rows: int,
    n_images: int = 60,
    n_patches: int = 6,
    seed: int = 0,
    legacy_visual_layer: int = 0,
    copy_images: bool = True,
) -> dict[str, Path]:
    """Write the sample's files under ``out_dir`` (the study's ``lens/``); ``images[i]`` has
    ``source`` and ``caption`` of image ``i``. Returns the paths written by name."""
    out_dir = Path(out_dir)
    pairs = sample_patches(table, n_images=n_images, n_patches=n_patches, seed=seed)
    keyed = table.merge(pairs, on=["image_idx", "patch_idx"])
    groups: dict[tuple[int, int, int, int] | tuple[Any, ...], list[dict[str, Any]]] = {}
    # One pass over the sampled rows, sorted, so each patch's list is in rank order.
    for r in records(
        keyed.sort_values(["method", "visual_layer", "image_idx", "patch_idx", "rank"])
    ):
        k = (r["method"], int(r["visual_layer"]), int(r["image_idx"]), int(r["patch_idx"]))
        groups.setdefault(k, []).append(r)
    written: dict[str, Path] = {}

    def base(img: int, pidx: int, g: list[dict[str, Any]]) -> dict[str, Any]:
        first = g[0]

        return {
            "instance_id": instance_id(model, img, pidx), "model": model, "image_idx": img,
            "patch_row": int(first["patch_row"]), "patch_col": int(first["patch_col"]),
        }  # fmt: skip

    def where(img: int, folder: Path) -> tuple[str, str]:
        """(original source, path of the image's copy relative to ``folder``)."""
        src = str(images[img].get("source", ""))
        return src, _local_copy(src, img, folder) if copy_images else ""

    def legacy(
        img: int, pidx: int, g: list[dict[str, Any]], vl: int, method: str, out: Path
    ) -> dict[str, Any]:
        top = g[0]
        src, local = where(img, out)
        rec = base(img, pidx, g) | {
            "layer": int(top["contextual_layer"]), "visual_layer": vl, "image_url": local or src,
            "caption": str(images[img].get("caption", "")), "neighbors": _neighbors(g),
            "image_path": local, "image_source": src,
            "grid": grid_rows, "item_id": str(top["item_id"]), "patch_idx": pidx, "method": method,
        }  # fmt: skip
        return rec

    methods = sorted(table["method"].unique())
    layers = sorted(int(x) for x in table["visual_layer"].unique())
    for method in methods:
        for vl in layers:
            folder = out_dir / "sample" / f"{method}_visual{vl}"
            insts = [
                legacy(img, pidx, groups[(method, vl, img, pidx)], vl, method, folder)
                for img, pidx in pairs.itertuples(index=False)
                if (method, vl, img, pidx) in groups
            ]
            if not insts:
                continue
            doc = {
                "description": f"{method} neighbours of sampled patches, visual layer {vl}",
                "total_instances": len(insts), "instances": insts,
            }  # fmt: skip
            path = folder / "instances.json"
            write_json_atomic(path, doc)
            written[f"{method}_visual{vl}"] = path
    if "latentlens" in methods:
        vl0 = legacy_visual_layer if legacy_visual_layer in layers else layers[0]
        insts = [
            legacy(img, pidx, groups[("latentlens", vl0, img, pidx)], vl0, "latentlens", out_dir)
            for img, pidx in pairs.itertuples(index=False)
        ]
        path = out_dir / LEGACY_FILE
        write_json_atomic(
            path, {"description": DESCRIPTION, "total_instances": len(insts), "instances": insts}
        )
        written["legacy"] = path
        nested = []
        for img, pidx in pairs.itertuples(index=False):
            per = {vl: groups[("latentlens", vl, img, pidx)] for vl in layers}
            first = per[vl0][0]
            src, local = where(img, out_dir)
            nested.append(
                base(img, pidx, per[vl0])
                | {
                    "contextual_layer": int(first["contextual_layer"]),
                    "image_url": local or src,
                    "visual_layers": {
                        str(vl): {"neighbors": _neighbors(g)} for vl, g in per.items()
                    },
                    "image_path": local,
                    "image_source": src,
                    "grid": grid_rows,
                    "caption": str(images[img].get("caption", "")),
                    # The legacy visual layer's neighbours at the top level too, so the
                    # human-task and judge readers take this file as it is.
                    "visual_layer": vl0,
                    "neighbors": _neighbors(per[vl0]),
                }
            )
        path = out_dir / ALL_LAYERS_FILE
        write_json_atomic(
            path,
            {
                "description": DESCRIPTION.replace("contextual)", "contextual, all visual layers)"),
                "total_instances": len(nested),
                f"visual_layers_{model_family(model)}": layers,
                "instances": nested,
            },
        )
        written["all_visual_layers"] = path
    return written


def read_human_study(path: Path) -> pd.DataFrame:
    """Rows (instance_id, image_idx, patch_row, patch_col, visual_layer, rank, token_str,
    similarity, source_caption, position) from either seed 000 file (legacy or nested)."""
    path = Path(path)
    doc = read_json(path)
    insts = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(insts, list):
        raise InputError(f"{path}: expected {{'instances': [...]}}")
    rows = []
    for i, inst in enumerate(insts):
        where = f"{path}: instances[{i}]"
        if not isinstance(inst, dict) or "instance_id" not in inst:
            raise InputError(f"{where}: needs an 'instance_id'")
        if "visual_layers" in inst:
            per = {int(k): v.get("neighbors", []) for k, v in inst["visual_layers"].items()}
        elif "neighbors" in inst:
            per = {int(inst.get("visual_layer", 0)): inst["neighbors"]}
        else:
            raise InputError(f"{where} ({inst['instance_id']}): no 'neighbors' or 'visual_layers'")
        for vl, ns in per.items():
            for n in ns:
                rows.append(
                    {
                        "instance_id": inst["instance_id"],
                        "image_idx": inst.get("image_idx"),
                        "patch_row": inst.get("patch_row"),
                        "patch_col": inst.get("patch_col"),
                        "visual_layer": vl,
                        "rank": n.get("rank"),
                        "token_str": n.get("token_str"),
                        "similarity": n.get("similarity"),
                        "source_caption": n.get("source_caption", ""),
                        "position": n.get("position", -1),
                    }
                )
    return pd.DataFrame(rows)
