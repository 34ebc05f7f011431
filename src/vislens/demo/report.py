"""The scorecard as printed lines (a table per lens)."""

from __future__ import annotations

from typing import Any


def scorecard_lines(card: dict[str, Any]) -> list[str]:
    lines = ["", "scorecard against ground truth"]
    sae = card.get("sae")
    if sae:
        lines.append(
            f"SAE: {sae['n_found']}/{sae['n_concepts']} concepts have a feature with AUROC ≥ "
            f"{sae['auroc_goal']} among occupied cells ({sae['n_found_monosemantic']} of them "
            f"monosemantic by MS); dead features {sae['dead_fraction']:.0%}"
        )
        lines.append(f"  {'concept':<10} {'feature':>7} {'AUROC':>6}  {'MS':>6} band")
        for r in sae["concepts"]:
            lines.append(
                f"  {r['concept']:<10} {r['best_feature']:>7} {r['auroc']:>6.3f}  "
                f"{r['ms']:>6.3f} {r['ms_band']}"
            )
    if card.get("lens"):
        lines += lens_lines(card["lens"])
    if card.get("probe"):
        lines += probe_lines(card["probe"])
    if card.get("map"):
        m = card["map"]
        lines.append(
            f"Map: {m['n_items']} images ({m['coords']}); the toy names the shape of the first "
            f"object right for {_pct(m['toy_accuracy'])} ({m['mis_csv']}, {m['correct_csv']})"
        )
    return lines


def _pct(v: Any) -> str:
    return "  -  " if v is None else f"{float(v):5.1%}"


def lens_lines(lens: dict[str, Any]) -> list[str]:
    by = lens["rate_by_visual_layer"]
    layers = sorted({int(k) for v in by.values() for k in v})
    lines = [
        f"LatentLens vs baselines ({lens['n_images']} images): object cells whose top-5 names "
        "the cell's shape or colour, by visual layer",
        "  " + f"{'method':<14}" + "".join(f"{'L' + str(k):>8}" for k in layers),
    ]
    for method, rates in sorted(by.items()):
        lines.append(
            "  " + f"{method:<14}" + "".join(f"{_pct(rates.get(str(k))):>8}" for k in layers)
        )
    return lines


def probe_lines(probe: dict[str, Any]) -> list[str]:
    lines = [
        "Visual-search probe: presence precision / recall (trained phrasing | all paraphrases), "
        "location accuracy"
    ]
    trained, every, loc = (
        probe["presence_trained_phrasing"],
        probe["presence_all_paraphrases"],
        probe["location"],
    )
    for t in trained:
        a, b, c = trained[t], every.get(t, {}), loc.get(t, {})
        lines.append(
            f"  {t:<14} P {_pct(a.get('precision'))} R {_pct(a.get('recall'))} | "
            f"P {_pct(b.get('precision'))} R {_pct(b.get('recall'))}   "
            f"location {_pct(c.get('accuracy'))} (±1 cell {_pct(c.get('accuracy_within_one'))})"
        )
    lines.append(f"  heads TP vs FN: {probe['head_ranking']}")
    chance = probe.get("localisation_chance")
    for h in probe["top_heads"]:
        lines.append(
            f"  top head L{h['layer']}.H{h['head']}: argmax cell is an evidence cell in "
            f"{_pct(h['localisation'])} of cases (chance {_pct(chance)})"
        )
    return lines
