"""Layer alignment (LatentLens, Fig. "which contextual layers do visual tokens match"):
for each visual layer, the distribution of the contextual layers its top-k neighbours
come from."""

from __future__ import annotations

from typing import Any

import pandas as pd

ALIGNMENT_COLUMNS = ("visual_layer", "contextual_layer", "count", "fraction")


def layer_alignment(table: pd.DataFrame) -> pd.DataFrame:
    """Long table ``ALIGNMENT_COLUMNS`` from the LatentLens rows of a neighbours table;
    fractions sum to 1 per visual layer (every contextual layer listed, zeros included)."""
    ll = table[table["method"] == "latentlens"]
    counts = pd.crosstab(ll["visual_layer"], ll["contextual_layer"])
    stacked: Any = counts.stack()
    long = stacked.rename("count").reset_index()
    totals = long.groupby("visual_layer")["count"].transform("sum")
    long["fraction"] = long["count"] / totals
    long = long.astype({"visual_layer": "int64", "contextual_layer": "int64", "count": "int64"})
    return (
        long[list(ALIGNMENT_COLUMNS)]
        .sort_values(["visual_layer", "contextual_layer"])
        .reset_index(drop=True)
    )


def alignment_matrix(alignment: pd.DataFrame) -> pd.DataFrame:
    """Visual layer x contextual layer fractions (for the heatmap)."""
    return alignment.pivot(
        index="visual_layer", columns="contextual_layer", values="fraction"
    ).fillna(0.0)
