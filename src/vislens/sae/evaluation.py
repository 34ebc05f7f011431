"""``vislens sae eval``: an SAE's reconstruction and sparsity on stored activations, as a
JSON report plus a feature-frequency histogram figure (``sae/<name>/eval/``).

The histogram is over log10 of each feature's firing frequency (dead features, frequency
0, are counted apart), as SAELens and saev plot it: a healthy dictionary is one bump well
above the dead / below the dense end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vislens.io import atomic_path, write_json_atomic
from vislens.sae.metrics import DENSE_FREQUENCY, SAEMetrics

EVAL_DIR = "eval"
REPORT_FILE = "eval.json"
FIGURE_FILE = "feature_frequency.png"
SCHEMA_VERSION = 2
HIST_BINS = np.arange(-8.0, 0.01, 0.25)
"""log10-frequency bin edges of the histogram."""


def frequency_histogram(freq_f: np.ndarray) -> dict[str, Any]:
    """Counts of log10(frequency) in ``HIST_BINS`` for firing features, plus the dead count."""
    f = np.asarray(freq_f, np.float64)
    alive = f[f > 0]
    counts, edges = np.histogram(np.clip(np.log10(alive), HIST_BINS[0], 0.0), bins=HIST_BINS)
    return {
        "log10_edges": edges.round(4).tolist(),
        "counts": counts.tolist(),
        "n_dead": int((f == 0).sum()),
    }


def write_eval_report(
    metrics: SAEMetrics, freq_f: np.ndarray, out_dir: Path, *, context: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``eval.json`` and ``feature_frequency.png`` into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hist = frequency_histogram(freq_f)
    doc = {"schema_version": SCHEMA_VERSION, **(context or {}), "metrics": metrics.as_dict(),
           "dense_frequency": DENSE_FREQUENCY, "frequency_histogram": hist}  # fmt: skip
    write_json_atomic(out_dir / REPORT_FILE, doc)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    edges = np.asarray(hist["log10_edges"])
    ax.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color="#4c72b0")
    ax.axvline(np.log10(DENSE_FREQUENCY), color="#c44e52", ls="--", lw=1, label="dense")
    ax.set_xlabel("log10 firing frequency")
    ax.set_ylabel("features")
    ax.set_title(
        f"{len(freq_f)} features · {hist['n_dead']} dead · L0 {metrics.l0:.1f} · EV {metrics.explained_variance:.3f}"
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    with atomic_path(out_dir / FIGURE_FILE) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return [out_dir / REPORT_FILE, out_dir / FIGURE_FILE]
