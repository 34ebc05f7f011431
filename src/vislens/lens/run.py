"""The lens stage on a study: bank, neighbours of every visual token, exports, alignment.

``STUDY/lens/`` after ``build_study_bank`` and ``run_neighbors``::

    bank/                                 the contextual bank (lens-bank.md)
    neighbors.parquet                     every neighbour of every method (lens-neighbors.md)
    neighbors_by_layer.parquet            LatentLens top-k within each contextual layer
    contextual_nearest_neighbors/ logit_lens/ nearest_neighbors/   LatentLens' JSON layouts
    layer_alignment.csv  layer_alignment.png
    run.json                              what was run (lens-run.md)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vislens.engine.ray_data import RayOptions
from vislens.errors import ConfigError, InputError
from vislens.io import atomic_path, write_json_atomic
from vislens.lens.alignment import alignment_matrix, layer_alignment
from vislens.lens.bank import Bank, BankResult, build_bank
from vislens.lens.corpus import read_corpus
from vislens.lens.exports import write_exports
from vislens.lens.figures import alignment_heatmap
from vislens.lens.neighbors import METHODS, LensRunner, SearchSettings
from vislens.lens.sampling import SamplingRules
from vislens.lens.textmodel import BankModel
from vislens.lens.visual import check_visual_layers, default_visual_layers, visual_tokens
from vislens.models.text import TextLM
from vislens.models.toy.paths import is_toy_name
from vislens.models.vlm.base import VLMAdapter

if TYPE_CHECKING:  # study.py imports lens.config: a runtime import here would loop
    from vislens.study import Study

RUN_KEYS = (
    "schema_version", "model", "bank", "visual_layers", "contextual_layers", "top_k", "index",
    "n_images", "n_rows", "seconds", "recall_at_k", "files",
)  # fmt: skip


def bank_dir(study: Study) -> Path:
    return study.lens_dir / "bank"


def _device(study: Study) -> str:
    import torch

    dev = study.config.model.device
    if dev == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return dev


def lens_model_name(study: Study) -> str:
    """The VLM the lens stage reads: ``[lens] model``, else ``[model] name_or_path``."""
    return study.config.lens.model or study.config.model.name_or_path


def load_study_vlm(study: Study, name: str | None = None) -> VLMAdapter:
    """The study's VLM (or the VLM ``name``) in its adapter (``toy``: the shipped toy VLM)."""
    from vislens.models.vlm import load_vlm

    name = name or study.config.model.name_or_path
    if not name:
        raise ConfigError(
            f"{study.config_path}: key 'model.name_or_path' is empty — name a VLM directory, hub id or 'toy'"
        )
    if is_toy_name(name):
        from vislens.models.toy import load_toy_vlm

        return load_toy_vlm(name, device=_device(study))
    local = study.resolve(name)
    return load_vlm(
        str(local) if local.is_dir() else name,
        device=_device(study),
        dtype=study.config.model.dtype,
    )


def default_corpus(study: Study) -> Path | None:
    """``[lens] corpus``, else the grid world's captions.jsonl beside its annotations."""
    if study.config.lens.corpus:
        return study.resolve(study.config.lens.corpus)
    src = study.config.images.source
    if src:
        cap = study.resolve(src) / "captions.jsonl"
        if cap.is_file():
            return cap
    return None


def load_lens_vlm(study: Study) -> VLMAdapter:
    """The VLM the lens stage reads (``lens_model_name``) in its adapter."""
    return load_study_vlm(study, lens_model_name(study))


def _model_ref(study: Study, text_model: str | None) -> str:
    """How a Ray actor loads the bank's LM: ``load_bank_model``'s argument."""
    name = text_model or lens_model_name(study)
    if not name or is_toy_name(name):
        return name
    local = study.resolve(name)
    return str(local) if local.is_dir() else name


def build_study_bank(
    study: Study,
    corpus: Path | None = None,
    *,
    layers: list[int] | None = None,
    max_per_token: int | None = None,
    dtype: str | None = None,
    text_model: str | None = None,
    overwrite: bool = False,
    vlm: VLMAdapter | None = None,
    progress: bool = True,
    engine: str = "local",
    ray: RayOptions | None = None,
    model: str | None = None,
) -> BankResult:
    """Build ``lens/bank`` from ``corpus`` with the lens VLM's LLM (``[lens] model``, else the
    study's; or ``text_model``). Overrides (``model`` included) are saved to study.toml's
    ``[lens]`` so it says what was run. ``engine="ray"`` encodes the caption batches in Ray
    Data actors (docs/scale.md)."""
    cfg = study.config.lens
    corpus = Path(corpus) if corpus is not None else default_corpus(study)
    if corpus is None:
        raise ConfigError(
            f"{study.config_path}: no corpus — pass --corpus FILE or set [lens] corpus"
        )
    captions = read_corpus(corpus)
    updates: dict[str, Any] = {"corpus": str(corpus)}
    if model is not None:
        updates["model"] = model
    if layers:
        updates["contextual_layers"] = list(layers)
    if max_per_token is not None:
        updates["max_per_token"] = max_per_token
    if dtype is not None:
        updates["dtype"] = dtype
    cfg = type(cfg).model_validate({**cfg.model_dump(), **updates})
    study.config = study.config.model_copy(update={"lens": cfg})
    if text_model is not None:
        from vislens.lens.textmodel import load_bank_model

        lm = load_bank_model(text_model, device=_device(study))
    else:
        lm = BankModel.from_text_lm(TextLM.from_vlm(vlm or load_lens_vlm(study)))
    rules = SamplingRules(cfg.max_per_token, cfg.skip_positions, cfg.prefer_from, cfg.seed)
    result = build_bank(
        captions, bank_dir(study), lm, layers=cfg.contextual_layers or None, rules=rules,
        dtype=cfg.dtype, batch_size=cfg.batch_size, shard_captions=cfg.shard_captions,
        overwrite=overwrite, progress=progress,
        engine=engine, ray=ray, model_ref=_model_ref(study, text_model),
    )  # fmt: skip
    study.save()
    return result


@dataclass(frozen=True)
class NeighborsResult:
    lens_dir: Path
    n_images: int
    n_rows: int
    seconds: float
    files: list[Path]
    recall_at_k: dict[int, float]


def _faiss_searchers(
    bank: Bank, settings: SearchSettings, kind: str, probe: Any
) -> tuple[dict[int, Any], dict[int, float]]:
    """FAISS search per layer; recall@k against the exact scan on ``probe`` queries."""
    from vislens.lens.faiss_index import build_index, recall_at_k
    from vislens.lens.neighbors import bank_searchers

    exact = bank_searchers(bank, settings)
    out, recall = {}, {}
    for layer in bank.layers:
        index = build_index(bank.layer_matrix(layer), kind, seed=0)

        def search(q: Any, index: Any = index) -> Any:
            return index.search(q, settings.top_k)

        out[layer] = search
        if kind != "flat":
            recall[layer] = recall_at_k(search(probe)[1], exact[layer](probe)[1])
    return out, recall


def run_neighbors(
    study: Study,
    *,
    visual_layers: list[int] | None = None,
    top_k: int | None = None,
    index: str | None = None,
    methods: tuple[str, ...] = METHODS,
    batch_size: int = 8,
    limit: int | None = None,
    vlm: VLMAdapter | None = None,
    progress: bool = True,
) -> NeighborsResult:
    """Visual tokens of the study's images at ``visual_layers``, their LatentLens neighbours
    in the study's bank and the two baselines; writes every export into ``lens/``."""
    from vislens.progress import make_progress
    from vislens.store.extract import ensure_image_table

    cfg = study.config.lens
    updates: dict[str, Any] = {}
    if visual_layers:
        updates["visual_layers"] = list(visual_layers)
    if top_k is not None:
        updates["top_k"] = top_k
    if index is not None:
        updates["index"] = index
    cfg = type(cfg).model_validate({**cfg.model_dump(), **updates})
    bank = Bank(bank_dir(study))
    vlm = vlm or load_lens_vlm(study)
    lm = TextLM.from_vlm(vlm)
    bank.check_model(vlm.name, BankModel.from_text_lm(lm).fingerprint())
    layers = check_visual_layers(vlm, cfg.visual_layers or default_visual_layers(vlm.n_layers))
    records = ensure_image_table(study)[:limit]
    if not records:
        raise InputError(f"{study.images_path}: the study has no images")
    settings = SearchSettings(cfg.top_k, cfg.chunk_rows, cfg.query_chunk, _device(study))
    t0 = time.perf_counter()
    searchers = None
    recall: dict[int, float] = {}
    if cfg.index != "scan" and "latentlens" in methods:
        first = next(visual_tokens(vlm, records[:1], [layers[-1]], prompt=cfg.prompt))
        probe = first.hidden[layers[-1]].reshape(-1, first.hidden[layers[-1]].shape[-1])
        searchers, recall = _faiss_searchers(bank, settings, cfg.index, probe)
        for layer, r in recall.items():
            print(
                f"FAISS {cfg.index}: recall@{cfg.top_k} against the exact scan, layer {layer}: {r:.3f}"
            )
    runner = LensRunner(lm, bank, settings, searchers=searchers, methods=methods)
    with make_progress(disable=None if progress else True) as bar:
        task = bar.add_task("lens neighbors", total=len(records))
        for batch in visual_tokens(vlm, records, layers, prompt=cfg.prompt, batch_size=batch_size):
            runner.run(batch, [records[i].item_id for i in batch.image_idx])
            bar.advance(task, len(batch.image_idx))
    table, by_layer = runner.tables()
    seconds = time.perf_counter() - t0
    lens = study.lens_dir
    files = [lens / "neighbors.parquet", lens / "neighbors_by_layer.parquet"]
    for df, path in zip((table, by_layer), files, strict=True):
        with atomic_path(path) as tmp:
            df.to_parquet(tmp, index=False)
    captions = {i: str(r.metadata.get("caption", "") or "") for i, r in enumerate(records)}
    splits = {str(r.metadata.get("split", "") or "") for r in records}
    files += write_exports(
        table, lens, checkpoint=vlm.name, contextual_dir=str(bank.root),
        contextual_layers=bank.layers, captions=captions, d_model=int(lm.input_embeddings().shape[1]),
        top_k=cfg.top_k, split=splits.pop() if len(splits) == 1 and "" not in splits else "validation",
        seconds=seconds,
    )  # fmt: skip
    if "latentlens" in methods:
        align = layer_alignment(table)
        with atomic_path(lens / "layer_alignment.csv") as tmp:
            align.to_csv(tmp, index=False)
        files += [
            lens / "layer_alignment.csv",
            alignment_heatmap(alignment_matrix(align), lens / "layer_alignment.png"),
        ]
    study.config = study.config.model_copy(update={"lens": cfg})
    study.save()
    run = {
        "schema_version": 1, "model": vlm.name, "bank": str(bank.root), "visual_layers": layers,
        "contextual_layers": bank.layers, "top_k": cfg.top_k, "index": cfg.index,
        "n_images": len(records), "n_rows": len(table), "seconds": round(seconds, 3),
        "recall_at_k": {str(k): v for k, v in recall.items()},
        "files": [str(p.relative_to(lens)) for p in files],
    }  # fmt: skip
    write_json_atomic(lens / "run.json", run)
    return NeighborsResult(lens, len(records), len(table), seconds, files, recall)


def read_neighbors(study: Study, *, by_layer: bool = False) -> pd.DataFrame:
    path = study.lens_dir / ("neighbors_by_layer.parquet" if by_layer else "neighbors.parquet")
    if not path.is_file():
        raise InputError(
            f"{path}: no neighbours yet — run `vislens lens neighbors {study.root}` first"
        )
    return pd.read_parquet(path)


def sample_study(
    study: Study,
    *,
    n_images: int | None = None,
    n_patches: int | None = None,
    seed: int | None = None,
) -> dict[str, Path]:
    """The seeded human-study sample of ``lens/neighbors.parquet`` (see ``vislens.lens.sample``)."""
    from vislens.data.table import read_image_table
    from vislens.lens.sample import sample_instances

    cfg = study.config.lens
    table = read_neighbors(study)
    images = read_image_table(study.images_path)
    run = json.loads((study.lens_dir / "run.json").read_text(encoding="utf-8"))
    info = [
        {"source": r.get("source", ""), "caption": r.get("caption", "") or ""}
        for r in images.to_dict("records")
    ]
    return sample_instances(
        table, study.lens_dir, model=str(run.get("model", lens_model_name(study))),
        images=info, grid_rows=int(table["patch_row"].max()) + 1,
        n_images=n_images or cfg.n_images, n_patches=n_patches or cfg.n_patches,
        seed=cfg.seed if seed is None else seed,
    )  # fmt: skip


def rates_study(
    study: Study,
    *,
    source: str = "truth",
    threshold: float = 0.5,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[pd.DataFrame, list[Path]]:
    """Rates per method x visual layer into ``lens/rates_<source>.csv`` / ``.json`` / ``.png``.

    ``truth`` scores every patch against the grid world's annotations (no judge); ``judge``
    and ``human`` read verdicts beside the sample files."""
    from vislens.data.table import read_image_table
    from vislens.lens.figures import rates_figure
    from vislens.lens.rates import ground_truth_rates, interpretability_rates

    if source == "truth":
        rates = ground_truth_rates(
            read_neighbors(study), read_image_table(study.images_path),
            by_layer=read_neighbors(study, by_layer=True), n_resamples=n_resamples, seed=seed,
        )  # fmt: skip
        plot = rates[(rates["cells"] == "object") & (rates["contextual_layer"] == -1)]
        title = "Toy world: a top-k word names the cell's shape or colour"
    else:
        rates = interpretability_rates(
            study.lens_dir / "sample",
            source=source,
            threshold=threshold,
            n_resamples=n_resamples,
            seed=seed,
        )
        plot, title = rates, f"Interpretability rate ({source})"
    lens = study.lens_dir
    csv, js, png = (lens / f"rates_{source}.{ext}" for ext in ("csv", "json", "png"))
    with atomic_path(csv) as tmp:
        rates.to_csv(tmp, index=False)
    write_json_atomic(
        js, {"source": source, "threshold": threshold, "rates": rates.to_dict("records")}
    )
    rates_figure(plot, png, title=title)
    return rates, [csv, js, png]


def run_lens(
    study: Study,
    corpus: Path | None = None,
    *,
    sample: bool = True,
    truth: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Everything in one call on a study (bank if missing, neighbours, sample, ground-truth
    rates when the images are a grid world): what the demo runs on the toy."""
    vlm = load_lens_vlm(study)
    out: dict[str, Any] = {}
    if not (bank_dir(study) / "bank.json").is_file() or not _bank_done(study):
        out["bank"] = build_study_bank(study, corpus, vlm=vlm, progress=progress)
    out["neighbors"] = run_neighbors(study, vlm=vlm, progress=progress)
    if sample:
        out["sample"] = sample_study(study)
    if truth:
        from vislens.data.table import read_image_table

        if "objects" in read_image_table(study.images_path).columns:
            out["rates"] = rates_study(study, source="truth")[0]
    return out


def _bank_done(study: Study) -> bool:
    m = json.loads((bank_dir(study) / "bank.json").read_text(encoding="utf-8"))
    return len(m.get("complete", [])) == len(m.get("shards", []))
