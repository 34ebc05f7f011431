"""CLI commands of the sae stage: ``vislens sae encode | topk | score | train | eval | …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sae_app = typer.Typer(
    help="Sparse autoencoders: load (SAELens, ViT-Prisma, dictionary_learning), encode, top-k, score, train.",
    no_args_is_help=True,
)

StudyArg = Annotated[Path, typer.Argument(help="The study directory.")]
NameOpt = Annotated[
    str | None,
    typer.Option("--name", help="SAE folder under sae/ (default: study.toml's sae.default)."),
]
ReduceOpt = Annotated[
    str | None,
    typer.Option(
        help="Per-item value: cls, max or mean over patches (default: study.toml's sae.reduce)."
    ),
]


def _study(path: Path):  # -> Study
    from vislens.study import Study

    return Study.open(path)


@sae_app.command("info")
def info_command(
    sae: Annotated[str, typer.Argument(help="Checkpoint directory, weight file or hub id.")],
) -> None:
    """Print what a checkpoint says about itself (format, architecture, sizes, hook layer)."""
    import json

    from vislens.sae.formats import load_sae

    typer.echo(json.dumps(load_sae(sae).spec.to_dict(), indent=2, default=str))


@sae_app.command("convert")
def convert_command(
    sae: Annotated[
        str,
        typer.Argument(help="Checkpoint directory, weight file or hub id (any supported format)."),
    ],
    out: Annotated[
        Path, typer.Argument(help="Directory to write the SAELens-format checkpoint to.")
    ],
) -> None:
    """Convert a ViT-Prisma / dictionary_learning / SAELens checkpoint to SAELens format."""
    from vislens.sae.formats import load_sae, save_saelens

    typer.echo(f"wrote {save_saelens(load_sae(sae), out)}")


@sae_app.command("encode")
def encode_command(
    study: StudyArg,
    sae: Annotated[
        str | None,
        typer.Option(
            "--sae", help="Checkpoint directory, weight file or hub id; copied into sae/NAME/."
        ),
    ] = None,
    name: NameOpt = None,
    layer: Annotated[
        int | None, typer.Option(help="Stored layer to encode (default: the SAE's hook layer).")
    ] = None,
    tokens: Annotated[
        str,
        typer.Option(
            help="auto, cls, patches or all (auto: cls for CLS-only SAEs, else every stored token)."
        ),
    ] = "auto",
    from_images: Annotated[
        bool,
        typer.Option(
            "--from-images", help="Extract the SAE's layer from the study's images first."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing codes written with other settings.")
    ] = False,
    allow_layer_mismatch: Annotated[
        bool, typer.Option(help="Encode a layer other than the SAE's hook layer.")
    ] = False,
) -> None:
    """Encode stored activations into sparse codes (sae/NAME/codes/), resumably."""
    from vislens.sae.runs import encode_study

    codes = encode_study(
        _study(study), sae_ref=sae, name=name, layer=layer, tokens=tokens, from_images=from_images,
        overwrite=overwrite, allow_layer_mismatch=allow_layer_mismatch,
    )  # fmt: skip
    typer.echo(
        f"wrote codes for {codes.n_items} items × {codes.info.n_tokens} token(s) to {codes.dir}"
    )


@sae_app.command("topk")
def topk_command(
    study: StudyArg,
    name: NameOpt = None,
    k: Annotated[
        int | None, typer.Option("--k", help="Items per feature (default: study.toml's sae.top_k).")
    ] = None,
    reduce: ReduceOpt = None,
) -> None:
    """Top-k items of every feature in one streaming pass → sae/NAME/topk.parquet."""
    from vislens.sae.runs import topk_study

    typer.echo(f"wrote {topk_study(_study(study), name=name, k=k, reduce=reduce)}")


@sae_app.command("score")
def score_command(
    study: StudyArg,
    name: NameOpt = None,
    ratings: Annotated[
        Path | None, typer.Option(help="CSV: item_id + one numeric column per rating.")
    ] = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(
            help="Parquet (item_id, embedding) to score MS with, instead of running --embedder."
        ),
    ] = None,
    embedder: Annotated[
        str | None,
        typer.Option(help="Vision encoder for MS (default: study.toml's sae.embedder, DINOv2)."),
    ] = None,
    no_ms: Annotated[
        bool,
        typer.Option("--no-ms", help="Skip monosemanticity (correlations and tiers by r only)."),
    ] = False,
    top_n: Annotated[int | None, typer.Option(help="Items per feature for ms_topn.")] = None,
    alpha: Annotated[float | None, typer.Option(help="FDR level for Benjamini–Hochberg.")] = None,
    spearman: Annotated[
        bool, typer.Option(help="Also compute Spearman rho with its own q-values.")
    ] = False,
    calibrated_tiers: Annotated[
        bool, typer.Option(help="Use the data's mean+2σ / mean+1σ as MS tier thresholds.")
    ] = False,
    ms_high: Annotated[float, typer.Option(help="Tier 1 MS threshold.")] = 0.50,
    ms_low: Annotated[float, typer.Option(help="Tier 2 MS threshold.")] = 0.35,
    r_high: Annotated[float, typer.Option(help="Tier 1 |r| threshold.")] = 0.25,
    r_low: Annotated[float, typer.Option(help="Tier 2 |r| threshold.")] = 0.15,
    n_tier3: Annotated[int, typer.Option(help="Features in tier 3 (top remaining by MS).")] = 50,
    reduce: ReduceOpt = None,
) -> None:
    """MS, correlations with ratings (+ BH q-values) and tiers for every feature → scores.parquet."""
    from vislens.sae.runs import score_study

    paths = score_study(
        _study(study), name=name, ratings_path=ratings, embeddings_path=embeddings, embedder=embedder,
        no_ms=no_ms, top_n=top_n, alpha=alpha, spearman=spearman, calibrated_tiers=calibrated_tiers,
        thresholds={"ms_high": ms_high, "ms_low": ms_low, "r_high": r_high, "r_low": r_low, "n_tier3": n_tier3},
        reduce=reduce,
    )  # fmt: skip
    for p in paths:
        typer.echo(f"wrote {p}")


@sae_app.command("train")
def train_command(
    study: StudyArg,
    name: Annotated[str, typer.Option("--name", help="SAE folder under sae/ to write.")],
    layer: Annotated[
        int | None, typer.Option(help="Stored layer to train on (default: the last stored).")
    ] = None,
    tokens: Annotated[str, typer.Option(help="cls, patches or all stored tokens.")] = "all",
    architecture: Annotated[
        str,
        typer.Option(
            "--architecture",
            "--arch",
            help="topk, batchtopk (saved as jumprelu), jumprelu, standard (ReLU + L1) or matryoshka.",
        ),
    ] = "topk",
    d_sae: Annotated[int, typer.Option(help="Features (0: expansion-factor × d_in).")] = 0,
    expansion_factor: Annotated[
        int, typer.Option(help="d_sae = this × d_in when --d-sae is 0.")
    ] = 16,
    k: Annotated[
        int,
        typer.Option("--k", help="Active features per token (topk, matryoshka; batchtopk: mean)."),
    ] = 32,
    k_start: Annotated[int, typer.Option(help="Anneal k from this value (0: no annealing).")] = 0,
    k_anneal_steps: Annotated[int, typer.Option(help="Steps of k annealing.")] = 0,
    aux_k: Annotated[
        int, typer.Option("--aux-k", help="Dead latents in the AuxK loss (-1: d_in/2, 0: off).")
    ] = -1,
    aux_coefficient: Annotated[float, typer.Option(help="Weight of the AuxK loss.")] = 1 / 32,
    dead_window: Annotated[
        int, typer.Option(help="Steps without firing after which a latent is dead.")
    ] = 200,
    resample_dead: Annotated[
        bool, typer.Option(help="Re-initialise dead latents every --dead-window steps.")
    ] = False,
    l1_coefficient: Annotated[float, typer.Option("--l1", help="L1 weight (standard).")] = 1e-3,
    l0_coefficient: Annotated[float, typer.Option("--l0", help="L0 weight (jumprelu).")] = 1e-3,
    matryoshka_widths: Annotated[
        str, typer.Option(help="Comma-separated prefix sizes (matryoshka; default d_sae/8,/4,/2).")
    ] = "",
    lr: Annotated[float, typer.Option(help="Adam learning rate (peak).")] = 1e-3,
    warmup: Annotated[int, typer.Option(help="LR warmup steps.")] = 0,
    decay_fraction: Annotated[
        float, typer.Option(help="Final fraction of steps with linear LR decay to 0.")
    ] = 0.2,
    batch_size: Annotated[int, typer.Option(help="Tokens per step.")] = 1024,
    steps: Annotated[int, typer.Option(help="Total optimizer steps.")] = 2000,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 500,
    normalize: Annotated[
        str,
        typer.Option(
            help="Per-token input normalisation: none, layer_norm or constant_norm_rescale."
        ),
    ] = "none",
    scale: Annotated[
        bool,
        typer.Option(
            help="Scale to unit mean squared norm for training (folded into the saved weights)."
        ),
    ] = True,
    precision: Annotated[str, typer.Option(help="float32 or bf16 (autocast).")] = "float32",
    buffer_shards: Annotated[int, typer.Option(help="Activation shards per shuffle buffer.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and data order.")] = 0,
    resume: Annotated[
        bool, typer.Option(help="Continue from sae/NAME/checkpoint if present.")
    ] = True,
) -> None:
    """Train an SAE on stored activations (streamed); saved in SAELens format, resumable."""
    from vislens.errors import InputError
    from vislens.sae.objectives import TRAIN_ARCHITECTURES
    from vislens.sae.runs import train_study

    if architecture not in TRAIN_ARCHITECTURES:
        raise InputError(
            f"--architecture must be one of {', '.join(TRAIN_ARCHITECTURES)} (got '{architecture}')"
        )
    try:
        widths = tuple(int(w) for w in matryoshka_widths.split(",") if w.strip())
    except ValueError:
        raise InputError(
            f"--matryoshka-widths '{matryoshka_widths}': expected integers like 64,256"
        ) from None
    if precision not in ("float32", "bf16"):
        raise InputError(f"--precision must be float32 or bf16 (got '{precision}')")
    _, m = train_study(
        _study(study), name=name, layer=layer, tokens=tokens, resume=resume, buffer_shards=buffer_shards,
        architecture=architecture, d_sae=d_sae, expansion_factor=expansion_factor, k=k, k_start=k_start,
        k_anneal_steps=k_anneal_steps, aux_k=aux_k, aux_coefficient=aux_coefficient, dead_window=dead_window,
        resample_dead=resample_dead, l1_coefficient=l1_coefficient, l0_coefficient=l0_coefficient,
        matryoshka_widths=widths, lr=lr, lr_warmup_steps=warmup, lr_decay_fraction=decay_fraction,
        batch_size=batch_size, n_steps=steps, checkpoint_every=checkpoint_every,
        normalize_activations=normalize, scale_activations=scale, precision=precision, seed=seed,
    )  # fmt: skip
    typer.echo(
        f"explained variance {m.explained_variance:.4f}, MSE {m.mse:.4g}, L0 {m.l0:.1f}, dead {m.dead_fraction:.1%}"
    )


@sae_app.command("eval")
def eval_command(
    study: StudyArg,
    name: NameOpt = None,
    layer: Annotated[
        int | None,
        typer.Option(
            help="Stored layer, or the LLM's visual layer with --site llm (default: the SAE's hook layer)."
        ),
    ] = None,
    tokens: Annotated[str, typer.Option(help="auto, cls, patches or all.")] = "auto",
    site: Annotated[
        str,
        typer.Option(
            help="vision: the stored activations; llm: the study VLM's LLM at the image "
            "positions, with the downstream loss of the reconstruction spliced in."
        ),
    ] = "vision",
    n_images: Annotated[int, typer.Option(help="Images for --site llm.")] = 32,
    prompt: Annotated[
        str, typer.Option(help="Prompt before the scored text (--site llm).")
    ] = "describe the image.",
    text_column: Annotated[
        str, typer.Option(help="images.parquet column with the text to score (--site llm).")
    ] = "caption",
) -> None:
    """EV / FVU, MSE, L0, dead and dense fractions, reconstruction cosine, feature-frequency
    histogram → metrics.json, eval/eval.json, eval/feature_frequency.png; with --site llm also
    the clean, spliced and zero-ablation next-token losses and the fraction of loss recovered."""
    from vislens.sae.runs import eval_llm_study, eval_study

    if site not in ("vision", "llm"):
        raise typer.BadParameter(f"--site must be vision or llm (got {site!r})")
    if site == "llm":
        m, loss = eval_llm_study(_study(study), name=name, layer=layer, n_images=n_images,
                                 prompt=prompt, text_column=text_column)  # fmt: skip
    else:
        m = eval_study(_study(study), name=name, layer=layer, tokens=tokens)
    typer.echo(
        f"explained variance {m.explained_variance:.4f} (FVU {m.fvu:.4f}), MSE {m.mse:.4g}, L0 {m.l0:.1f}, "
        f"dead {m.dead_fraction:.1%}, dense {m.dense_fraction:.1%}, cosine {m.cosine:.4f}"
    )
    if site == "llm":
        typer.echo(
            f"next-token loss on {loss.n_tokens} text tokens: clean {loss.loss_clean:.4f}, spliced "
            f"{loss.loss_spliced:.4f}, zero {loss.loss_zero:.4f}; loss recovered {loss.loss_recovered:.3f}"
        )


@sae_app.command("heatmap")
def heatmap_command(
    study: StudyArg,
    feature: Annotated[int, typer.Option(help="Feature index.")],
    item: Annotated[
        list[str],
        typer.Option(help="Item id (repeat for several); default: the feature's top-k items."),
    ] = [],  # noqa: B006
    name: NameOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="Write a .json (or .npy) file instead of printing.")
    ] = None,
) -> None:
    """Per-patch (grid-shaped) activations of one feature on some items."""
    import json

    import numpy as np

    from vislens.io import atomic_path, write_json_atomic
    from vislens.sae.inspect import feature_heatmaps
    from vislens.sae.runs import open_codes

    codes = open_codes(_study(study), name)
    ids = list(item)
    if not ids:
        import pandas as pd

        top_path = codes.dir.parent / "topk.parquet"
        if not top_path.is_file():
            from vislens.errors import InputError

            raise InputError(f"{top_path}: missing — pass --item, or run `vislens sae topk` first")
        top = pd.read_parquet(top_path)
        ids = top[top["feature"] == feature].sort_values("rank")["item_id"].tolist()
        if not ids:
            from vislens.errors import InputError

            raise InputError(
                f"{top_path}: feature {feature} is active on no item; pass --item to see its (empty) map"
            )
    maps = feature_heatmaps(codes, [codes.item_index_of(i) for i in ids], feature)
    doc = {"feature": feature, "grid_h": codes.info.grid_h, "grid_w": codes.info.grid_w,
           "items": [{"item_id": i, "heatmap": m.tolist()} for i, m in zip(ids, maps, strict=True)]}  # fmt: skip
    if out is None:
        typer.echo(json.dumps(doc))
    elif out.suffix == ".npy":
        with atomic_path(out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, maps)
        typer.echo(f"wrote {out}")
    else:
        write_json_atomic(out, doc)
        typer.echo(f"wrote {out}")


@sae_app.command("export")
def export_command(
    study: StudyArg,
    item: Annotated[
        str | None, typer.Option(help="Item id (--format json: that item's codes).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", "--sae", help="SAE folder under sae/ (default: study.toml's sae.default)."
        ),
    ] = None,
    export_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="json: one item's codes; neuronpedia: every feature, its top images and labels "
            "as Neuronpedia export batches under --out (docs/formats/sae-neuronpedia.md).",
        ),
    ] = "json",
    top_n: Annotated[int, typer.Option(help="Top features listed per token (json).")] = 20,
    out: Annotated[
        Path | None,
        typer.Option(
            help="json: write the JSON here instead of printing it; neuronpedia: the folder."
        ),
    ] = None,
    model_id: Annotated[
        str | None, typer.Option(help="Neuronpedia modelId (default: from study.toml's model).")
    ] = None,
    source_set: Annotated[
        str | None, typer.Option(help="Neuronpedia source set name (default: the SAE's name).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Features (and explanations) per batch file (neuronpedia).")
    ] = 1024,
    creator_id: Annotated[
        str | None, typer.Option(help="Neuronpedia user id for creatorId / authorId.")
    ] = None,
    vectors: Annotated[
        bool, typer.Option(help="Include each feature's decoder row (neuronpedia).")
    ] = False,
    copy_images: Annotated[
        bool, typer.Option(help="Copy the top images into the export as PNG (neuronpedia).")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing export of this source (neuronpedia).")
    ] = False,
) -> None:
    """One item's codes as sparse JSON (seed 001's SAEFeatureResult shape, plus per-patch
    records), or with --format neuronpedia the whole SAE in Neuronpedia's export layout."""
    import json

    from vislens.errors import InputError
    from vislens.io import write_json_atomic

    if export_format == "neuronpedia":
        from vislens.sae.export_neuronpedia import export_neuronpedia

        if out is None:
            raise InputError("--format neuronpedia needs --out DIR")
        if item is not None:
            raise InputError(
                "--item is for --format json; --format neuronpedia exports every feature"
            )
        res = export_neuronpedia(
            _study(study), name, out, model_id=model_id, source_set=source_set, batch_size=batch_size,
            creator_id=creator_id, vectors=vectors, copy_images=copy_images, overwrite=overwrite,
        )  # fmt: skip
        typer.echo(
            f"wrote {res.n_features} features, {res.n_activations} top images and "
            f"{res.n_explanations} explanations to {res.dir}"
        )
        return
    if export_format != "json":
        raise InputError(f"--format must be json or neuronpedia (got '{export_format}')")
    if item is None:
        raise InputError("--format json needs --item ITEM_ID")
    from vislens.sae.inspect import export_item
    from vislens.sae.runs import open_codes

    doc = export_item(open_codes(_study(study), name), item, top_n=top_n)
    if out is None:
        typer.echo(json.dumps(doc))
    else:
        write_json_atomic(out, doc)
        typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add ``vislens sae …`` to the vislens app."""
    app.add_typer(sae_app, name="sae")
