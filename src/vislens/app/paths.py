"""Which local files the workbench may send: containment in declared roots.

An item names its images; the names come from a data file (``data.json``, feature cards),
which can say ``/etc/passwd`` or ``../../secret`` as easily as ``images/0001.png``. So a
name is served only when the file it resolves to — symlinks followed — lies inside one of
the task's *image roots*: the study directory, the roots the task declared when it was
created (``settings["image_roots"]``), and, for tasks made before roots were declared, the
folder of the file the task was made from and the study's image source. The same rule is
applied when a task is created (nothing is stored) and on every request (a file swapped for
a symlink after creation is still refused).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vislens.errors import InputError

REMOTE_PREFIXES = ("http://", "https://")


def is_remote(name: str) -> bool:
    return str(name).startswith(REMOTE_PREFIXES)


def item_image_names(kind: str, payload: dict[str, Any]) -> dict[str, str]:
    """``{slot: name}`` for every image an item shows (slots as in /media/<task>/<pos>/<slot>)."""
    if kind == "patch":
        return {"image": str(payload.get("image") or "")}
    if kind == "rating":
        out = {f"img{i}": str(p) for i, p in enumerate(payload.get("images") or [])}
        out.update({f"heat{i}": str(p) for i, p in enumerate(payload.get("heatmaps") or [])})
        return out
    return {}


def _resolved_roots(roots: Iterable[Path | str]) -> list[Path]:
    out = []
    for r in roots:
        if not str(r):
            continue
        try:
            out.append(Path(r).resolve(strict=True))
        except (OSError, RuntimeError):
            continue  # a root that does not exist contains nothing
    return out


def contained_file(name: str, base: Path, roots: Sequence[Path | str]) -> Path | None:
    """The regular file ``name`` (relative to ``base`` unless absolute) resolves to, if it
    lies inside one of ``roots`` after following symlinks; otherwise None. Never expands
    ``~``; NUL bytes and URLs are refused."""
    name = str(name)
    if not name or "\x00" in name or is_remote(name):
        return None
    p = Path(name)
    if not p.is_absolute():
        p = Path(base) / p
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_file():
        return None
    for root in _resolved_roots(roots):
        if real == root or real.is_relative_to(root):
            return real
    return None


def image_source_root(study: Any) -> Path | None:
    """The folder of the study's image source (the folder itself, or a manifest's folder)."""
    src = str(getattr(study.config.images, "source", "") or "")
    if not src or is_remote(src):
        return None
    p = study.resolve(src)
    return p if p.is_dir() else p.parent


def task_image_roots(study: Any, settings: dict[str, Any] | None) -> list[Path]:
    """The folders a task's images may come from (see the module docstring)."""
    settings = settings or {}
    roots: list[Path] = [Path(study.root)]
    declared = settings.get("image_roots")
    if isinstance(declared, list):
        roots += [study.resolve(str(r)) for r in declared if isinstance(r, str) and r]
    else:  # a task from before roots were declared
        source = str(settings.get("source") or "")
        if source and not is_remote(source) and not source.startswith("sae/"):
            roots.append(study.resolve(source).parent)
        src_root = image_source_root(study)
        if src_root is not None:
            roots.append(src_root)
    return roots


def check_item_images(
    kind: str,
    items: Iterable[tuple[str, dict[str, Any]]],
    base: Path,
    roots: Sequence[Path | str],
    where: str,
) -> None:
    """Raise one InputError for the first local image of ``items`` (``(item_id, payload)``)
    that is missing or lies outside ``roots``; URLs are not checked here."""
    for item_id, payload in items:
        for name in item_image_names(kind, payload).values():
            if not name or is_remote(name):
                continue
            if contained_file(name, base, roots) is None:
                shown = name if len(name) <= 200 else name[:200] + "…"
                p = Path(name) if Path(name).is_absolute() else Path(base) / name
                why = "does not exist" if not p.exists() else "lies outside the allowed folders"
                allowed = ", ".join(str(r) for r in roots)
                raise InputError(
                    f"{where} (item {item_id}): image {shown!r} {why} — images must be files "
                    f"under {allowed}"
                )


def declared_roots_for_input(source_path: Path) -> list[str]:
    """The image roots a task made from ``source_path`` declares: the file's folder and,
    when the file lies inside a study, that study and its image source folder (a LatentLens
    sample under ``lens/`` names the study's own images)."""
    folder = Path(source_path).resolve().parent
    roots = [folder]
    for parent in [folder, *folder.parents]:
        if (parent / "study.toml").is_file():
            from vislens.study import Study

            try:
                study = Study.open(parent)
            except Exception:  # an unreadable study.toml declares nothing more
                break
            roots.append(parent)
            src = image_source_root(study)
            if src is not None:
                roots.append(src.resolve())
            break
    out: list[str] = []
    for r in roots:
        if str(r) not in out:
            out.append(str(r))
    return out
