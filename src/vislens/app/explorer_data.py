"""The explorer's data: seed 003's cache directory (``metadata.csv`` + a coords ``.npy``,
optional ``mis_*.csv`` / ``correct_*.csv`` with a JSON ``rationale`` column), held on the
server. The browser only ever receives what is drawn: at most ``budget`` points of the
current view (a fixed random order decides which, so zooming in reveals more of the same
points), with a density layer of all of them underneath when they do not all fit
(explorer_density.py).

Everything here is plain numpy/pandas so it can be tested without a browser.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vislens.app.seed003 import (
    DEFAULT_COLOR_BY,
    DEFAULT_CORRECT_CSV,
    DEFAULT_HOVER,
    DEFAULT_MIS_CSV,
    METADATA_FILE,
)
from vislens.errors import InputError

MAX_CATEGORIES = 24
"""Colour-by categories drawn as their own legend entries; the rest are grouped as 'other'."""


@dataclass
class Rationale:
    prediction: str
    """misclassification, correct classification, ambiguous (in both files) or unknown."""
    score: str
    rationale: str


def read_rationales(path: Path) -> tuple[dict[str, dict[str, str]], int]:
    """``{file_name: {score, rationale}}`` from a mis/correct CSV (the JSON in its
    ``rationale`` column, keys ``score`` and ``rationale``), and the count of rows whose
    JSON could not be read."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise InputError(f"{path}: cannot read as CSV ({e})") from None
    missing = {"file_name", "rationale"} - set(df.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    out: dict[str, dict[str, str]] = {}
    bad = 0
    for fname, raw in zip(df["file_name"], df["rationale"], strict=True):
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            bad += 1
            continue
        if not isinstance(obj, dict):
            bad += 1
            continue
        score = obj.get("score", "")
        out[str(fname)] = {
            "score": "" if score is None else str(score),
            "rationale": str(obj.get("rationale", "") or ""),
        }
    return out, bad


@dataclass
class ExplorerData:
    """Points, their metadata and the LLM rationales; see the module docstring."""

    meta: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    color_by: str = DEFAULT_COLOR_BY
    hover: list[str] = field(default_factory=list)
    image_dir: Path | None = None
    image_root: str = ""
    mis: dict[str, dict[str, str]] = field(default_factory=dict)
    correct: dict[str, dict[str, str]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    """Things the user should know (a missing column, unreadable rationale rows, ...)."""
    title: str = "Embedding explorer"
    rank: np.ndarray = field(init=False)
    """A fixed random rank per point: the first ``budget`` of a view are drawn."""
    _search_text: pd.Series | None = field(default=None, init=False, repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Per-column values derived once (hover text, category codes; explorer_figure.py)."""
    lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        rng = np.random.default_rng(0)
        self.rank = np.empty(len(self.x), dtype=np.int64)
        self.rank[rng.permutation(len(self.x))] = np.arange(len(self.x))

    # -- loading ------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        cache_dir: Path,
        coords_file: str,
        *,
        image_dir: Path | None = None,
        image_root: str = "",
        mis_csv: str = DEFAULT_MIS_CSV,
        correct_csv: str = DEFAULT_CORRECT_CSV,
        color_by: str = DEFAULT_COLOR_BY,
        hover: str = DEFAULT_HOVER,
    ) -> ExplorerData:
        """Read a seed 003 cache directory. Wrong shapes, lengths or files are one
        InputError; a missing colour/hover column or rationale file is a notice."""
        cache_dir = Path(cache_dir).expanduser().resolve()
        meta_path = cache_dir / METADATA_FILE
        coords_path = cache_dir / coords_file
        for p in (meta_path, coords_path):
            if not p.is_file():
                raise InputError(f"{p}: not found — the cache directory needs {p.name}")
        try:
            meta = pd.read_csv(meta_path, low_memory=False)
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise InputError(f"{meta_path}: cannot read as CSV ({e})") from None
        try:
            coords = np.load(coords_path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{coords_path}: cannot read as a .npy array ({e})") from None
        if coords.ndim != 2 or coords.shape[1] < 2 or not np.issubdtype(coords.dtype, np.number):
            raise InputError(
                f"{coords_path}: expected a numeric [n, 2] array, got {coords.dtype} {list(coords.shape)}"
            )
        if coords.shape[0] != len(meta):
            raise InputError(
                f"{coords_path} has {coords.shape[0]} rows but {meta_path} has {len(meta)}: "
                "they must be paired row by row"
            )
        xy = coords[:, :2].astype(np.float64)
        if not np.isfinite(xy).all():
            bad = int(np.flatnonzero(~np.isfinite(xy).all(axis=1))[0])
            raise InputError(f"{coords_path}: row {bad} is not finite")
        notices: list[str] = []
        resolved_dir: Path | None = None
        if image_dir is not None:
            resolved_dir = Path(image_dir).expanduser().resolve()
            if not resolved_dir.is_dir():
                raise InputError(f"--image_dir {image_dir}: not a directory")
            if image_root:
                notices.append(
                    "both --image_dir and --image_root given: images come from --image_dir"
                )
                image_root = ""
        if (resolved_dir is not None or image_root) and "file_name" not in meta.columns:
            notices.append(f"{meta_path} has no file_name column: no images")
        maps: list[dict[str, dict[str, str]]] = []
        for arg in (mis_csv, correct_csv):
            found: dict[str, dict[str, str]] = {}
            if arg:
                p = Path(arg) if Path(arg).is_absolute() else cache_dir / arg
                if p.is_file():
                    found, bad = read_rationales(p)
                    if bad:
                        notices.append(f"{p.name}: {bad} rationale row(s) are not JSON objects")
                else:
                    notices.append(f"{p.name} not found: no LLM rationales from it")
            maps.append(found)
        if color_by and color_by not in meta.columns:
            notices.append(f"colour-by column {color_by!r} is not in {METADATA_FILE}")
            color_by = ""
        hover_cols = [c.strip() for c in hover.split(",") if c.strip()]
        absent = [c for c in hover_cols if c not in meta.columns]
        if absent:
            notices.append(f"hover column(s) {', '.join(absent)} not in {METADATA_FILE}")
        return cls(
            meta=meta,
            x=np.ascontiguousarray(xy[:, 0]),
            y=np.ascontiguousarray(xy[:, 1]),
            color_by=color_by,
            hover=[c for c in hover_cols if c in meta.columns],
            image_dir=resolved_dir,
            image_root=image_root,
            mis=maps[0],
            correct=maps[1],
            notices=notices,
            title=f"{cache_dir.name} · {coords_file}",
        )

    # -- queries ------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    def columns(self) -> list[str]:
        return [str(c) for c in self.meta.columns]

    def is_categorical(self, column: str) -> bool:
        s = self.meta[column]
        return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)

    def filter_mask(
        self, column: str | None = None, values: list[Any] | None = None, search: str = ""
    ) -> np.ndarray:
        """Points whose ``column`` is one of ``values`` (all when no values) and whose text
        columns contain ``search`` (case-insensitive)."""
        mask = np.ones(self.n, dtype=bool)
        if column and values and column in self.meta.columns:
            mask &= self.meta[column].astype(str).isin([str(v) for v in values]).to_numpy()
        if search.strip():
            found = self._text().str.contains(search.strip().lower(), regex=False)
            mask &= found.to_numpy(dtype=bool)
        return mask

    def _text(self) -> pd.Series:
        """Every text column of a row joined (lower case), built once on first search."""
        if self._search_text is None:
            cols = [c for c in self.meta.columns if not pd.api.types.is_numeric_dtype(self.meta[c])]
            if not cols:
                self._search_text = pd.Series([""] * self.n)
            else:
                first = self.meta[cols[0]].astype(str)
                rest = [self.meta[c].astype(str) for c in cols[1:]]
                self._search_text = (
                    first.str.cat(rest, sep="\x1f") if rest else first  # type: ignore[arg-type]
                ).str.lower()
        return self._search_text

    def view(
        self,
        mask: np.ndarray,
        x_range: tuple[float, float] | None,
        y_range: tuple[float, float] | None,
        budget: int,
    ) -> tuple[np.ndarray, int]:
        """Indices of the points to draw in the view (at most ``budget``, lowest rank
        first) and how many points the view holds in all."""
        vis = mask.copy()
        if x_range is not None:
            x0, x1 = sorted(x_range)
            vis &= (self.x >= x0) & (self.x <= x1)
        if y_range is not None:
            y0, y1 = sorted(y_range)
            vis &= (self.y >= y0) & (self.y <= y1)
        idx = np.flatnonzero(vis)
        total = int(idx.shape[0])
        if total > budget:
            keep = np.argpartition(self.rank[idx], budget - 1)[:budget]
            idx = np.sort(idx[keep])
        return idx, total

    def rationale(self, row: int) -> Rationale:
        fname = str(self.meta["file_name"].iloc[row]) if "file_name" in self.meta.columns else ""
        mis, cor = self.mis.get(fname), self.correct.get(fname)
        if mis and cor:
            prediction, entry = "ambiguous (in both mis and correct)", mis
        elif mis:
            prediction, entry = "misclassification", mis
        elif cor:
            prediction, entry = "correct classification", cor
        else:
            prediction, entry = "unknown (not in the mis/correct files)", None
        if entry is None:
            return Rationale(prediction, "", "")
        return Rationale(prediction, entry["score"], entry["rationale"])

    def image_url(self, row: int) -> str:
        """The URL of a point's image: /images/<file_name> or --image_root + file_name."""
        from urllib.parse import quote

        if "file_name" not in self.meta.columns:
            return ""
        fname = str(self.meta["file_name"].iloc[row])
        if self.image_dir is not None:
            return "/images/" + quote(fname)
        if self.image_root:
            return self.image_root.rstrip("/") + "/" + quote(fname)
        return ""

    def image_missing(self, row: int) -> bool:
        """True when images are served locally and this point's file cannot be."""
        from vislens.app.files import safe_file

        if self.image_dir is None or "file_name" not in self.meta.columns:
            return False
        return safe_file(self.image_dir, str(self.meta["file_name"].iloc[row])) is None
