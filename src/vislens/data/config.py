"""The ``[images]`` section of study.toml."""

from __future__ import annotations

from typing import Literal

from vislens.config_base import Section


class ImagesConfig(Section):
    source: str = ""
    """Where the images come from: a folder, a CSV/JSONL manifest, or a synthetic grid-world
    directory (one with annotations.jsonl). Relative paths are relative to the study directory."""

    kind: Literal["auto", "folder", "manifest", "synthetic"] = "auto"
    """How to read ``source``; ``auto`` decides from what is on disk."""

    path_column: str = ""
    """Manifest column holding each image's path or URL; empty means the first of
    path, image, file_name, filepath, image_path, url, image_url that exists."""

    id_column: str = ""
    """Manifest column holding each item's id; empty means item_id or id, else derived from the path."""

    url_timeout_s: float = 10.0
    """Seconds to wait for an image URL before failing with a clear error."""
