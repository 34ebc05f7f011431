"""Export an SAE's features, top images and labels in Neuronpedia's dataset layout.

Neuronpedia (github.com/hijohnnylin/neuronpedia) exchanges SAE dashboards as one folder per
*source* (``<modelId>/<layer>-<sourceSetName>/``): ``model.jsonl``, ``sourceset.jsonl`` and
``source.jsonl`` with one record each, and gzip-compressed JSONL batches
``features/batch-N.jsonl.gz``, ``activations/batch-N.jsonl.gz`` and
``explanations/batch-N.jsonl.gz`` with the columns of its ``Neuron``, ``Activation`` and
``Explanation`` tables (``utils/neuronpedia-utils``: ``export-data.py`` writes them,
``apps/webapp/app/api/admin/import`` reads them back, keeping only the keys its tables know).
We write the same keys; what an image needs and a text dashboard does not (which image,
which patch, vislens' scores) goes under one extra key, ``vislens``, that the importer
ignores. An activation record is one top image: ``tokens`` names the image's tokens (``<cls>``,
``r0c3`` …), ``values`` holds the feature's value on each. The protocol is
docs/formats/sae-neuronpedia.md.

Batches: ``features`` and ``activations`` batch ``N`` cover feature indices
``[N·B, (N+1)·B)`` (so the two pair up, as Neuronpedia's autointerp script expects);
``explanations`` are ``B`` records per batch in feature order, as ``export-data.py`` writes
them. ``B`` is 1024 by default, Neuronpedia's. The export is built in a hidden folder beside
its target and renamed into place, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

import vislens
from vislens.errors import InputError
from vislens.store.codes import CodesInfo, CodesStore
from vislens.study import Study

SCHEMA_VERSION = 1
BATCH_SIZE = 1024
MANIFEST_FILE = "vislens.json"
# What the judge stage writes into sae/<name>/ (vislens.judge.tasks.label*; a test holds
# these names to its constants, so the SAE stage need not import the judge stage).
LABELS_FILE = "labels.json"
LABELS_SCHEMA_VERSION = 1
LABEL_SCORES_FILE = "label_scores.parquet"
FUZZ_SCORES_FILE = "label_scores_fuzzing.parquet"

MODEL_KEYS = ("id", "displayName", "displayNameShort", "instruct", "dimension", "creatorId",
              "visibility")  # fmt: skip
SOURCESET_KEYS = ("modelId", "name", "description", "creatorId", "creatorName", "hasDashboards",
                  "visibility")  # fmt: skip
SOURCE_KEYS = ("id", "modelId", "setName", "creatorId", "hasDashboards", "visibility", "dataset",
               "num_prompts", "num_tokens_in_prompt")  # fmt: skip
FEATURE_KEYS = ("modelId", "layer", "index", "creatorId", "maxActApprox", "frac_nonzero",
                "hasVector", "vector", "vislens")  # fmt: skip
FEATURE_VISLENS_KEYS = ("sae", "n_active", "status", "ms", "ms_topn", "tier")
ACTIVATION_KEYS = ("id", "modelId", "layer", "index", "creatorId", "tokens", "values", "maxValue",
                   "maxValueTokenIndex", "minValue", "dataSource", "dataIndex", "vislens")  # fmt: skip
ACTIVATION_VISLENS_KEYS = ("item_id", "item_index", "rank", "value", "reduce", "image", "file_name",
                           "patch_row", "patch_col")  # fmt: skip
EXPLANATION_KEYS = ("id", "modelId", "layer", "index", "description", "authorId", "typeName",
                    "explanationModelName", "notes", "vislens")  # fmt: skip
EXPLANATION_VISLENS_KEYS = ("template", "n_images", "balanced_accuracy", "auc",
                            "fuzzing_balanced_accuracy", "fuzzing_auc")  # fmt: skip
MANIFEST_KEYS = ("schema_version", "format", "vislens_version", "sae", "modelId", "layer",
                 "sourceSetName", "batch_size", "d_sae", "n_items", "n_features", "n_activations",
                 "n_explanations", "k", "reduce", "tokens", "token_names", "grid_h", "grid_w",
                 "files")  # fmt: skip


@dataclass(frozen=True)
class NeuronpediaExport:
    """What ``export_neuronpedia`` wrote."""

    dir: Path
    """The source folder, ``OUT/<modelId>/<layer>/``."""
    n_features: int
    n_activations: int
    n_explanations: int


def slug(text: str) -> str:
    """A Neuronpedia-style id: lower case, runs of other characters as one dash."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def token_names(info: CodesInfo) -> list[str]:
    """Names of an item's tokens in the code store's order: prefix tokens, then patches
    row-major as ``r<row>c<col>``."""
    if info.n_tokens == 1 and info.tokens == "mean":
        return ["<mean>"]
    prefix = [
        "<cls>" if (i == 0 and info.has_cls) else f"<reg{i}>" for i in range(info.n_prefix_tokens)
    ]
    if info.n_tokens == len(prefix):
        return prefix
    n_patches = info.n_tokens - info.n_prefix_tokens
    if n_patches != info.grid_h * info.grid_w:
        return prefix + [f"<token{t}>" for t in range(info.n_prefix_tokens, info.n_tokens)]
    return prefix + [f"r{p // info.grid_w}c{p % info.grid_w}" for p in range(n_patches)]


def _record_id(*parts: object) -> str:
    """A stable 25-character id (Neuronpedia uses cuids; ours repeat across re-exports)."""
    return "v" + hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:24]


def _num(x: Any) -> float | None:
    """A JSON number, or null for a missing value or NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _write_batch(path: Path, records: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5, mtime=0) as gz,
    ):
        gz.write(text)  # mtime 0: the same study exports to the same bytes


def _write_jsonl(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")


def read_batches(folder: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(N, records)`` of every ``batch-N.jsonl.gz`` in ``folder``, in batch order."""
    files = sorted(
        folder.glob("batch-*.jsonl.gz"), key=lambda p: int(p.name.split("-")[1].split(".")[0])
    )
    for p in files:
        with gzip.open(p, "rt", encoding="utf-8") as fh:
            yield (
                int(p.name.split("-")[1].split(".")[0]),
                [json.loads(line) for line in fh if line.strip()],
            )


def _frac_nonzero(codes: CodesStore) -> np.ndarray:
    """Per feature, the fraction of stored token rows where it is non-zero (Neuronpedia's
    ``frac_nonzero`` is over tokens too)."""
    counts = torch.zeros(codes.info.d_sae, dtype=torch.int64)
    for shard in codes.iter_shards():
        counts += torch.bincount(shard.feature.to(torch.int64), minlength=codes.info.d_sae)
    return counts.numpy() / max(1, codes.n_items * codes.info.n_tokens)


def _token_values(codes: CodesStore, rows: pd.DataFrame) -> dict[tuple[int, int], np.ndarray]:
    """``(feature, item_index) → [n_tokens]`` values for the top-k rows, one shard read each."""
    t = codes.info.n_tokens
    out: dict[tuple[int, int], np.ndarray] = {}
    for shard_id, group in rows.groupby(rows["item_index"] // codes.info.shard_size):
        s = codes.read_shard(int(str(shard_id)))
        local_of = {int(i): k for k, i in enumerate(s.item_index.tolist())}
        for item, g in group.groupby("item_index"):
            local = local_of[int(str(item))]
            a, b = int(s.indptr[local * t]), int(s.indptr[(local + 1) * t])
            counts = (
                s.indptr[local * t + 1 : (local + 1) * t + 1]
                - s.indptr[local * t : (local + 1) * t]
            ).numpy()
            tok = np.repeat(np.arange(t), counts)
            feat = s.feature[a:b].numpy().astype(np.int64)
            val = s.value[a:b].numpy()
            for f in g["feature"].astype(int):
                v = np.zeros(t, dtype=np.float32)
                hit = feat == f
                v[tok[hit]] = val[hit]
                out[(int(f), int(str(item)))] = v
    return out


def _sae_dir_checked(study: Study, name: str) -> Path:
    sae_dir = study.sae_dir(name)
    if not sae_dir.is_dir():
        found = sorted(p.name for p in (study.root / "sae").glob("*") if p.is_dir())
        raise InputError(
            f"{sae_dir}: no SAE named '{name}' in this study (found: {', '.join(found) or 'none'}) — "
            f"run `vislens sae encode STUDY --sae PATH_OR_ID --name {name}` first"
        )
    return sae_dir


@dataclass(frozen=True)
class _Source:
    """The identifiers every record repeats."""

    model_id: str
    layer: str
    creator_id: str | None
    dataset: str | None
    """study.toml's ``images.source``; None when empty."""
    info: CodesInfo
    token_names: list[str]
    reduce: str

    def patch_rc(self, token: int) -> tuple[int | None, int | None]:
        """Grid row and column of a patch token; (None, None) for a prefix token or no grid."""
        info = self.info
        n_patches = info.n_tokens - info.n_prefix_tokens
        if n_patches != info.grid_h * info.grid_w or n_patches <= 1 or token < info.n_prefix_tokens:
            return None, None
        p = token - info.n_prefix_tokens
        return p // info.grid_w, p % info.grid_w


class _TopRow(NamedTuple):
    """One row of ``topk.parquet``."""

    feature: int
    rank: int
    item_index: int
    item_id: str
    value: float


def _top_rows(df: pd.DataFrame) -> Iterator[_TopRow]:
    cols = [df[c].tolist() for c in ("feature", "rank", "item_index", "item_id", "value")]
    for f, rank, item, item_id, value in zip(*cols, strict=True):
        yield _TopRow(int(f), int(rank), int(item), str(item_id), float(value))


def _activation(
    src: _Source, row: _TopRow, v: np.ndarray, image: str | None, file_name: str | None
) -> dict[str, Any]:
    """One top image of one feature as a Neuronpedia ``Activation`` record."""
    f, at = row.feature, int(np.argmax(v))
    patch_row, patch_col = src.patch_rc(at)
    ext = {"item_id": row.item_id, "item_index": row.item_index, "rank": row.rank,
           "value": row.value, "reduce": src.reduce, "image": image, "file_name": file_name,
           "patch_row": patch_row, "patch_col": patch_col}  # fmt: skip
    return {"id": _record_id(src.model_id, src.layer, f, row.rank), "modelId": src.model_id,
            "layer": src.layer, "index": str(f), "creatorId": src.creator_id, "tokens": src.token_names,
            "values": v.tolist(), "maxValue": float(v[at]), "maxValueTokenIndex": at,
            "minValue": float(v.min()), "dataSource": src.dataset, "dataIndex": row.item_id,
            "vislens": ext}  # fmt: skip


def _feature(
    src: _Source, f: int, max_act: float, frac: float, vector: np.ndarray | None,
    score: dict[str, Any], sae: str,
) -> dict[str, Any]:  # fmt: skip
    """One feature as a Neuronpedia ``Neuron`` record (its ``features/`` line)."""
    n_active, tier = score.get("n_active"), score.get("tier")
    ext = {"sae": sae, "n_active": None if n_active is None else int(n_active),
           "status": score.get("status"), "ms": _num(score.get("ms")), "ms_topn": _num(score.get("ms_topn")),
           "tier": None if tier is None else int(tier)}  # fmt: skip
    return {"modelId": src.model_id, "layer": src.layer, "index": str(f), "creatorId": src.creator_id,
            "maxActApprox": max_act, "frac_nonzero": frac, "hasVector": vector is not None,
            "vector": [] if vector is None else vector.tolist(), "vislens": ext}  # fmt: skip


def _write_metadata(
    folder: Path, src: _Source, *, display_name: str, set_name: str, sae: str, n_items: int,
    dimension: int | None,
) -> None:  # fmt: skip
    """``model.jsonl``, ``sourceset.jsonl`` and ``source.jsonl``: one record each."""
    c = src.creator_id
    _write_jsonl(folder / "model.jsonl", {
        "id": src.model_id, "displayName": display_name, "displayNameShort": src.model_id,
        "instruct": False, "dimension": dimension, "creatorId": c, "visibility": "PUBLIC"})  # fmt: skip
    _write_jsonl(folder / "sourceset.jsonl", {
        "modelId": src.model_id, "name": set_name, "description": f"vislens SAE {sae} ({src.info.d_sae} features)",
        "creatorId": c, "creatorName": "", "hasDashboards": True, "visibility": "PUBLIC"})  # fmt: skip
    _write_jsonl(folder / "source.jsonl", {
        "id": src.layer, "modelId": src.model_id, "setName": set_name, "creatorId": c,
        "hasDashboards": True, "visibility": "PUBLIC", "dataset": src.dataset, "num_prompts": n_items,
        "num_tokens_in_prompt": src.info.n_tokens})  # fmt: skip


def _install(tmp: Path, final: Path) -> None:
    """Move the finished export into place (replacing an old one only once the new is whole)."""
    if final.exists():
        old = final.parent / f".{final.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)


def export_neuronpedia(
    study: Study,
    name: str | None,
    out: Path,
    *,
    model_id: str | None = None,
    source_set: str | None = None,
    batch_size: int = BATCH_SIZE,
    creator_id: str | None = None,
    vectors: bool = False,
    copy_images: bool = False,
    overwrite: bool = False,
) -> NeuronpediaExport:
    """Write SAE ``name``'s features, top images and labels to ``out/<modelId>/<layer>-<set>/``.

    Needs ``codes/`` and ``topk.parquet``; adds ``scores.parquet``, ``labels.json`` and the
    label scores when they exist. ``vectors`` adds each feature's decoder row (needs the
    checkpoint); ``copy_images`` copies the top images into ``images/`` as PNG. Each
    features/activations batch reads the code shards holding its top items once.
    """
    import pyarrow.parquet as pq

    from vislens.data.sources import load_image
    from vislens.data.table import read_records
    from vislens.sae.runs import CODES_DIR, sae_name
    from vislens.sae.top_items import TOPK_FILE

    name = sae_name(study, name)
    sae_dir = _sae_dir_checked(study, name)
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1 (got {batch_size})")
    codes = CodesStore.open(sae_dir / CODES_DIR)
    topk_path = sae_dir / TOPK_FILE
    if not topk_path.is_file():
        raise InputError(
            f"{topk_path}: no top items — run `vislens sae topk STUDY --name {name}` first"
        )
    top_meta = pq.read_schema(topk_path).metadata or {}
    reduce = top_meta.get(b"vislens.reduce", codes.info.default_reduce().encode()).decode()
    top = pd.read_parquet(topk_path).sort_values(["feature", "rank"], kind="stable")
    info, d_sae = codes.info, codes.info.d_sae
    scores = _optional_table(sae_dir / "scores.parquet")
    label_doc = _optional_labels(sae_dir / LABELS_FILE)
    detection = _optional_table(sae_dir / LABEL_SCORES_FILE)
    fuzzing = _optional_table(sae_dir / FUZZ_SCORES_FILE)
    decoder = _decoder_rows(study, name) if vectors else None
    records = {r.item_id: r for r in read_records(study.images_path)}

    set_name = slug(source_set or name)
    src = _Source(
        model_id=slug(model_id or Path(study.config.model.name_or_path or "model").name),
        layer=f"{info.layer if info.layer is not None else 0}-{set_name}",
        creator_id=creator_id, dataset=study.config.images.source or None, info=info,
        token_names=token_names(info), reduce=reduce,
    )  # fmt: skip
    final = Path(out) / src.model_id / src.layer
    if final.exists() and not overwrite:
        raise InputError(f"{final}: already exists — pass --overwrite to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{src.layer}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for sub in ("features", "activations", "explanations"):
            (tmp / sub).mkdir(parents=True)
        _write_metadata(
            tmp, src, display_name=study.config.model.name_or_path or src.model_id, set_name=set_name,
            sae=name, n_items=codes.n_items, dimension=None if decoder is None else int(decoder.shape[1]),
        )  # fmt: skip
        frac = _frac_nonzero(codes)
        files: dict[str, list[str]] = {"features": [], "activations": [], "explanations": []}
        n_acts = 0
        for n, start in enumerate(range(0, d_sae, batch_size)):
            stop = min(start + batch_size, d_sae)
            rows = top[(top["feature"] >= start) & (top["feature"] < stop)]
            values = _token_values(codes, rows)
            acts: list[dict[str, Any]] = []
            max_act = np.zeros(stop - start)
            for r in _top_rows(rows):
                v = values[(r.feature, r.item_index)]
                rec = records.get(r.item_id)
                file_name = None
                if copy_images and rec is not None:
                    file_name = f"images/{r.item_index}.png"
                    if not (tmp / file_name).exists():
                        (tmp / "images").mkdir(exist_ok=True)
                        load_image(rec).save(tmp / file_name)
                acts.append(_activation(src, r, v, rec.source if rec else None, file_name))
                max_act[r.feature - start] = max(max_act[r.feature - start], float(v.max()))
            feats = [
                _feature(src, f, float(max_act[f - start]), float(frac[f]),
                         None if decoder is None else decoder[f], scores.get(f, {}), name)
                for f in range(start, stop)
            ]  # fmt: skip
            _write_batch(tmp / "features" / f"batch-{n}.jsonl.gz", feats)
            files["features"].append(f"features/batch-{n}.jsonl.gz")
            if acts:  # Neuronpedia's importer reads a batch's columns from its first line
                _write_batch(tmp / "activations" / f"batch-{n}.jsonl.gz", acts)
                files["activations"].append(f"activations/batch-{n}.jsonl.gz")
                n_acts += len(acts)
        expl = _explanations(label_doc, detection, fuzzing, src, d_sae)
        for n, start in enumerate(range(0, len(expl), batch_size)):
            batch_path = tmp / "explanations" / f"batch-{n}.jsonl.gz"
            _write_batch(batch_path, expl[start : start + batch_size])
            files["explanations"].append(f"explanations/batch-{n}.jsonl.gz")
        manifest = {
            "schema_version": SCHEMA_VERSION, "format": "neuronpedia", "vislens_version": vislens.__version__,
            "sae": name, "modelId": src.model_id, "layer": src.layer, "sourceSetName": set_name,
            "batch_size": batch_size, "d_sae": d_sae, "n_items": codes.n_items, "n_features": d_sae,
            "n_activations": n_acts, "n_explanations": len(expl),
            "k": int(top_meta.get(b"vislens.k", b"0")), "reduce": reduce, "tokens": info.tokens,
            "token_names": src.token_names, "grid_h": info.grid_h, "grid_w": info.grid_w, "files": files,
        }  # fmt: skip
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _install(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return NeuronpediaExport(final, d_sae, n_acts, len(expl))


def _explanations(
    label_doc: dict[str, Any] | None,
    detection: dict[int, dict[str, Any]],
    fuzzing: dict[int, dict[str, Any]],
    src: _Source,
    d_sae: int,
) -> list[dict[str, Any]]:
    """One Neuronpedia ``Explanation`` per label of ``labels.json``, in feature order."""
    if label_doc is None:
        return []
    out = []
    entries = sorted(label_doc.get("features") or [], key=lambda e: int(e["feature"]))
    for e in entries:
        f = int(e["feature"])
        if not 0 <= f < d_sae:
            raise InputError(f"labels.json: feature {f} is outside the SAE's 0..{d_sae - 1}")
        det, fz = detection.get(f, {}), fuzzing.get(f, {})
        out.append({
            "id": _record_id(src.model_id, src.layer, f, "label"), "modelId": src.model_id,
            "layer": src.layer, "index": str(f), "description": str(e["label"]), "authorId": src.creator_id,
            # typeName must name an ExplanationType row of the receiving instance; we have none
            "typeName": None, "explanationModelName": label_doc.get("model"),
            "notes": str(e.get("description") or "") or None,
            "vislens": {"template": label_doc.get("template"), "n_images": e.get("n_images"),
                        "balanced_accuracy": _num(det.get("balanced_accuracy")), "auc": _num(det.get("auc")),
                        "fuzzing_balanced_accuracy": _num(fz.get("balanced_accuracy")),
                        "fuzzing_auc": _num(fz.get("auc"))}})  # fmt: skip
    return out


def _optional_table(path: Path) -> dict[int, dict[str, Any]]:
    """A per-feature Parquet table as ``feature → row``; empty when the file is absent."""
    if not path.is_file():
        return {}
    df = pd.read_parquet(path)
    if "feature" not in df.columns:
        raise InputError(f"{path}: no column 'feature'")
    return {int(r["feature"]): {str(k): v for k, v in r.items()} for r in df.to_dict("records")}


def _optional_labels(path: Path) -> dict[str, Any] | None:
    """``labels.json`` (docs/formats/judge-labels.md) when it exists; a newer schema is refused."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(version, int) or not isinstance(doc.get("features"), list):
        raise InputError(
            f"{path}: not a vislens labels file (needs 'schema_version' and 'features')"
        )
    if version > LABELS_SCHEMA_VERSION:
        raise InputError(
            f"{path}: schema_version {version} is newer than this vislens reads; upgrade vislens"
        )
    return doc


def _decoder_rows(study: Study, name: str) -> np.ndarray:
    from vislens.sae.runs import load_study_sae

    sae = load_study_sae(study, name)
    return sae.W_dec.detach().float().numpy()
