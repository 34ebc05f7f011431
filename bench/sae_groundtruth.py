"""Ground truth decides: per architecture, the best feature's AUROC for each of the toy
world's 11 colour and shape concepts, among occupied cells (docs/sae.md's table), beside
the two references it is bounded by on the same tokens.

Extracts the toy tower's patch tokens of ``--n`` grid-world scenes (seed 0), prints the
held-out linear-probe AUROC per concept at every tower layer (is the concept linearly
there?) and the class-mean direction's AUROC at ``--layer`` (where a feature learnt by
reconstruction tends to point), then trains each architecture on the tokens, ``--seeds``
times, and scores it with ``vislens.sae.groundtruth.sae_concept_auroc``.

    python bench/sae_groundtruth.py [--n 200] [--layer 2] [--steps 800] [--seeds 1]
                                    [--arch topk ...] [--set k=16] [--quick]
"""

from __future__ import annotations

import argparse
import ast
import tempfile
import time

import numpy as np
import torch

from vislens.sae.groundtruth import (
    AUROC_GOAL,
    CONCEPTS,
    mean_direction_auroc,
    probe_ceiling,
    sae_concept_auroc,
    toy_patch_activations,
)
from vislens.sae.train import TrainConfig, train_sae

TOWER_LAYERS = (0, 1, 2)
SETTINGS = {
    "topk": {"k": 16, "dead_window": 20},
    "batchtopk": {"k": 16, "dead_window": 20},
    "jumprelu": {"l0_coefficient": 1e-3},
    "standard": {"l1_coefficient": 3e-2},
    "matryoshka": {"k": 16, "dead_window": 20},
}


def _row(name: str, aurocs: list[float], extra: str = "") -> str:
    found = sum(a >= AUROC_GOAL for a in aurocs)
    cells = " | ".join(f"{a:.2f}" for a in aurocs)
    return f"| {name} | {cells} | {found}/{len(aurocs)} |{extra}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--d-sae", type=int, default=384)
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per architecture")
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
    head = "| | " + " | ".join(CONCEPTS) + " | ≥ 0.95 |"
    rule = "| --- " * (len(CONCEPTS) + 2) + "|"
    print(f"references on {a.n} scenes (probe: fit on 75% of the scenes, AUROC on the rest)\n")
    print(head + "\n" + rule)
    acts = labels = None
    for layer in TOWER_LAYERS:
        layer_acts, layer_labels = toy_patch_activations(a.n, layer)
        probe = probe_ceiling(layer_acts, layer_labels)
        print(_row(f"linear probe, layer {layer}", list(probe.auroc)), flush=True)
        if layer == a.layer:
            acts, labels = layer_acts, layer_labels
    if acts is None or labels is None:
        acts, labels = toy_patch_activations(a.n, a.layer)
    print(
        _row(
            f"class-mean direction, layer {a.layer}", list(mean_direction_auroc(acts, labels).auroc)
        )
    )
    x = torch.from_numpy(acts.reshape(-1, acts.shape[-1]))
    print(f"\ntoy tower layer {a.layer}: {x.shape[0]} patch tokens, "
          f"{int(labels.occupied_nc.sum())} occupied; {a.d_sae} features, {a.steps} steps of 512\n")  # fmt: skip
    overrides = {kv.split("=", 1)[0]: ast.literal_eval(kv.split("=", 1)[1]) for kv in a.set}
    print(head + " train s | EV | L0 | dead |\n" + rule + " --- | --- | --- | --- |")
    summary = []
    for arch in a.arch:
        found = []
        for seed in range(a.seeds):
            cfg = TrainConfig(architecture=arch, d_sae=a.d_sae, n_steps=a.steps, batch_size=512,  # type: ignore[arg-type]
                              checkpoint_every=0, seed=seed, **(SETTINGS[arch] | overrides))  # fmt: skip
            t = time.perf_counter()
            sae, m = train_sae(x, tempfile.mkdtemp(), cfg)
            dt = time.perf_counter() - t
            tab = sae_concept_auroc(sae, acts, labels)
            found.append(int(tab.found.sum()))
            name = arch if a.seeds == 1 else f"{arch}, seed {seed}"
            extra = f" {dt:.0f} | {m.explained_variance:.3f} | {m.l0:.1f} | {m.dead_fraction:.0%} |"
            print(_row(name, list(tab.auroc), extra), flush=True)
        summary.append(
            f"{arch}: {np.mean(found):.1f}/11 found on average ({min(found)}–{max(found)})"
        )
    if a.seeds > 1:
        print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
