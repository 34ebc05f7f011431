"""LatentLens human-study layouts (seed 000), both ways. See docs/formats/latentlens-human-study.md.

- instances: ``data.json`` — a list of ``{id, image_url, candidates, patch_row, patch_col,
  model, layer, ...}``; or the similarities layout ``{"instances": [{instance_id, neighbors:
  [{token_str, source_caption, ...}]}]}`` that a lens run writes;
- per-annotator results: ``evaluation_<user>_<session>.json`` — ``{userId, sessionId,
  timestamp, results: [{instanceId, selectedWords: [{word, relation}], noneSelected,
  timestamp}]}``;
- judge results: ``human_study_llm_results.json`` — ``{"results": [{instance_id,
  gpt_response: {interpretable, concrete_words, abstract_words, global_words}}]}`` (the
  verdict may also sit at the top level of each result).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vislens.errors import InputError
from vislens.human.kinds import RELATIONS
from vislens.human.seed002 import read_json
from vislens.io import write_json_atomic

EVALUATION_KEYS = ("userId", "sessionId", "timestamp", "results")
RESULT_KEYS = ("instanceId", "selectedWords", "noneSelected", "timestamp")
LLM_RESULT_KEYS = (
    "instance_id",
    "interpretable",
    "concrete_words",
    "abstract_words",
    "global_words",
)
DEFAULT_GRID = 24
"""Patches per side when an instance does not say (LatentLens: 336-px images, 14-px patches)."""


def _candidates_view(rec: dict[str, Any], where: str) -> list[dict[str, str]]:
    """Normalise candidates to ``{word, token, sentence}``; ``word`` is what gets stored."""
    out = []
    if "candidates" in rec:
        for c in rec["candidates"]:
            if isinstance(c, str):
                out.append({"word": c, "token": c, "sentence": ""})
            elif isinstance(c, list) and c and all(isinstance(x, str) for x in c):
                # Contextual candidates: [sentence, token]; the sentence is what is selected.
                out.append({"word": c[0], "token": c[1] if len(c) > 1 else c[0], "sentence": c[0]})
            else:
                raise InputError(
                    f"{where}: candidate {c!r} is neither a word nor [sentence, token]"
                )
    elif "neighbors" in rec:
        for n in rec["neighbors"]:
            if not isinstance(n, dict) or "token_str" not in n:
                raise InputError(f"{where}: neighbour {n!r} has no 'token_str'")
            out.append(
                {
                    "word": n["token_str"],
                    "token": n["token_str"],
                    "sentence": n.get("source_caption", ""),
                }
            )
    else:
        raise InputError(f"{where}: no 'candidates' (data.json) or 'neighbors' (lens run) list")
    return out


def read_instances(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(instance id, item payload) for each instance of a data.json or lens-run file."""
    path = Path(path)
    data = read_json(path)
    recs = data.get("instances") if isinstance(data, dict) else data
    if not isinstance(recs, list):
        raise InputError(f"{path}: expected a list of instances or {{'instances': [...]}}")
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, rec in enumerate(recs):
        where = f"{path}: instance {i}"
        if not isinstance(rec, dict):
            raise InputError(f"{where}: expected an object")
        iid = rec.get("id", rec.get("instance_id"))
        if not isinstance(iid, str) or not iid:
            raise InputError(f"{where}: no string 'id' (or 'instance_id')")
        if iid in seen:
            raise InputError(f"{where}: id {iid!r} appears twice")
        seen.add(iid)
        grid_raw = rec.get("grid") or rec.get("grid_size") or DEFAULT_GRID
        if isinstance(grid_raw, bool) or not isinstance(grid_raw, int) or grid_raw < 1:
            raise InputError(
                f"{where} ({iid}): 'grid' must be a positive integer (patches per side), "
                f"got {grid_raw!r}"
            )
        for key in ("patch_row", "patch_col"):
            v = rec.get(key)
            if isinstance(v, bool) or not isinstance(v, int):
                raise InputError(f"{where} ({iid}): '{key}' must be an integer")
            if not 0 <= v < grid_raw:
                raise InputError(
                    f"{where} ({iid}): '{key}' is {v}, outside the {grid_raw}×{grid_raw} patch "
                    f"grid (0..{grid_raw - 1}); set 'grid' if the image has more patches"
                )
        image = (
            rec.get("image_url") or rec.get("image_path") or rec.get("original_image_path") or ""
        )
        payload = {
            "source": rec,
            # The judge keys its results by instance_id when a record has one; keep it to match.
            "aliases": [str(rec["instance_id"])]
            if rec.get("instance_id") and rec.get("id")
            else [],
            "image": image,
            "patch_row": rec["patch_row"],
            "patch_col": rec["patch_col"],
            "grid": grid_raw,
            "model": rec.get("model", ""),
            "candidates_view": _candidates_view(rec, f"{where} ({iid})"),
        }
        out.append((iid, payload))
    if not out:
        raise InputError(f"{path}: no instances")
    return out


def write_instances(path: Path, payloads: list[dict[str, Any]]) -> None:
    """data.json: each instance's original record, with ``id`` and ``candidates`` filled in."""
    out = []
    for p in payloads:
        rec = dict(p.get("source", {}))
        rec.setdefault("id", rec.get("instance_id"))
        rec.setdefault("image_url", p.get("image", ""))
        rec.setdefault("patch_row", p.get("patch_row"))
        rec.setdefault("patch_col", p.get("patch_col"))
        rec.setdefault("model", p.get("model", ""))
        if "candidates" not in rec:
            rec["candidates"] = [
                [c["sentence"], c["token"]] if c["sentence"] else c["word"]
                for c in p["candidates_view"]
            ]
        out.append(rec)
    write_json_atomic(Path(path), out)


def evaluation_name(user: str, session: str) -> str:
    """``evaluation_<user>_<session>.json`` with path separators made safe."""
    safe = re.sub(r"[/\\\x00]", "_", f"{user}_{session}")
    return f"evaluation_{safe}.json"


def read_evaluation(path: Path, known: dict[str, set[str]]) -> dict[str, Any]:
    """Read one annotator file, checking every instance id against ``known`` (id → words)
    and every relation against concrete/abstract/global."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected an object with userId, sessionId, results")
    for key in ("userId", "results"):
        if key not in data:
            raise InputError(f"{path}: missing key {key!r}")
    if not isinstance(data["results"], list):
        raise InputError(f"{path}: 'results' must be a list")
    for i, r in enumerate(data["results"]):
        where = f"{path}: results[{i}]"
        if not isinstance(r, dict):
            raise InputError(f"{where}: expected an object")
        iid = r.get("instanceId")
        if iid not in known:
            raise InputError(
                f"{where}: unknown instanceId {iid!r} — it is not in the task's instances"
            )
        words = r.get("selectedWords", [])
        if not isinstance(words, list):
            raise InputError(f"{where} ({iid}): 'selectedWords' must be a list")
        for w in words:
            if not isinstance(w, dict) or w.get("relation") not in RELATIONS:
                raise InputError(
                    f"{where} ({iid}): selected word {w!r} needs a relation in {', '.join(RELATIONS)}"
                )
            if w.get("word") not in known[iid]:
                raise InputError(
                    f"{where} ({iid}): word {w.get('word')!r} is not one of the instance's candidates"
                )
    return data


def read_llm_results(path: Path) -> dict[str, dict[str, Any]]:
    """instance id → judge verdict ``{interpretable, concrete_words, ...}``."""
    path = Path(path)
    data = read_json(path)
    recs = data.get("results", data.get("instances")) if isinstance(data, dict) else data
    if not isinstance(recs, list):
        raise InputError(f"{path}: expected {{'results': [...]}} or a list of judge results")
    out: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(recs):
        if not isinstance(r, dict):
            raise InputError(f"{path}: results[{i}] is not an object")
        iid = r.get("instance_id", r.get("instanceId", r.get("id")))
        if "error" in r and "gpt_response" not in r:
            continue  # the judge failed on this instance: no verdict, not a malformed file
        body = r.get("gpt_response", r.get("response", r))
        if (
            not isinstance(iid, str)
            or not isinstance(body, dict)
            or not isinstance(body.get("interpretable"), bool)
        ):
            raise InputError(
                f"{path}: results[{i}] needs a string 'instance_id' and a boolean 'interpretable'"
            )
        out[iid] = {
            "interpretable": body["interpretable"],
            **{
                k: list(body.get(k, []))
                for k in ("concrete_words", "abstract_words", "global_words")
            },
        }
    return out


def write_llm_results(path: Path, verdicts: dict[str, dict[str, Any]], judge: str) -> None:
    results = [
        {"instance_id": iid, "judge": judge, "gpt_response": v} for iid, v in verdicts.items()
    ]
    write_json_atomic(
        Path(path), {"total_instances": len(results), "evaluated": len(results), "results": results}
    )
