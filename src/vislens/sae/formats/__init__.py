"""Checkpoint formats: read ViT-Prisma, SAELens and dictionary_learning; write SAELens.

``load_sae(path_or_id)`` takes a local directory (or weight file) or a hub id
(``owner/repo`` or ``owner/repo/subfolder``) and detects the format from the files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vislens.errors import InputError, ModelError
from vislens.sae.base import BaseSAE
from vislens.sae.formats.dictionary_learning import (
    is_dictionary_learning_dir,
    load_dictionary_learning,
)
from vislens.sae.formats.prisma import is_prisma_dir, load_prisma
from vislens.sae.formats.saelens import is_saelens_dir, load_saelens, save_saelens

# Checked in order: a directory matching several (cfg.json *and* config.json) is SAELens.
FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path], BaseSAE]]] = {
    "saelens": (is_saelens_dir, load_saelens),
    "dictionary_learning": (is_dictionary_learning_dir, load_dictionary_learning),
    "prisma": (is_prisma_dir, load_prisma),
}


def detect_format(path: Path) -> str:
    """The format of a local checkpoint directory (or weight file)."""
    path = Path(path)
    if path.is_file():
        if path.name == "ae.pt":
            return "dictionary_learning"
        if path.suffix == ".pt":
            return "prisma"
        if path.suffix == ".safetensors":
            return "saelens"
        raise InputError(f"{path}: not an SAE weight file (.pt or .safetensors)")
    for name, (matches, _) in FORMATS.items():
        if matches(path):
            return name
    listing = sorted(p.name for p in path.iterdir())[:10] if path.is_dir() else []
    raise InputError(
        f"{path}: not an SAE checkpoint — expected cfg.json + sae_weights.safetensors (SAELens), "
        f"ae.pt (dictionary_learning) or config.json + weights.pt / n_images_*.pt (ViT-Prisma); "
        f"found {listing}"
    )


def _download(repo_spec: str) -> Path:
    """A local copy of a hub checkpoint (``owner/repo[/subfolder]``), from the cache when offline."""
    parts = repo_spec.strip("/").split("/")
    repo_id, sub = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(repo_id, allow_patterns=[f"{sub}/*"] if sub else None))
    except Exception as e:
        raise ModelError(
            f"SAE '{repo_spec}': not a local path and not downloadable from the hub ({type(e).__name__}: {e}); "
            "pass a local checkpoint directory, or download it where the hub is reachable"
        ) from None
    return local / sub if sub else local


def resolve_checkpoint(path_or_id: str | Path) -> Path:
    """A local path for ``path_or_id``: as given when it exists, else downloaded from the hub."""
    p = Path(path_or_id).expanduser()
    if p.exists():
        return p
    text = str(path_or_id)
    if text.startswith((".", "/", "~")) or text.count("/") < 1:
        raise InputError(f"{text}: no such file or directory")
    return _download(text)


def load_sae(path_or_id: str | Path, *, format: str | None = None) -> BaseSAE:
    """Load an SAE from any supported format; ``format`` skips detection."""
    path = resolve_checkpoint(path_or_id)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise InputError(f"unknown SAE format '{fmt}' (one of {sorted(FORMATS)})")
    if fmt == "saelens" and path.is_file():
        path = path.parent
    return FORMATS[fmt][1](path)


__all__ = ["FORMATS", "detect_format", "load_sae", "resolve_checkpoint", "save_saelens"]
