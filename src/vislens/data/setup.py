"""Creating a study from the command line's pieces: images, model, layers, tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vislens.study import Study, StudyConfig


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
    cfg = StudyConfig(name=name or study_dir.name)
    table = None
    if images:
        source_path = Path(images).expanduser().resolve()
        table = build_image_table(open_source(source_path))
        cfg.images.source = str(source_path)
    if model:
        # A local directory is recorded absolute, so the study works from any working directory.
        local = Path(model).expanduser()
        cfg.model.name_or_path = str(local.resolve()) if local.is_dir() else model
    if layers is not None:
        cfg.extract.layers = list(layers)
    if tokens is not None:
        cfg.extract.tokens = tokens  # type: ignore[assignment]  # validated on assignment
    study = Study.init(study_dir, cfg)
    if table is not None:
        write_image_table(table, study.images_path)
    return study
