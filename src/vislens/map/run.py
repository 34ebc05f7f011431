"""``vislens map``: features → projection → STUDY/map/ (see write.py for the layout)."""

from __future__ import annotations

import re
from pathlib import Path

from vislens.errors import InputError
from vislens.map.features import SOURCES, load_features
from vislens.map.project import METHODS, project
from vislens.map.write import metadata_table, write_map


def map_study(
    study_dir: Path,
    *,
    source: str = "activations",
    method: str = "umap",
    layer: int | None = None,
    sae: str | None = None,
    embeddings_file: Path | None = None,
    embedder: str = "",
    name: str | None = None,
    seed: int = 0,
    n_neighbors: int = 15,
    replace: bool = False,
) -> Path:
    """Compute and write one map; returns the coords file's path. Inputs are checked before
    any work, and nothing is written unless the projection finished."""
    from vislens.progress import make_progress
    from vislens.study import Study

    if source not in SOURCES:
        raise InputError(f"--source {source!r}: choose one of {', '.join(SOURCES)}")
    if method not in METHODS:
        raise InputError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    name = name or f"{source}_{method}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}", name):
        raise InputError(f"--name {name!r}: use letters, digits, '.', '_' or '-'")
    study = Study.open(Path(study_dir).expanduser().resolve())
    with make_progress() as bar:
        task = bar.add_task(f"map {name}: features", total=3)
        ids, feats = load_features(
            study, source, layer=layer, sae=sae, embeddings_file=embeddings_file, embedder=embedder
        )
        meta = metadata_table(study, ids)
        bar.update(task, advance=1, description=f"map {name}: {method}")
        coords = project(feats, method, seed=seed, n_neighbors=n_neighbors)
        bar.update(task, advance=1, description=f"map {name}: write")
        info = {"source": source, "method": method, "layer": layer, "sae": sae, "seed": seed}
        path = write_map(study.map_dir, meta, coords, name, info, replace_metadata=replace)
        bar.update(task, advance=1)
    return path
