"""Static figures of the lens stage (matplotlib, Agg): layer alignment and rates vs layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vislens.io import atomic_path

METHOD_LABELS = {
    "latentlens": "LatentLens",
    "embeddinglens": "EmbeddingLens",
    "logitlens": "LogitLens",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def alignment_heatmap(fractions: pd.DataFrame, out_path: Path) -> Path:
    """Visual layer (rows) x contextual layer (columns) share of top-k neighbours."""
    plt = _plt()
    fig, ax = plt.subplots(
        figsize=(1.2 + 0.6 * fractions.shape[1], 1.0 + 0.45 * fractions.shape[0])
    )
    im = ax.imshow(fractions.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(fractions.shape[1]), [str(c) for c in fractions.columns])
    ax.set_yticks(range(fractions.shape[0]), [str(r) for r in fractions.index])
    ax.set_xlabel("contextual layer of the neighbour")
    ax.set_ylabel("visual layer")
    for i in range(fractions.shape[0]):
        for j in range(fractions.shape[1]):
            v = float(fractions.to_numpy()[i, j])
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                color="w" if v < 0.6 else "k",
                fontsize=7,
            )
    fig.colorbar(im, ax=ax, label="share of top-k neighbours")
    ax.set_title("LatentLens layer alignment")
    fig.tight_layout()
    with atomic_path(Path(out_path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_path)


def rates_figure(rates: pd.DataFrame, out_path: Path, *, title: str = "") -> Path:
    """Interpretability rate vs visual layer, one line per method, bootstrap CIs as bands."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method, g in rates.groupby("method", sort=False):
        g = g.sort_values("visual_layer")
        x = g["visual_layer"].to_numpy()
        ax.plot(x, 100 * g["rate"], marker="o", label=METHOD_LABELS.get(str(method), str(method)))
        ax.fill_between(x, 100 * g["ci_low"], 100 * g["ci_high"], alpha=0.2)
    ax.set_xlabel("visual layer")
    ax.set_ylabel("interpretable tokens (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title(title or "Interpretability rate by layer")
    fig.tight_layout()
    with atomic_path(Path(out_path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_path)
