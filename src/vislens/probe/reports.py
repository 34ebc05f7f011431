"""The probe's reports, computed from the judge cache's answers and the attention files:
``per_case.csv``, ``summary.json``, ``prompt_sensitivity.csv``, ``stats/*`` and ``figs/*``
under ``probe/reports/`` (docs/formats/probe-reports.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from vislens.io import atomic_path, write_json_atomic
from vislens.probe.attention import read_case_npz
from vislens.probe.features import FEATURES, head_features
from vislens.probe.scoring import (
    mark_flips,
    metrics_for,
    prompt_sensitivity,
    score_answer,
    sensitivity_summary,
)
from vislens.probe.stats import MEAN_HEAD, localisation_table, rank_heads


class ProbeRun(Protocol):
    """What the reports read of a run (``vislens.probe.runner.ProbeRun``); a protocol, so this
    module and the runner do not import each other."""

    paths: Any
    cfg: Any
    cases: list[Any]
    counts: Any
    world: Any
    templates: Any
    layers: list[int]
    model_key: str
    generic_prompt: str
    show_progress: bool
    feature_cache: dict[str, Any]

    def attn_path(self, case: Any) -> Path: ...


SCHEMA_VERSION = 1

PER_CASE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "image",
    "target",
    "kind",
    "paraphrase_id",
    "question",
    "expected",
    "answer",
    "parsed",
    "parsed_row",
    "parsed_col",
    "parseable",
    "correct",
    "within_one",
    "outcome",
    "evidence",
    "group_id",
    "flips",
    "attn_file",
)
FEATURE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "target",
    "kind",
    "paraphrase_id",
    "outcome",
    "layer",
    "head",
    *FEATURES,
    "argmax_cell",
    "argmax_in_evidence",
    "n_evidence",
    "n_cells",
)
SUMMARY_KEYS: tuple[str, ...] = (
    "schema_version",
    "model",
    "templates",
    "generic_prompt",
    "query",
    "attention",
    "annotations",
    "grid",
    "targets",
    "n_images",
    "n_cases",
    "presence",
    "location",
    "prompt_sensitivity",
    "head_ranking",
    "localisation",
    "top_heads",
    "counts",
)


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def per_case_table(run: ProbeRun) -> pd.DataFrame:
    rows = []
    grid = run.world.grid
    for case in run.cases:
        answer = run.counts.answers[case.case_id]
        scored = score_answer(case.kind, case.expected, answer, grid)
        rows.append(
            {
                "case_id": case.case_id,
                "image": case.scene.image,
                "target": case.target.name,
                "kind": case.kind,
                "paraphrase_id": case.paraphrase_id,
                "question": case.question,
                "expected": case.expected,
                "answer": answer,
                **scored,
                "evidence": json.dumps(list(case.evidence)),
                "group_id": case.group_id,
                "attn_file": f"attn_cache/{case.case_id}.npz" if run.cfg.attention else "",
            }
        )
    df = pd.DataFrame(rows)
    df["flips"] = mark_flips(df)
    return df[list(PER_CASE_COLUMNS)]


def case_features(run: ProbeRun, case: Any) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """``(head features, head-mean argmax cell per layer, layers)`` of one case: kept from
    when its attention file was written in this run, else read back from that file."""
    kept = run.feature_cache.pop(case.case_id, None)
    if kept is not None:
        return kept
    data = read_case_npz(run.attn_path(case))
    return features_from_maps(
        data["attention"], data["generic"], case.evidence, data["meta"]["layers"]
    )


def features_from_maps(
    att16: np.ndarray, gen16: np.ndarray, evidence: tuple[int, ...], layers: list[int]
) -> tuple[dict[str, np.ndarray], np.ndarray, list[int]]:
    """Features of the float16 maps as stored (so fresh and resumed runs agree)."""
    f = head_features(att16, gen16, evidence)
    n_l = att16.shape[0]
    am = att16.astype(np.float32).mean(1).reshape(n_l, -1).argmax(-1)
    return f, am, list(layers)


def _feature_rows(run: ProbeRun, per_case: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-head features of every case (and the head-mean maps' localisation rows),
    streamed to ``stats/per_head_features.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vislens.progress import track

    out = run.paths.stats_dir / "per_head_features.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    outcome = dict(zip(per_case["case_id"], per_case["outcome"], strict=True))
    n_cells = run.world.grid * run.world.grid
    writer = None
    mean_rows: list[dict[str, Any]] = []
    with atomic_path(out) as tmp:
        chunk: dict[str, list[np.ndarray]] = {k: [] for k in FEATURE_COLUMNS}
        n_chunk = 0
        cases = run.cases
        it = track(cases, "probe: head features") if run.show_progress else cases
        for i, case in enumerate(it):
            f, am, layers = case_features(run, case)
            n_l, n_h = f["entropy"].shape
            n = n_l * n_h
            strings = {
                "case_id": case.case_id,
                "target": case.target.name,
                "kind": case.kind,
                "paraphrase_id": case.paraphrase_id,
                "outcome": outcome[case.case_id],
            }
            for key, value in strings.items():
                chunk[key].append(np.full(n, value, dtype=object))
            chunk["layer"].append(np.repeat(np.asarray(layers, dtype=np.int64), n_h))
            chunk["head"].append(np.tile(np.arange(n_h, dtype=np.int64), n_l))
            for key, value in f.items():
                chunk[key].append(np.asarray(value).reshape(-1))
            chunk["n_evidence"].append(np.full(n, len(case.evidence), dtype=np.int64))
            chunk["n_cells"].append(np.full(n, n_cells, dtype=np.int64))
            n_chunk += 1
            for li, layer in enumerate(layers):
                mean_rows.append(
                    {
                        "kind": case.kind,
                        "layer": int(layer),
                        "head": MEAN_HEAD,
                        "argmax_in_evidence": int(am[li]) in case.evidence,
                        "n_evidence": len(case.evidence),
                        "n_cells": n_cells,
                    }
                )
            if n_chunk >= 256 or i == len(cases) - 1:
                table = pa.table({k: np.concatenate(v) for k, v in chunk.items()})
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                chunk = {k: [] for k in FEATURE_COLUMNS}
                n_chunk = 0
        if writer is not None:
            writer.close()
    features = pd.read_parquet(out)
    return features, pd.DataFrame(mean_rows)


def _clean(obj: Any) -> Any:
    """NaN -> None, numpy scalars -> Python, for JSON."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _parse_heads(specs: list[str]) -> list[tuple[int, int]]:
    from vislens.errors import InputError

    out = []
    for s in specs:
        try:
            layer, head = (int(x) for x in s.split(":"))
        except ValueError:
            raise InputError(f"plot head {s!r}: write it as LAYER:HEAD, e.g. 2:1") from None
        out.append((layer, head))
    return out


def _figures(
    run: ProbeRun,
    per_case: pd.DataFrame,
    heads: list[tuple[int, int]],
    layer: int,
) -> list[str]:
    from PIL import Image

    from vislens.errors import InputError
    from vislens.probe.figures import case_figure, save_case_figure

    order = {
        "TP": 0,
        "FN": 1,
        "FP": 2,
        "TN": 3,
        "wrong": 4,
        "near": 5,
        "exact": 6,
        "unparseable": 7,
    }
    chosen = per_case.assign(_o=per_case["outcome"].map(order)).sort_values(
        ["_o", "case_id"], kind="stable"
    )
    by_id = {c.case_id: c for c in run.cases}
    written: list[str] = []
    for case_id, outcome in zip(chosen["case_id"], chosen["outcome"], strict=True):
        if len(written) >= run.cfg.n_figures:
            break
        case = by_id[case_id]
        data = read_case_npz(run.attn_path(case))
        att = data["attention"].astype(np.float32)
        layers = list(data["meta"]["layers"])
        for lay, head in [(layer, 0), *heads]:
            if lay not in layers or not 0 <= head < att.shape[1]:
                raise InputError(
                    f"plot layer/head {lay}:{head} out of range; layers {layers[0]}..{layers[-1]}, "
                    f"heads 0..{att.shape[1] - 1}"
                )
        panels = [(f"L{layer} head mean", att[layers.index(layer)].mean(0))]
        panels += [(f"L{lay} H{head}", att[layers.index(lay), head]) for lay, head in heads]
        with Image.open(case.scene.path) as im:
            image = im.convert("RGB")
        title = f"{case.question}  ->  {run.counts.answers[case_id]!r} [{outcome}]"
        fig = case_figure(image, panels, case.evidence, run.world.grid, title)
        name = f"{case_id}.png"
        save_case_figure(run.paths.figs_dir / name, fig)
        written.append(f"figs/{name}")
    return written


def _remove_stale(run: ProbeRun, figures: list[str]) -> None:
    """Drop figures and statistics an earlier run left that this run did not write (the
    attention files stay: they are the cache a later run resumes from)."""
    keep = {Path(f).name for f in figures}
    if run.paths.figs_dir.is_dir():
        for png in run.paths.figs_dir.glob("*.png"):
            if png.name not in keep:
                png.unlink()
    if not run.cfg.attention:
        for name in ("per_head_features.parquet", "head_rankings.csv", "head_localisation.csv"):
            (run.paths.stats_dir / name).unlink(missing_ok=True)


def write_reports(run: ProbeRun, *, show_progress: bool = True) -> dict[str, Any]:
    """Score, rank and draw; write every report; return the summary."""
    run.show_progress = show_progress
    cfg = run.cfg
    reports = run.paths.reports
    reports.mkdir(parents=True, exist_ok=True)
    per_case = per_case_table(run)
    templates = {p.id: p.template for k in run.templates.kinds.values() for p in k}
    sensitivity = prompt_sensitivity(per_case, templates)

    presence: dict[str, Any] = {}
    location: dict[str, Any] = {}
    for (target, kind), sub in per_case.groupby(["target", "kind"], sort=False):
        dest = presence if kind == "presence" else location
        dest[str(target)] = {
            "overall": metrics_for(str(kind), sub),
            "by_paraphrase": {
                str(pid): metrics_for(str(kind), part)
                for pid, part in sub.groupby("paraphrase_id", sort=False)
            },
        }

    head_ranking: dict[str, Any] = {"status": "no_attention", "message": "run with attention off"}
    localisation: dict[str, Any] = {"status": "no_attention"}
    top_heads: list[dict[str, Any]] = []
    if cfg.attention:
        features, mean_rows = _feature_rows(run, per_case)
        rankings, head_ranking = rank_heads(
            features[features["kind"] == "presence"], FEATURES, min_per_group=cfg.min_per_group
        )
        _write_csv(rankings, run.paths.stats_dir / "head_rankings.csv")
        loc = localisation_table(features, mean_rows)
        _write_csv(loc, run.paths.stats_dir / "head_localisation.csv")
        loc_all = loc[loc["kind"] == "all"]
        heads_only = loc_all[loc_all["head"] != MEAN_HEAD].sort_values(
            ["accuracy", "layer", "head"], ascending=[False, True, True], kind="stable"
        )
        means = loc_all[loc_all["head"] == MEAN_HEAD]
        localisation = {
            "status": "ok" if len(loc_all) else "no_evidence",
            "n_cases": int(heads_only["n_cases"].max()) if len(heads_only) else 0,
            "chance": float(heads_only["chance"].mean()) if len(heads_only) else None,
            "best_heads": heads_only.head(5)[["layer", "head", "accuracy"]].to_dict("records"),
            "head_mean_by_layer": {
                str(layer): float(acc)
                for layer, acc in zip(means["layer"], means["accuracy"], strict=True)
            },
        }
        if head_ranking["status"] == "ok":
            best = rankings[rankings["feature"] == "target_mass"].head(3)
            chosen = list(zip(best["layer"].astype(int), best["head"].astype(int), strict=True))
            head_ranking["top"] = (
                rankings[rankings["feature"] == "target_mass"]
                .head(5)[["layer", "head", "q_bh", "q_by", "rank_biserial", "cohens_d"]]
                .to_dict("records")
            )
            basis = "ranking"
        else:
            top3 = heads_only.head(3)
            chosen = list(zip(top3["layer"].astype(int), top3["head"].astype(int), strict=True))
            basis = "localisation"
        plot_heads = _parse_heads(cfg.plot_heads) or chosen
        tp = features[(features["outcome"] == "TP") & (features["kind"] == "presence")]
        for layer, head in chosen:
            g = tp[(tp["layer"] == layer) & (tp["head"] == head)]
            top_heads.append(
                {
                    "layer": layer,
                    "head": head,
                    "chosen_by": basis,
                    "n_tp": len(g),
                    "tp_target_ratio_mean": float(g["target_ratio"].mean()) if len(g) else None,
                    "tp_share_above_mean_cell": float((g["target_ratio"] > 1).mean())
                    if len(g)
                    else None,
                }
            )
        if cfg.plot_layer is not None:
            plot_layer = cfg.plot_layer
        elif len(means):
            plot_layer = int(
                means.sort_values("accuracy", ascending=False, kind="stable").iloc[0]["layer"]
            )
        else:
            plot_layer = run.layers[-1]
        localisation["figures"] = _figures(run, per_case, plot_heads, plot_layer)
        localisation["plot_layer"] = plot_layer

    _remove_stale(run, localisation.get("figures", []))
    _write_csv(per_case, reports / "per_case.csv")
    _write_csv(sensitivity, reports / "prompt_sensitivity.csv")
    summary = {
        "schema_version": SCHEMA_VERSION,
        "model": run.model_key,
        "templates": run.templates.version,
        "generic_prompt": run.generic_prompt,
        "query": cfg.query,
        "attention": cfg.attention,
        "annotations": str(run.world.annotations_path),
        "grid": [run.world.grid, run.world.grid],
        "targets": sorted({c.target.name for c in run.cases}),
        "n_images": len({c.scene.image_id for c in run.cases}),
        "n_cases": len(run.cases),
        "presence": presence,
        "location": location,
        "prompt_sensitivity": sensitivity_summary(per_case),
        "head_ranking": head_ranking,
        "localisation": localisation,
        "top_heads": top_heads,
        "counts": {
            "answers_generated": run.counts.answers_generated,
            "answers_cached": run.counts.answers_cached,
            "attention_computed": run.counts.attention_computed,
            "attention_cached": run.counts.attention_cached,
        },
    }
    summary = _clean(summary)
    write_json_atomic(reports / "summary.json", summary)
    return summary
