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
    return lines
