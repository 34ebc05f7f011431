"""Image sources: a folder of images, a CSV/JSONL manifest, or a synthetic grid-world directory.

Every source yields ``ImageRecord``s (id, path or URL, metadata); ``load_image`` turns a
record into an RGB PIL image, with one clear error naming the item when it cannot.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from PIL import Image, UnidentifiedImageError

from vislens.errors import InputError
from vislens.io import read_jsonl

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
PATH_COLUMNS = ("path", "image", "file_name", "filepath", "image_path", "url", "image_url")
ID_COLUMNS = ("item_id", "id")


@dataclass(frozen=True)
class ImageRecord:
    """One image: its id, where it is (absolute path or URL), and any extra columns."""

    item_id: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return is_url(self.source)


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


class ImageSource(Protocol):
    """Anything that lists images (seed 001's ImageProvider, in vislens terms)."""

    def records(self) -> list[ImageRecord]: ...


class FolderSource:
    """Every image file under a folder (recursively); the id is the relative path."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def records(self) -> list[ImageRecord]:
        if not self.root.is_dir():
            raise InputError(f"{self.root}: not a folder")
        files = sorted(
            p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise InputError(
                f"{self.root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        return [ImageRecord(p.relative_to(self.root).as_posix(), str(p.resolve())) for p in files]


def _read_manifest_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        if suffix in (".jsonl", ".ndjson"):
            return pd.DataFrame([row for _, row in read_jsonl(path)])
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot parse the manifest ({e})") from None
    raise InputError(f"{path}: manifest must be .csv or .jsonl")


class ManifestSource:
    """A CSV or JSONL table with a path/URL column; other columns are kept as metadata.

    Relative paths are resolved against the manifest's folder.
    """

    def __init__(self, path: Path, path_column: str = "", id_column: str = "") -> None:
        self.path = Path(path)
        self.path_column = path_column
        self.id_column = id_column

    def records(self) -> list[ImageRecord]:
        if not self.path.is_file():
            raise InputError(f"{self.path}: manifest not found")
        table = _read_manifest_table(self.path)
        if table.empty:
            raise InputError(f"{self.path}: the manifest has no rows")
        path_col = self.path_column or next((c for c in PATH_COLUMNS if c in table.columns), "")
        if not path_col or path_col not in table.columns:
            raise InputError(
                f"{self.path}: no image column — add one named {', '.join(PATH_COLUMNS)} "
                f"or set [images] path_column (columns found: {', '.join(map(str, table.columns))})"
            )
        id_col = self.id_column or next((c for c in ID_COLUMNS if c in table.columns), "")
        if self.id_column and self.id_column not in table.columns:
            raise InputError(f"{self.path}: id column '{self.id_column}' not found")
        base = self.path.parent
        records: list[ImageRecord] = []
        seen: dict[str, int] = {}
        for row_no, row in enumerate(
            table.to_dict(orient="records"), start=2 if self.path.suffix == ".csv" else 1
        ):
            raw = row.get(path_col)
            if not isinstance(raw, str) or not raw.strip():
                raise InputError(f"{self.path}: row {row_no}: empty '{path_col}'")
            raw = raw.strip()
            source = raw if is_url(raw) else str((base / raw).resolve())
            item_id = str(row[id_col]) if id_col else Path(raw).with_suffix("").as_posix()
            if item_id in seen:
                raise InputError(
                    f"{self.path}: row {row_no}: item id '{item_id}' repeats row {seen[item_id]}"
                )
            seen[item_id] = row_no
            meta = {str(k): v for k, v in row.items() if k not in (path_col, id_col)}
            records.append(ImageRecord(item_id, source, meta))
        return records


class SyntheticSource:
    """A grid-world directory (seed 004): annotations.jsonl, with captions as metadata."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def records(self) -> list[ImageRecord]:
        from vislens.data.synthetic import read_annotations

        anns = read_annotations(self.root / "annotations.jsonl")
        captions: dict[str, str] = {}
        cap_path = self.root / "captions.jsonl"
        if cap_path.is_file():
            for line in cap_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    captions[rec["image"]] = rec["caption"]
        out = []
        for ann in anns:
            rel = ann["image"]
            meta = {
                "grid": ann["grid"],
                "patch": ann["patch"],
                "n_objects": len(ann["objects"]),
                "objects": json.dumps(ann["objects"]),
                "caption": captions.get(rel, ""),
            }
            out.append(ImageRecord(Path(rel).stem, str((self.root / rel).resolve()), meta))
        return out


def open_source(
    path: Path, kind: str = "auto", *, path_column: str = "", id_column: str = ""
) -> ImageSource:
    """The source for ``path``: ``auto`` picks synthetic (annotations.jsonl), folder, or manifest."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: image source not found")
    if kind == "auto":
        if path.is_dir():
            kind = "synthetic" if (path / "annotations.jsonl").is_file() else "folder"
        else:
            kind = "manifest"
    if kind == "synthetic":
        return SyntheticSource(path)
    if kind == "folder":
        return FolderSource(path)
    if kind == "manifest":
        return ManifestSource(path, path_column, id_column)
    raise InputError(f"image source kind '{kind}': choose auto, folder, manifest or synthetic")


def load_image(record: ImageRecord, *, url_timeout_s: float = 10.0) -> Image.Image:
    """Decode one image as RGB; a missing, unreachable or corrupt image is one clear error."""
    where = f"item '{record.item_id}' ({record.source})"
    if record.is_url:
        import httpx

        try:
            resp = httpx.get(record.source, timeout=url_timeout_s, follow_redirects=True)
            resp.raise_for_status()
        except httpx.HTTPError as e:
            raise InputError(
                f"{where}: could not fetch the URL ({type(e).__name__}: {e}) — check the network, "
                "or download the images and list local paths"
            ) from None
        data: io.BytesIO | Path = io.BytesIO(resp.content)
    else:
        data = Path(record.source)
        if not data.is_file():
            raise InputError(f"{where}: file not found")
    try:
        with Image.open(data) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{where}: not a readable image ({e}) — replace or remove it") from None


def probe_size(record: ImageRecord) -> tuple[int, int]:
    """(width, height) from the file header without decoding; (-1, -1) for URLs."""
    if record.is_url:
        return -1, -1
    path = Path(record.source)
    if not path.is_file():
        raise InputError(f"item '{record.item_id}' ({record.source}): file not found")
    try:
        with Image.open(path) as img:
            return int(img.width), int(img.height)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(
            f"item '{record.item_id}' ({record.source}): not a readable image ({e})"
        ) from None


def records_from_table(table: pd.DataFrame) -> list[ImageRecord]:
    """ImageRecords back from an images.parquet table."""
    base = {"item_id", "source", "width", "height", "split"}
    meta_cols = [c for c in table.columns if c not in base]
    return [
        ImageRecord(str(r["item_id"]), str(r["source"]), {c: r[c] for c in meta_cols})
        for r in table.to_dict(orient="records")
    ]
