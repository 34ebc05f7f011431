"""Creating annotation tasks: binary (seed 002), patch (LatentLens), feature rating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislens.app.paths import check_item_images
from vislens.errors import InputError
from vislens.human.kinds import BINARY_LABELS, RATING_ANSWERS, RELATIONS, question_for_mode
from vislens.human.latentlens import read_instances
from vislens.human.seed002 import (
    clean_value,
    load_neuronpedia_export,
    read_json,
    records_of,
    sample_features,
)
from vislens.store.annotations import AnnotationStore, ItemSpec
from vislens.store.annotations.schema import Task

DEFAULT_SAMPLE_N = 300
DEFAULT_SEED = 42


def binary_task_name(export_path: Path, mode: str) -> str:
    """Seed 002's name: ``<export stem>_human_labels_<mode>`` (also the export file stem)."""
    return f"{Path(export_path).stem}_human_labels_{mode}"


def create_binary_task(
    store: AnnotationStore,
    export_path: Path,
    *,
    mode: str = "alignment",
    n: int = DEFAULT_SAMPLE_N,
    seed: int = DEFAULT_SEED,
    name: str | None = None,
) -> Task:
    """Sample ``n`` feature descriptions with ``seed`` from a Neuronpedia export into a
    Related / Not related task whose question depends on ``mode``."""
    if n < 1:
        raise InputError(f"sample size --n must be at least 1, got {n}")
    df = sample_features(load_neuronpedia_export(export_path), n, seed)
    items = []
    for row_id, rec in enumerate(df.to_dict("records")):
        items.append(
            ItemSpec(
                str(row_id),
                {
                    "_row_id": row_id,
                    "feature_index": clean_value(rec.get("feature_index")),
                    "feature_id": clean_value(rec.get("feature_id")),
                    "description": ""
                    if clean_value(rec.get("description")) is None
                    else str(rec["description"]),
                },
            )
        )
    return store.create_task(
        name or binary_task_name(export_path, mode),
        "binary",
        items,
        question=question_for_mode(mode),
        labels=BINARY_LABELS,
        settings={"mode": mode, "source": str(export_path)},
        seed=seed,
    )


def create_patch_task(
    store: AnnotationStore, instances_path: Path, *, name: str | None = None
) -> Task:
    """A patch-interpretability task from LatentLens instances (data.json or a lens run)."""
    instances = read_instances(instances_path)
    roots = _image_roots(instances_path)
    check_item_images("patch", instances, Path(instances_path).parent, roots, str(instances_path))
    items = [ItemSpec(iid, payload) for iid, payload in instances]
    return store.create_task(
        name or Path(instances_path).parent.name or "latentlens",
        "patch",
        items,
        question="Which of these words describe what is inside the red box?",
        labels=RELATIONS,
        settings={"source": str(instances_path), "image_roots": roots},
    )


def _image_roots(source_path: Path) -> list[str]:
    """The folders a task's images may be served from (see vislens.app.paths)."""
    from vislens.app.paths import declared_roots_for_input

    return declared_roots_for_input(source_path)


def read_feature_cards(path: Path) -> list[dict[str, Any]]:
    """Feature-rating input (docs/formats/feature-rating-input.md): a list of
    ``{feature_id, label, images: [path], heatmaps: [path]?}``; image paths are relative
    to the file's folder unless absolute."""
    path = Path(path)
    recs = records_of(read_json(path), path, keys=("features", "items", "data"))
    out = []
    for i, rec in enumerate(recs):
        where = f"{path}: record {i}"
        fid = rec.get("feature_id")
        if fid is None:
            raise InputError(f"{where}: missing 'feature_id'")
        images = rec.get("images")
        if (
            not isinstance(images, list)
            or not images
            or not all(isinstance(p, str) for p in images)
        ):
            raise InputError(f"{where} (feature {fid}): 'images' must be a non-empty list of paths")
        heatmaps = rec.get("heatmaps") or []
        if not isinstance(heatmaps, list) or (heatmaps and len(heatmaps) != len(images)):
            raise InputError(f"{where} (feature {fid}): 'heatmaps' must list one path per image")

        def _abs(p: str) -> str:
            q = Path(p)
            return str(q if q.is_absolute() else (path.parent / q).resolve())

        out.append(
            {
                "feature_id": str(fid),
                "label": str(rec.get("label", "")),
                "images": [_abs(p) for p in images],
                "heatmaps": [_abs(p) for p in heatmaps],
            }
        )
    return out


def create_rating_task(
    store: AnnotationStore, features_path: Path, *, name: str | None = None
) -> Task:
    """A feature-rating task: coherent? label right? (yes / partly / no)."""
    cards = read_feature_cards(features_path)
    roots = _image_roots(features_path)
    check_item_images(
        "rating",
        ((c["feature_id"], c) for c in cards),
        Path(features_path).parent,
        roots,
        str(features_path),
    )
    items = [ItemSpec(c["feature_id"], c) for c in cards]
    return store.create_task(
        name or f"{Path(features_path).stem}_rating",
        "rating",
        items,
        question="Is this feature coherent, and is its label right?",
        labels=RATING_ANSWERS,
        settings={"source": str(features_path), "image_roots": roots},
    )


def cards_from_sae(
    study: Any, sae_name: str, *, n_images: int = 9, features: list[int] | None = None
) -> list[dict[str, Any]]:
    """Feature cards straight from an SAE run: top images from ``sae/<name>/topk.parquet``
    (their files from images.parquet), labels from ``sae/<name>/labels.json`` if present, and
    — when the run's codes hold every patch — one heatmap overlay per image, written to
    ``sae/<name>/heatmaps/``."""
    import pandas as pd

    from vislens.data.table import read_image_table
    from vislens.sae.top_items import TOPK_FILE

    sae_dir = study.sae_dir(sae_name)
    topk_path = sae_dir / TOPK_FILE
    if not topk_path.is_file():
        raise InputError(
            f"{topk_path}: no top-k table — run the SAE top-k step for {sae_name!r} first"
        )
    topk = pd.read_parquet(topk_path)
    sources = dict(
        zip(*(read_image_table(study.images_path)[c] for c in ("item_id", "source")), strict=True)
    )
    labels: dict[int, str] = {}
    labels_path = sae_dir / "labels.json"
    if labels_path.is_file():
        labels = {
            int(f["feature"]): str(f.get("label", ""))
            for f in read_json(labels_path).get("features", [])
        }
    wanted = sorted(set(topk["feature"])) if features is None else features
    codes = _patch_codes(sae_dir)
    cards = []
    for feat in wanted:
        rows = topk[topk["feature"] == feat].sort_values("rank").head(n_images)
        if rows.empty:
            raise InputError(f"{topk_path}: feature {feat} has no top items")
        images = [str(sources[i]) for i in rows["item_id"]]
        heatmaps: list[str] = []
        if codes is not None:
            from vislens.sae.inspect import feature_heatmap
            from vislens.viz.heatmap import save_overlay

            for item_index, image in zip(rows["item_index"], images, strict=True):
                grid = feature_heatmap(codes, int(item_index), int(feat))
                out = sae_dir / "heatmaps" / f"f{int(feat):06d}_i{int(item_index):08d}.png"
                heatmaps.append(str(save_overlay(Path(image), grid, out)))
        cards.append(
            {
                "feature_id": str(feat),
                "label": labels.get(int(feat), ""),
                "images": images,
                "heatmaps": heatmaps,
            }
        )
    return cards


def _patch_codes(sae_dir: Path) -> Any:
    """The run's code store when it holds every patch token (so heatmaps exist), else None."""
    from vislens.sae.runs import CODES_DIR
    from vislens.store.codes import CodesStore

    if not (sae_dir / CODES_DIR).is_dir():
        return None
    codes = CodesStore.open(sae_dir / CODES_DIR)
    n_patches = codes.info.n_tokens - codes.info.n_prefix_tokens
    return codes if n_patches == codes.info.grid_h * codes.info.grid_w > 1 else None


def create_rating_task_from_sae(
    store: AnnotationStore,
    study: Any,
    sae_name: str,
    *,
    n_images: int = 9,
    features: list[int] | None = None,
    name: str | None = None,
) -> Task:
    """A feature-rating task over an SAE run's features (see :func:`cards_from_sae`)."""
    from vislens.app.paths import image_source_root

    cards = cards_from_sae(study, sae_name, n_images=n_images, features=features)
    src_root = image_source_root(study)
    # The images come from the study's own image table, not from an input file: their
    # folders are declared roots, as the study and its image source are.
    image_dirs = {str(Path(p).resolve().parent) for c in cards for p in c["images"] if not str(p).startswith(("http://", "https://"))}  # fmt: skip
    roots = [str(Path(study.root).resolve())] + ([str(src_root.resolve())] if src_root else [])
    roots += sorted(image_dirs - set(roots))
    check_item_images(
        "rating", ((c["feature_id"], c) for c in cards), Path(study.root), roots, f"sae/{sae_name}"
    )
    return store.create_task(
        name or f"{sae_name}_rating",
        "rating",
        [ItemSpec(c["feature_id"], c) for c in cards],
        question="Is this feature coherent, and is its label right?",
        labels=RATING_ANSWERS,
        settings={"source": f"sae/{sae_name}", "image_roots": roots},
    )
