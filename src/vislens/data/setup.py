"""Creating a study from the command line's pieces: images, model, layers, tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from vislens.errors import ConfigError, InputError
from vislens.store.config import ExtractConfig
from vislens.study import Study, StudyConfig


def parse_layers(text: str) -> list[int]:
    """``'7,8,11'`` → ``[7, 8, 11]``; anything else is an InputError quoting ``--layers``."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        out = []
    if not out:
        raise InputError(
            f"--layers {text!r}: give comma-separated integers, e.g. 7,8,11 (-1 = last block)"
        )
    return out


def _extract_config(layers: Sequence[int] | None, tokens: str | None) -> ExtractConfig:
    """The [extract] section with the command line's layers and tokens, validated."""
    allowed = get_args(ExtractConfig.model_fields["tokens"].annotation)
    if tokens is not None and tokens not in allowed:
        raise ConfigError(f"--tokens {tokens!r}: must be one of {', '.join(allowed)}")
    updates: dict[str, object] = {}
    if layers is not None:
        updates["layers"] = list(layers)
    if tokens is not None:
        updates["tokens"] = tokens
    return ExtractConfig.model_validate({**ExtractConfig().model_dump(), **updates})


def init_study(
    study_dir: Path,
    *,
    images: str | None = None,
    model: str | None = None,
    name: str = "",
    layers: Sequence[int] | None = None,
    tokens: str | None = None,
) -> Study:
    """``vislens init``: write study.toml and, when images are given, index them into images.parquet.

    Indexing happens before study.toml is written, so a bad image source leaves nothing behind.
    """
    from vislens.data.sources import open_source
    from vislens.data.table import build_image_table, write_image_table

    study_dir = Path(study_dir)
    cfg = StudyConfig(name=name or study_dir.name, extract=_extract_config(layers, tokens))
    table = None
    if images:
        source_path = Path(images).expanduser().resolve()
        table = build_image_table(open_source(source_path))
        cfg.images.source = str(source_path)
    if model:
        # A local directory is recorded absolute, so the study works from any working directory.
        local = Path(model).expanduser()
        cfg.model.name_or_path = str(local.resolve()) if local.is_dir() else model
    study = Study.init(study_dir, cfg)
    if table is not None:
        write_image_table(table, study.images_path)
    return study
