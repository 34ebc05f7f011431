"""Interpretability rates per method x visual layer, with bootstrap CIs.

Three sources of verdicts:

- **judge**: LatentLens' ``human_study_llm_results.json`` that ``vislens judge latentlens``
  writes beside each sample file (``interpretable`` per instance);
- **human**: annotator files ``evaluation_<user>_<session>.json`` beside each sample file
  (or under its ``evaluations/``); an instance is interpretable when the share of its
  annotators who selected at least one word is >= ``threshold`` (LatentLens' rule; with
  0.5, a 1-1 tie counts as interpretable);
- **ground truth** (the toy grid world, no judge): a patch over an object counts when one
  of its top-k words names the object's shape or colour; patches over empty cells are
  scored separately, by whether a word names the background (``BACKGROUND_WORDS``).

Ground-truth rates come with two figures that say how much of a rate is the method and how
much the small world's vocabulary. With 5 shapes and 6 colours, a lens that lists any five
shape words "names" every object in its top-5. So each object patch is also scored against
the shape and colour of *another* object patch (a seeded derangement of the object patches
of the same method, visual layer and contextual layer): ``control_rate`` is that rate, the
share a lens blind to the patch would get. ``rate_top1`` scores the rank-1 word alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vislens.errors import InputError
from vislens.human.latentlens import read_evaluation, read_instances, read_llm_results
from vislens.judge.tasks.latentlens import full_word
from vislens.lens.neighbors import groups

RATE_COLUMNS = (
    "method",
    "visual_layer",
    "contextual_layer",
    "cells",
    "n",
    "n_interpretable",
    "rate",
    "ci_low",
    "ci_high",
    "rate_top1",
    "control_rate",
)
BACKGROUND_WORDS = frozenset({"empty", "grid", "background", "nothing", "none", "black", "dark"})


def bootstrap_ci(
    values: np.ndarray, *, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of 0/1 ``values`` (scipy); a constant sample's CI is the point."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    res = bootstrap(
        (values,), np.mean, n_resamples=n_resamples, confidence_level=level,
        method="percentile", random_state=np.random.default_rng(seed),
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _mean(x: np.ndarray | None) -> float:
    return float(np.mean(x)) if x is not None and len(x) else float("nan")


def _rate_row(
    method: str,
    vl: int,
    cl: int,
    cells: str,
    hits: np.ndarray,
    top1: np.ndarray | None = None,
    control: np.ndarray | None = None,
    **kw: Any,
) -> dict[str, Any]:
    lo, hi = bootstrap_ci(hits, **kw)
    return {
        "method": method, "visual_layer": vl, "contextual_layer": cl, "cells": cells,
        "n": len(hits), "n_interpretable": int(hits.sum()),
        "rate": float(hits.mean()) if len(hits) else float("nan"), "ci_low": lo, "ci_high": hi,
        "rate_top1": _mean(top1), "control_rate": _mean(control),
    }  # fmt: skip


def normalise_word(token: str, caption: str = "", position: int | None = None) -> str:
    """A neighbour as a plain lower-case word (subword tokens expanded from their caption)."""
    word = full_word(token, caption or None, position) if caption else token
    word = word.strip().lower()
    for prefix in ("ġ", "▁", "##"):
        word = word.removeprefix(prefix)
    return word


def _cell_objects(
    images: pd.DataFrame,
) -> dict[int, tuple[int, dict[tuple[int, int], dict[str, str]]]]:
    """image_idx -> (world grid, {(r, c): object}) from images.parquet's ``objects`` column."""
    if "objects" not in images.columns:
        raise InputError(
            "the study's images have no 'objects' column: ground-truth rates need a grid-world "
            "source (vislens synth grid) — use judge or human verdicts instead"
        )
    out = {}
    for i, rec in enumerate(images.to_dict("records")):
        objs = (
            json.loads(rec["objects"])
            if isinstance(rec["objects"], str)
            else (rec["objects"] or [])
        )
        out[i] = (int(rec.get("grid") or 10), {(int(o["r"]), int(o["c"])): o for o in objs})
    return out


def _control_objects(objs: pd.DataFrame, keys: list[str], seed: int) -> pd.DataFrame:
    """For each object patch of each ``keys`` group, the shape and colour of another object
    patch of that group: a seeded random cycle through the group's object patches, so no
    patch is paired with itself (a group of one keeps its own, and its control is its rate)."""
    parts = []
    for _, g in groups(objs, keys):
        g = g.sort_values(["image_idx", "patch_idx"], kind="stable")
        order = np.random.default_rng(seed).permutation(len(g))
        src = np.empty(len(g), dtype=np.int64)
        src[order] = np.roll(order, -1)
        parts.append(
            g.assign(
                control_shape=g["shape"].to_numpy(dtype=object)[src],
                control_color=g["color"].to_numpy(dtype=object)[src],
            )
        )
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else objs.assign(
            control_shape=pd.Series(dtype=object), control_color=pd.Series(dtype=object)
        )
    )


def ground_truth_hits(table: pd.DataFrame, images: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per method x visual layer x contextual layer x image x patch: whether the cell
    holds an object, whether a top-k word names its shape/colour (or the background), whether
    the rank-1 word does (``hit_top1``), and whether a top-k word names the shape/colour of
    another object patch (``control``, object patches only; see the module docstring)."""
    cells = _cell_objects(images)
    rows_n = int(table["patch_row"].max()) + 1
    cols_n = int(table["patch_col"].max()) + 1
    # Words once per distinct (token, caption, position): the table repeats them a lot.
    keys3 = ["token_str", "caption", "position"]
    uniq = table[keys3].drop_duplicates()
    uniq = uniq.assign(
        word=[
            normalise_word(t, c, p)
            for t, c, p in zip(uniq["token_str"], uniq["caption"], uniq["position"], strict=True)
        ]
    )
    df = table.merge(uniq, on=keys3, how="left")
    grid = df["image_idx"].map({i: g for i, (g, _) in cells.items()}).to_numpy()
    df["cell_r"] = df["patch_row"].to_numpy() * grid // rows_n
    df["cell_c"] = df["patch_col"].to_numpy() * grid // cols_n
    objs = pd.DataFrame(
        [
            (i, r, c, o["shape"], o["color"])
            for i, (_, m) in cells.items()
            for (r, c), o in m.items()
        ],
        columns=["image_idx", "cell_r", "cell_c", "shape", "color"],
    )
    df = df.merge(objs, on=["image_idx", "cell_r", "cell_c"], how="left")
    keys = ["method", "visual_layer", "contextual_layer", "image_idx", "patch_idx"]
    patches = df.loc[df["shape"].notna(), [*keys, "shape", "color"]].drop_duplicates(keys)
    control = _control_objects(patches, keys[:3], seed)
    df = df.merge(control[[*keys, "control_shape", "control_color"]], on=keys, how="left")
    is_obj = df["shape"].notna().to_numpy()
    words = df["word"].to_numpy(dtype=object)

    def names(shape: str, color: str) -> np.ndarray:
        return (words == df[shape].to_numpy(dtype=object)) | (
            words == df[color].to_numpy(dtype=object)
        )

    background = df["word"].isin(BACKGROUND_WORDS).to_numpy()
    df["object"] = is_obj
    df["hit"] = np.where(is_obj, names("shape", "color"), background)
    df["hit_top1"] = df["hit"] & (df["rank"].to_numpy() == 1)
    df["control"] = is_obj & names("control_shape", "control_color")
    out = (
        df.groupby(keys, sort=True)
        .agg(
            object=("object", "first"),
            hit=("hit", "any"),
            hit_top1=("hit_top1", "any"),
            control=("control", "any"),
        )
        .reset_index()
    )
    return out.astype({"object": bool, "hit": bool, "hit_top1": bool, "control": bool})


def ground_truth_rates(
    table: pd.DataFrame,
    images: pd.DataFrame,
    *,
    by_layer: pd.DataFrame | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Rates (``RATE_COLUMNS``) on object cells and, separately, empty cells. Global rows have
    ``contextual_layer = -1``; rows from ``by_layer`` (LatentLens within one contextual layer)
    carry their layer."""
    frames = [table.assign(contextual_layer=-1)]
    if by_layer is not None and len(by_layer):
        frames.append(by_layer)
    hits = ground_truth_hits(pd.concat(frames, ignore_index=True), images, seed=seed)
    rows = []
    for (method, vl, cl, is_obj), g in groups(
        hits, ["method", "visual_layer", "contextual_layer", "object"]
    ):
        rows.append(
            _rate_row(
                str(method),
                int(vl),
                int(cl),
                "object" if is_obj else "empty",
                g["hit"].to_numpy(dtype=float),
                g["hit_top1"].to_numpy(dtype=float),
                g["control"].to_numpy(dtype=float) if is_obj else None,
                n_resamples=n_resamples,
                seed=seed,
            )
        )
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))


def _sample_dirs(sample_dir: Path) -> list[tuple[str, int, Path]]:
    out = []
    for d in sorted(Path(sample_dir).glob("*_visual*")):
        if (d / "instances.json").is_file():
            method, _, vl = d.name.rpartition("_visual")
            out.append((method, int(vl), d))
    if not out:
        raise InputError(f"{sample_dir}: no sample — run `vislens lens sample STUDY` first")
    return out


def verdicts_from_judge(d: Path) -> dict[str, int] | None:
    path = d / "llm_judge_results" / "human_study_llm_results.json"
    if not path.is_file():
        return None
    insts = dict(read_instances(d / "instances.json"))
    aliases = {a: iid for iid, p in insts.items() for a in p.get("aliases", [])}
    return {aliases.get(k, k): int(v["interpretable"]) for k, v in read_llm_results(path).items()}


def verdicts_from_humans(d: Path, threshold: float = 0.5) -> dict[str, int] | None:
    files = sorted([*d.glob("evaluation_*.json"), *(d / "evaluations").glob("evaluation_*.json")])
    if not files:
        return None
    insts = dict(read_instances(d / "instances.json"))
    known = {iid: {c["word"] for c in p["candidates_view"]} for iid, p in insts.items()}
    votes: dict[str, dict[str, int]] = {}
    for f in files:
        data = read_evaluation(f, known)
        for r in data["results"]:
            chose = int(bool(r.get("selectedWords")) and not r.get("noneSelected", False))
            votes.setdefault(r["instanceId"], {})[str(data["userId"])] = chose
    return {iid: int(np.mean(list(v.values())) >= threshold) for iid, v in votes.items()}


def interpretability_rates(
    sample_dir: Path,
    *,
    source: str = "judge",
    threshold: float = 0.5,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Rates per method x visual layer of the sample in ``sample_dir`` (``lens/sample``) from
    judge verdicts or a human majority; dirs without verdicts are skipped."""
    if source not in ("judge", "human"):
        raise InputError(f"--source {source!r}: choose judge, human or truth")
    if not 0 < threshold <= 1:
        raise InputError(f"--threshold must be in (0, 1], got {threshold}")
    rows = []
    for method, vl, d in _sample_dirs(sample_dir):
        v = verdicts_from_judge(d) if source == "judge" else verdicts_from_humans(d, threshold)
        if not v:
            continue
        rows.append(_rate_row(method, vl, -1, "sampled", np.array(list(v.values()), dtype=float),
                              n_resamples=n_resamples, seed=seed))  # fmt: skip
    if not rows:
        what = (
            "llm_judge_results/human_study_llm_results.json"
            if source == "judge"
            else "evaluation_*.json"
        )
        raise InputError(
            f"{sample_dir}: no {what} beside any sample file — judge or annotate the sample first"
        )
    return pd.DataFrame(rows, columns=list(RATE_COLUMNS))
