"""Ground truth decides: per architecture, the best feature's AUROC for each of the toy
world's 11 colour and shape concepts, among occupied cells (docs/sae.md's table).

Extracts the toy tower's patch tokens of ``--n`` grid-world scenes (seed 0), trains each
architecture on them and scores it with ``vislens.sae.groundtruth.sae_concept_auroc``.

    python bench/sae_groundtruth.py [--n 200] [--layer 2] [--steps 800] [--arch topk ...] [--set k=16]
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time

import torch

from vislens.sae.groundtruth import sae_concept_auroc, toy_patch_activations
from vislens.sae.train import TrainConfig, train_sae

SETTINGS = {
    "topk": {"k": 4},
    "batchtopk": {"k": 4},
    "jumprelu": {"l0_coefficient": 1e-3},
    "standard": {"l1_coefficient": 3e-2},
    "matryoshka": {"k": 4},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--d-sae", type=int, default=384)
    ap.add_argument("--arch", nargs="*", default=list(SETTINGS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a TrainConfig field for every architecture, e.g. --set k=16")  # fmt: skip
    ap.add_argument(
        "--quick", action="store_true", help="100 scenes, 300 steps: the same table, smaller"
    )
    a = ap.parse_args()
    if a.quick:
        a.n, a.steps = min(a.n, 100), min(a.steps, 300)
    torch.set_num_threads(1)
    acts, labels = toy_patch_activations(a.n, a.layer)
    x = torch.from_numpy(acts.reshape(-1, acts.shape[-1]))
    print(
        f"toy tower layer {a.layer}: {x.shape[0]} patch tokens, {int(labels.occupied_nc.sum())} occupied"
    )
    overrides = {kv.split("=", 1)[0]: ast.literal_eval(kv.split("=", 1)[1]) for kv in a.set}
    rows = []
    for arch in a.arch:
        cfg = TrainConfig(architecture=arch, d_sae=a.d_sae, n_steps=a.steps, batch_size=512,  # type: ignore[arg-type]
                          checkpoint_every=0, **(SETTINGS[arch] | overrides))  # fmt: skip
        t = time.perf_counter()
        sae, m = train_sae(x, tempfile.mkdtemp(), cfg)
        dt = time.perf_counter() - t
        tab = sae_concept_auroc(sae, acts, labels)
        rows.append((arch, dt, m, tab))
        print(f"{arch}: {dt:.1f}s, EV {m.explained_variance:.3f}, L0 {m.l0:.1f}, dead {m.dead_fraction:.1%}, "
              f"found {int(tab.found.sum())}/11, min {tab.auroc.min():.3f}", flush=True)  # fmt: skip
    concepts = list(rows[0][3].concept)
    print("\n| architecture | " + " | ".join(concepts) + " | found | train s | EV | L0 | dead |")
    print("| --- " * (len(concepts) + 6) + "|")
    for arch, dt, m, tab in rows:
        cells = " | ".join(f"{v:.2f}" for v in tab.auroc)
        print(f"| {arch} | {cells} | {int(tab.found.sum())}/11 | {dt:.0f} | {m.explained_variance:.3f} | "
              f"{m.l0:.1f} | {m.dead_fraction:.0%} |")  # fmt: skip


if __name__ == "__main__":
    main()
