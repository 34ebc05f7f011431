"""CLI commands of the judge stage: ``vislens label`` and ``vislens judge classify|latentlens|images``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from vislens.judge.cache import JudgeCache
    from vislens.judge.client import JudgeClient
    from vislens.judge.config import JudgeConfig

judge_app = typer.Typer(
    help="Ask an LLM/VLM judge (OpenAI-compatible endpoint or a local VLM); every answer is cached.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Judge model: endpoint model name, or a local VLM ('toy', hub id, directory).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1."),
]
StudyOpt = Annotated[
    Path | None,
    typer.Option("--study", help="Study directory: its judge settings and judge cache are used."),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", help="Requests in flight at once.")
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Judge cache file (default: the study's, else judge-cache.sqlite beside the output).",
    ),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Judge only the first N items.")]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", help="Most tokens per answer (part of the cache key).")
]

SHARED_OPTIONS: dict[str, Any] = {
    "model": ModelOpt,
    "limit": LimitOpt,
    "base_url": BaseUrlOpt,
    "study": StudyOpt,
    "concurrency": ConcurrencyOpt,
    "max_tokens": MaxTokensOpt,
    "cache": CacheOpt,
}
"""The options every judge command takes, defined once; ``judge_options`` adds them."""


@dataclass(frozen=True)
class JudgeFlags:
    """The shared options of one judge command, as the user gave them (None = not given)."""

    model: str | None = None
    limit: int | None = None
    base_url: str | None = None
    study: Path | None = None
    concurrency: int | None = None
    max_tokens: int | None = None
    cache: Path | None = None

    def setup(
        self, default_cache_path: Path, *, study: Path | None = None
    ) -> tuple[JudgeConfig, JudgeClient, JudgeCache]:
        """Config, client and cache (``study`` stands in for ``--study`` where the study is
        the command's argument). Call it only once the command's input has been read, so a
        bad input fails before any model loads or any cache file is created."""
        return judge_setup(
            study=study if study is not None else self.study,
            model=self.model,
            base_url=self.base_url,
            concurrency=self.concurrency,
            max_tokens=self.max_tokens,
            cache_path=self.cache,
            default_cache_path=default_cache_path,
        )


def judge_options(
    *, study_option: bool = True
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared judge options: its function takes ``flags: JudgeFlags``
    instead of one parameter per option; the CLI still shows each option (``--model``,
    ``--base-url``, ...) after the command's own. ``study_option=False`` leaves out
    ``--study`` (for commands whose argument is the study)."""

    def decorate(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "flags"]
        names = [n for n in SHARED_OPTIONS if study_option or n != "study"]
        shared = [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, annotation=SHARED_OPTIONS[n], default=None
            )
            for n in names
        ]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> None:
            flags = JudgeFlags(**{n: kwargs.pop(n) for n in names})
            fn(**kwargs, flags=flags)

        command.__signature__ = sig.replace(parameters=[*own, *shared])  # type: ignore[attr-defined]
        return command

    return decorate


def judge_setup(
    *,
    study: Path | None,
    model: str | None,
    base_url: str | None,
    concurrency: int | None,
    cache_path: Path | None,
    default_cache_path: Path,
    max_tokens: int | None = None,
    backend: str | None = None,
) -> tuple[JudgeConfig, JudgeClient, JudgeCache]:
    """Config (study.toml's [judge], then the flags), the client and the cache for one command."""
    from vislens.judge.backends import open_cache, open_client
    from vislens.judge.config import JudgeConfig

    cfg = JudgeConfig()
    if study is not None:
        from vislens.study import Study

        s = Study.open(study)
        cfg = s.config.judge
        default_cache_path = s.judge_cache_path
    updates: dict[str, Any] = {
        k: v
        for k, v in {
            "model": model,
            "base_url": base_url,
            "concurrency": concurrency,
            "backend": backend,
            "max_tokens": max_tokens,
        }.items()
        if v is not None
    }
    cfg = JudgeConfig.model_validate({**cfg.model_dump(), **updates})
    client = open_client(cfg)
    return cfg, client, open_cache(cache_path or default_cache_path)


def _int_list(text: str, flag: str) -> list[int]:
    from vislens.errors import InputError

    try:
        return [int(f) for f in text.split(",") if f.strip()]
    except ValueError:
        raise InputError(f"{flag} takes comma-separated integers, got {text!r}") from None


def summary_path(out: Path) -> Path:
    from vislens.judge.tasks.common import summary_path as path_of

    return path_of(out)


def _report(summary_line: str, *paths: Path | None) -> None:
    for p in paths:
        if p is not None:
            typer.echo(f"wrote {p}")
    typer.echo(summary_line)


@judge_app.command("classify")
@judge_options()
def classify_cmd(
    export: Annotated[Path, typer.Argument(help="Neuronpedia explanations export (.json).")],
    category: Annotated[
        str, typer.Option("--category", help="'alignment', 'formatting', or any topic in words.")
    ] = "alignment",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output JSON (default: <export>_<category>_classified_<model>.json beside it).",
        ),
    ] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="Classify a seeded random sample of N.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of --sample (seed 002 uses 42).")] = 42,
    *,
    flags: JudgeFlags,
) -> None:
    """Label each feature description related / not-related to a category (seed 002's JSON)."""
    from vislens.judge.neuronpedia import load_explanations
    from vislens.judge.tasks.classify import classify_descriptions, default_out_path

    explanations = load_explanations(export)
    cfg, client, judge_cache = flags.setup(Path(export).parent / "judge-cache.sqlite")
    out = out or default_out_path(export, category, client.model)
    res = classify_descriptions(
        export, category, client=client, cfg=cfg, cache=judge_cache, out_path=out,
        sample=sample, seed=seed, limit=flags.limit, explanations=explanations,
    )  # fmt: skip
    judge_cache.close()
    _report(res.summary.line(), out, summary_path(out))


@judge_app.command("latentlens")
@judge_options()
def latentlens_cmd(
    instances: Annotated[
        Path, typer.Argument(help="LatentLens instances JSON ({'instances': [...]} or a list).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Output (default: llm_judge_results/human_study_llm_results.json beside the input).",
        ),
    ] = None,
    grid: Annotated[
        int, typer.Option("--grid", help="Patches per side of the 512-px canvas (LatentLens: 24).")
    ] = 24,
    image_dir: Annotated[
        Path | None,
        typer.Option(
            "--image-dir",
            help="Folder holding the instances' images (by URL file name or image_idx).",
        ),
    ] = None,
    *,
    flags: JudgeFlags,
) -> None:
    """Judge whether each patch's nearest words describe it (LatentLens' judge and output layout)."""
    from vislens.judge.tasks.latentlens import judge_latentlens, load_instances

    load_instances(instances)
    out = out or Path(instances).parent / "llm_judge_results" / "human_study_llm_results.json"
    cfg, client, judge_cache = flags.setup(out.parent / "judge-cache.sqlite")
    _, summary = judge_latentlens(
        instances, client=client, grid=grid, image_dir=image_dir, cfg=cfg, cache=judge_cache,
        out_path=out, limit=flags.limit,
    )  # fmt: skip
    judge_cache.close()
    _report(summary.line(), out, summary_path(out))


@judge_app.command("images")
@judge_options()
def images_cmd(
    table: Annotated[
        Path,
        typer.Argument(help="Image table: metadata.csv (or .parquet) with file names and labels."),
    ],
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels", help="Comma-separated label set (default: the label column's values)."
        ),
    ] = None,
    image_dir: Annotated[
        Path | None,
        typer.Option("--image-dir", help="Folder of the images (default: beside the table)."),
    ] = None,
    label_column: Annotated[
        str, typer.Option("--label-column", help="Ground-truth label column.")
    ] = "ground_truth_word_label",
    file_column: Annotated[
        str, typer.Option("--file-column", help="Image file name column.")
    ] = "file_name",
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out-dir", help="Where mis_/correct_<model>.csv go (default: beside the table)."
        ),
    ] = None,
    *,
    flags: JudgeFlags,
) -> None:
    """Classify each image with a rationale; write seed 003's mis_/correct_<model>.csv."""
    from vislens.judge.tasks.images import classify_images, load_table

    load_table(table, file_column=file_column, label_column=label_column)
    out_dir = out_dir or Path(table).parent
    cfg, client, judge_cache = flags.setup(out_dir / "judge-cache.sqlite")
    label_list = [s.strip() for s in labels.split(",") if s.strip()] if labels else None
    res = classify_images(
        table, client=client, image_dir=image_dir, labels=label_list, label_column=label_column,
        file_column=file_column, cfg=cfg, cache=judge_cache, out_dir=out_dir, limit=flags.limit,
    )  # fmt: skip
    judge_cache.close()
    _report(res.summary.line(), res.mis_path, res.correct_path, res.summary_path)


@judge_options(study_option=False)
def label_cmd(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    sae: Annotated[str, typer.Option("--sae", help="SAE name under STUDY/sae/.")],
    tier: Annotated[
        int | None,
        typer.Option("--tier", help="Label only features of this selection tier (1, 2, 3)."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option("--features", help="Comma-separated feature indices (instead of a tier)."),
    ] = None,
    n_images: Annotated[
        int, typer.Option("--n-images", help="Top-activating images in each feature's grid.")
    ] = 9,
    rating_dim: Annotated[
        str | None,
        typer.Option(
            "--rating",
            help="Rating whose correlation goes into the prompt (default: the strongest).",
        ),
    ] = None,
    *,
    flags: JudgeFlags,
) -> None:
    """Label SAE features from grids of their top images (seed 001); writes sae/<name>/labels.json."""
    from vislens.judge.tasks.label import label_features
    from vislens.judge.tasks.sae_evidence import load_evidence
    from vislens.study import Study

    s = Study.open(study)
    feature_list = _int_list(features, "--features") if features else None
    evidence = load_evidence(
        s,
        sae,
        tier=tier,
        features=feature_list,
        n_images=n_images,
        rating_dim=rating_dim,
        limit=flags.limit,
    )
    cfg, client, judge_cache = flags.setup(s.judge_cache_path, study=study)
    out = s.sae_dir(sae) / "labels.json"
    _, summary = label_features(
        evidence, client=client, cfg=cfg, cache=judge_cache, out_path=out, sae=sae
    )
    judge_cache.close()
    _report(summary.line(), out, summary_path(out))


@judge_options(study_option=False)
def label_score_cmd(
    study: Annotated[Path, typer.Argument(help="Study directory.")],
    sae: Annotated[str, typer.Option("--sae", help="SAE name under STUDY/sae/.")],
    features: Annotated[
        str | None,
        typer.Option("--features", help="Comma-separated labelled features (default: all)."),
    ] = None,
    n_positive: Annotated[
        int, typer.Option("--n-positive", help="Held-out top-activating images per feature.")
    ] = 5,
    n_negative: Annotated[
        int, typer.Option("--n-negative", help="Non-activating images per feature (detection).")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the image sample.")] = 0,
    scorer: Annotated[
        str,
        typer.Option(
            "--scorer",
            help="detection: which images match the label (activating vs non-activating); "
            "fuzzing: whether a red box on the top patch or on a decoy patch of the same image "
            "matches it (needs patch codes).",
        ),
    ] = "detection",
    *,
    flags: JudgeFlags,
) -> None:
    """Score feature labels: the judge says which held-out activating and non-activating
    images (detection) or which boxed patches (fuzzing) match each label; writes
    sae/<name>/label_scores.parquet (fuzzing: label_scores_fuzzing.parquet)."""
    from vislens.errors import InputError
    from vislens.judge.tasks.label_fuzz import FUZZING, select_boxed_probes
    from vislens.judge.tasks.label_score import DETECTION, judge_probes, select_probes
    from vislens.study import Study

    if scorer not in ("detection", "fuzzing"):
        raise InputError(f"--scorer must be detection or fuzzing (got '{scorer}')")
    s = Study.open(study)
    feature_list = _int_list(features, "--features") if features else None
    if scorer == "fuzzing":
        probes = select_boxed_probes(
            s, sae, n_positive=n_positive, seed=seed, features=feature_list, limit=flags.limit
        )
    else:
        probes = select_probes(
            s, sae, n_positive=n_positive, n_negative=n_negative, seed=seed,
            features=feature_list, limit=flags.limit,
        )  # fmt: skip
    spec = FUZZING if scorer == "fuzzing" else DETECTION
    cfg, client, judge_cache = flags.setup(s.judge_cache_path, study=study)
    table, _, summary = judge_probes(
        s, sae, probes, spec, client=client, cfg=cfg, cache=judge_cache, seed=seed
    )
    judge_cache.close()
    out = s.sae_dir(sae) / spec.scores_file
    ba = table["balanced_accuracy"].mean()
    how = " by fuzzing" if scorer == "fuzzing" else ""
    typer.echo(f"{len(table)} features scored{how}, mean balanced accuracy {ba:.3f}")
    _report(summary.line(), out, summary_path(out))


@judge_app.command("cache")
def cache_cmd(
    path: Annotated[Path, typer.Argument(help="A judge-cache.sqlite, or a study directory.")],
) -> None:
    """What a judge cache holds: answers and tokens per model and task."""
    from vislens.errors import InputError
    from vislens.judge.cache import JudgeCache

    path = Path(path)
    if path.is_dir():
        path = path / "judge-cache.sqlite"
    if not path.is_file():
        raise InputError(f"{path}: no judge cache here")
    cache = JudgeCache(path)
    rows = cache.stats()
    cache.close()
    typer.echo(f"{path}: {sum(int(str(r['n_answers'])) for r in rows)} answers")
    for r in rows:
        typer.echo(
            f"  {r['model']}  {r['task'] or '-'}: {r['n_answers']} answers, "
            f"{r['prompt_tokens']}+{r['completion_tokens']} tokens, {r['first']} .. {r['last']}"
        )


class _LabelCommand(TyperCommand):
    """``vislens label``, which also answers ``vislens label score ...``: a first argument of
    exactly ``score`` hands the rest to ``label-score``, so ``vislens label STUDY`` keeps
    its meaning (a study directory named ``score`` is reached as ``./score``)."""

    def make_context(  # typer vendors click, so its Context type is left as Any here
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if args and args[0] == "score":
            score = typer.main.get_command(_score_app)
            return score.make_context(f"{info_name} score", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


_score_app = typer.Typer()
_score_app.command("label-score")(label_score_cmd)


def register(app: typer.Typer) -> None:
    """Add ``vislens judge ...``, ``vislens label`` (and ``label score``) and ``vislens label-score``."""
    app.add_typer(judge_app, name="judge")
    app.command(
        "label", cls=_LabelCommand, epilog="Score the labels: vislens label score STUDY --sae NAME."
    )(label_cmd)
    app.command("label-score")(label_score_cmd)
