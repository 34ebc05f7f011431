"""Study-level SAE steps behind the ``vislens sae`` commands (each one call from a notebook).

Everything for SAE ``name`` lives in ``study.sae_dir(name)``: the checkpoint (SAELens
format), ``codes/``, ``topk.parquet``, ``scores.parquet`` and friends, ``metrics.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vislens.errors import ConfigError, InputError
from vislens.io import write_json_atomic
from vislens.sae.base import BaseSAE
from vislens.sae.formats import load_sae, save_saelens
from vislens.sae.formats.saelens import is_saelens_dir
from vislens.sae.metrics import SAEMetrics
from vislens.store.codes import CodesStore, Reduce
from vislens.study import Study

if TYPE_CHECKING:
    from vislens.sae.downstream import DownstreamLoss

CODES_DIR = "codes"


def sae_name(study: Study, name: str | None, sae_ref: str | None = None) -> str:
    """The SAE folder to use: ``name``, else study.toml's ``sae.default``, else derived from ``sae_ref``."""
    if name:
        return name
    if study.config.sae.default:
        return study.config.sae.default
    if sae_ref:
        return Path(str(sae_ref).rstrip("/")).name or "sae"
    raise ConfigError(f"{study.config_path}: no SAE named — pass --name, or set key 'sae.default'")


def _reduce(study: Study, reduce: str | None) -> Reduce | None:
    r = reduce or study.config.sae.reduce
    return None if r == "auto" else r  # type: ignore[return-value]


def load_study_sae(study: Study, name: str) -> BaseSAE:
    path = study.sae_dir(name)
    if not is_saelens_dir(path):
        raise InputError(
            f"{path}: no SAE checkpoint here — run `vislens sae encode STUDY --sae PATH_OR_ID --name {name}`"
        )
    return load_sae(path, format="saelens")


def import_sae(study: Study, sae_ref: str, name: str) -> BaseSAE:
    """Load an SAE from any format and keep a SAELens-format copy in the study."""
    sae = load_sae(sae_ref)
    save_saelens(sae, study.sae_dir(name))
    return sae


def encode_study(
    study: Study,
    *,
    sae_ref: str | None = None,
    name: str | None = None,
    layer: int | None = None,
    tokens: str = "auto",
    from_images: bool = False,
    overwrite: bool = False,
    allow_layer_mismatch: bool = False,
) -> CodesStore:
    """Encode the study's stored activations (extracting them first with ``from_images``)."""
    from vislens.sae.encode import encode_store
    from vislens.store.activations import ActivationStore

    name = sae_name(study, name, sae_ref)
    sae = import_sae(study, sae_ref, name) if sae_ref else load_study_sae(study, name)
    if from_images:
        from vislens.store.extract import extract

        want = layer if layer is not None else sae.spec.hook_layer
        extract(study, layers=[want] if want is not None else None, tokens="all")
    store = ActivationStore.open(study.activations_dir)
    return encode_store(
        sae, store, study.sae_dir(name) / CODES_DIR, layer=layer, tokens=tokens,  # type: ignore[arg-type]
        sae_name=name, overwrite=overwrite, allow_layer_mismatch=allow_layer_mismatch,
    )  # fmt: skip


def open_codes(study: Study, name: str | None) -> CodesStore:
    return CodesStore.open(study.sae_dir(sae_name(study, name)) / CODES_DIR)


def topk_study(
    study: Study, *, name: str | None = None, k: int | None = None, reduce: str | None = None
) -> Path:
    """Write ``topk.parquet`` (top-k items of every feature) and return its path."""
    from vislens.sae.top_items import TOPK_FILE, top_items, write_top_items

    codes = open_codes(study, name)
    k = k or study.config.sae.top_k
    red = _reduce(study, reduce) or codes.info.default_reduce()
    df = top_items(codes, k, red)
    return write_top_items(df, codes.dir.parent / TOPK_FILE, k=k, reduce=red)


def read_embeddings_file(path: Path, item_ids: list[str]) -> np.ndarray:
    """Embeddings from Parquet (``item_id`` + list column ``embedding``), rows in ``item_ids`` order."""
    df = pd.read_parquet(path)
    if "item_id" not in df.columns or "embedding" not in df.columns:
        raise InputError(
            f"{path}: needs columns 'item_id' and 'embedding' (found {list(df.columns)})"
        )
    by_id = dict(zip(df["item_id"].astype(str), df["embedding"], strict=True))
    missing = [i for i in item_ids if i not in by_id]
    if missing:
        raise InputError(f"{path}: no embedding for {len(missing)} item(s), first '{missing[0]}'")
    return np.stack([np.asarray(by_id[i], dtype=np.float64) for i in item_ids])


def score_study(
    study: Study,
    *,
    name: str | None = None,
    ratings_path: Path | None = None,
    embeddings_path: Path | None = None,
    embedder: str | None = None,
    no_ms: bool = False,
    top_n: int | None = None,
    alpha: float | None = None,
    spearman: bool = False,
    calibrated_tiers: bool = False,
    thresholds: dict[str, float] | None = None,
    reduce: str | None = None,
) -> list[Path]:
    """MS (full-set and top-N), correlations with ratings + BH, tiers → scores.parquet etc."""
    from vislens.analysis.correlation import read_ratings
    from vislens.analysis.tiers import TierThresholds
    from vislens.models.embeddings import VisionEncoderEmbeddings, embedding_matrix
    from vislens.sae.scoring import score_features, write_scores
    from vislens.sae.top_items import TOPK_FILE

    codes = open_codes(study, name)
    out_dir = codes.dir.parent
    cfg = study.config.sae
    if not (out_dir / TOPK_FILE).is_file():
        topk_study(study, name=name, reduce=reduce)
    top = pd.read_parquet(out_dir / TOPK_FILE)
    emb = None
    if not no_ms:
        if embeddings_path is not None:
            emb = read_embeddings_file(embeddings_path, codes.item_ids)
        else:
            emb = embedding_matrix(
                VisionEncoderEmbeddings(study.root, embedder or cfg.embedder), codes.item_ids
            )
    ratings = read_ratings(ratings_path, codes.item_ids) if ratings_path is not None else None
    th = TierThresholds(**(thresholds or {}))  # type: ignore[arg-type]
    result = score_features(
        codes, embeddings=emb, ratings=ratings, top_items=top, reduce=_reduce(study, reduce),
        top_n=top_n or cfg.top_n, alpha=alpha or cfg.alpha, spearman=spearman, thresholds=th,
        calibrated_thresholds=calibrated_tiers,
    )  # fmt: skip
    settings = {"ratings": str(ratings_path or ""), "embedder": "" if no_ms else str(embeddings_path or embedder or cfg.embedder),
                "top_n": top_n or cfg.top_n, "alpha": alpha or cfg.alpha, "calibrated_tiers": calibrated_tiers}  # fmt: skip
    return write_scores(result, out_dir, settings=settings)


def train_study(
    study: Study,
    *,
    name: str,
    layer: int | None = None,
    tokens: str = "all",
    resume: bool = True,
    buffer_shards: int = 8,
    stop_after: int | None = None,
    **train_kwargs: object,
) -> tuple[BaseSAE, SAEMetrics]:
    """Train an SAE on the study's stored activations, streamed shard by shard through a
    shuffle buffer; saved to ``sae/<name>/`` (SAELens format), resumable."""
    from vislens.sae.encode import plan_tokens
    from vislens.sae.registry import build_sae
    from vislens.sae.spec import SAESpec
    from vislens.sae.stream import ShardStream
    from vislens.sae.train import TrainConfig, train_sae
    from vislens.store.activations import ActivationStore

    store = ActivationStore.open(study.activations_dir)
    layer = layer if layer is not None else store.layers[-1]
    if layer not in store.layers:
        raise InputError(f"{store.root}: layer {layer} was not extracted (stored: {store.layers})")
    probe = build_sae(
        SAESpec(d_in=store.info.d_model, d_sae=1, token_scope="cls" if tokens == "cls" else "all")
    )
    plan = plan_tokens(store, probe, tokens)  # type: ignore[arg-type]
    cfg = TrainConfig(**train_kwargs)  # type: ignore[arg-type]
    source = ShardStream(store, layer, start=plan.start, stop=plan.stop, batch_size=cfg.batch_size,
                         seed=cfg.seed, buffer_shards=buffer_shards)  # fmt: skip
    scope = "cls" if plan.tokens == "cls" else ("patches" if plan.tokens == "patches" else "all")
    return train_sae(
        source, study.sae_dir(name), cfg, hook_layer=layer, model_name=store.info.model,
        token_scope=scope, resume=resume, stop_after=stop_after,
    )  # fmt: skip


def eval_study(
    study: Study, *, name: str | None = None, layer: int | None = None, tokens: str = "auto"
) -> SAEMetrics:
    """Explained variance, MSE, L0 and dead fraction of the study's SAE on its stored activations."""
    import torch

    from vislens.sae.encode import plan_tokens
    from vislens.sae.metrics import MetricsAccumulator
    from vislens.store.activations import ActivationStore

    name = sae_name(study, name)
    sae = load_study_sae(study, name)
    store = ActivationStore.open(study.activations_dir)
    layer = (
        layer
        if layer is not None
        else (sae.spec.hook_layer if sae.spec.hook_layer in store.layers else store.layers[-1])
    )
    plan = plan_tokens(store, sae, tokens)  # type: ignore[arg-type]
    acc = MetricsAccumulator(sae.d_sae)
    for _, acts in store.iter_shards(layer):
        a = acts[:, None, :] if acts.dim() == 2 else acts
        x = a[:, plan.start : plan.stop].reshape(-1, a.shape[-1]).float()
        with torch.no_grad():
            x_hat, codes = sae(x)
        acc.add(x, x_hat, codes)
    metrics = acc.result()
    write_json_atomic(study.sae_dir(name) / "metrics.json", metrics.as_dict() | {"layer": layer})
    from vislens.sae.evaluation import EVAL_DIR, write_eval_report

    write_eval_report(metrics, acc.frequencies().numpy(), study.sae_dir(name) / EVAL_DIR,
                      context={"sae": name, "layer": layer, "tokens": plan.tokens, "site": "vision"})  # fmt: skip
    return metrics


def eval_llm_study(
    study: Study,
    *,
    name: str | None = None,
    layer: int | None = None,
    n_images: int = 32,
    prompt: str = "describe the image.",
    text_column: str = "caption",
    batch_size: int = 8,
) -> tuple[SAEMetrics, DownstreamLoss]:
    """Evaluate an SAE trained on the study VLM's LLM side at visual layer ``layer`` (the
    SAE's hook layer by default): reconstruction metrics on the hidden states at the image
    positions of the first ``n_images`` images, and the next-token loss on their
    ``text_column`` text after ``prompt`` with the reconstruction spliced in
    (:mod:`vislens.sae.downstream`). Writes metrics.json and eval/ like :func:`eval_study`."""
    from vislens.data.sources import load_image
    from vislens.data.table import read_records
    from vislens.lens.run import load_study_vlm
    from vislens.sae.downstream import downstream_loss
    from vislens.sae.evaluation import EVAL_DIR, write_eval_report

    name = sae_name(study, name)
    sae = load_study_sae(study, name)
    layer = layer if layer is not None else sae.spec.hook_layer
    if layer is None:
        raise InputError(f"{study.sae_dir(name)}: the SAE records no hook layer; pass --layer")
    if n_images < 1:
        raise InputError(f"--n-images must be at least 1 (got {n_images})")
    records = read_records(study.images_path)[:n_images]
    missing = [r.item_id for r in records if not str(r.metadata.get(text_column) or "").strip()]
    if missing:
        raise InputError(
            f"{study.images_path}: column '{text_column}' is missing or empty for item "
            f"'{missing[0]}'; name a column with a caption per image (--text-column)"
        )
    vlm = load_study_vlm(study)
    images = [load_image(r) for r in records]
    texts = [str(r.metadata[text_column]) for r in records]
    loss, acc = downstream_loss(
        vlm, sae, layer, images, texts, prompt=prompt, batch_size=batch_size
    )
    metrics = acc.result()
    context = {"sae": name, "layer": layer, "tokens": "image", "site": "llm", "model": vlm.name,
               "downstream": loss.report(prompt=prompt, text_column=text_column)}  # fmt: skip
    write_json_atomic(study.sae_dir(name) / "metrics.json", metrics.as_dict() | {"layer": layer})
    write_eval_report(
        metrics, acc.frequencies().numpy(), study.sae_dir(name) / EVAL_DIR, context=context
    )
    return metrics, loss
