"""Cost of the visual-search probe on the toy VLM: cases/s with and without the attention
dump, and peak memory against the number of cases.

(a) The same cases (one target, every paraphrase) are probed in this process with the
model loaded once, each time in a fresh copy of the world (empty judge cache), twice with
``--no-attention`` (the reference) and twice with the dump, interleaved, best of two (attention captured during
generation, the generic prompt's map, the npz files, head features and figures).
Goal: the dump adds under 30%.
(b) Peak RSS of a fresh process probing a small and a ten times larger set of cases,
minus its RSS after loading the model. Goal: independent of the number of cases.

    python bench/probe.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import figure


def common_targets(world: Path, k: int) -> list[str]:
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for line in (world / "annotations.jsonl").read_text().splitlines():
        counts.update({(o["color"], o["shape"]) for o in json.loads(line)["objects"]})
    return [f"{c} {s}" for (c, s), _ in counts.most_common(k)]


def child(world: str, n_images: int, n_targets: int, threads: int) -> None:
    """Run in a fresh process: probe, then print RSS after load and peak RSS (MiB)."""
    import resource
    import tracemalloc

    import torch

    from vislens.models.toy import load_toy_vlm
    from vislens.probe import run_probe

    torch.set_num_threads(threads)
    vlm = load_toy_vlm()
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()  # numpy and Python allocations (torch's own are not traced)
    summary = run_probe(
        world,
        model="toy",
        targets=common_targets(Path(world), n_targets),
        n_images=n_images,
        kinds=["presence"],
        vlm=vlm,
        n_figures=4,
        show_progress=False,
    )
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"n_cases": summary["n_cases"], "after_load": after_load, "peak": peak, "traced": traced}
    print(json.dumps(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases (about 2 minutes)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), args.threads)
        return

    import torch

    from vislens.data.synthetic import generate_grid_world
    from vislens.models.toy import load_toy_vlm
    from vislens.probe import run_probe

    torch.set_num_threads(args.threads)
    os.environ.setdefault("VISLENS_NO_PROGRESS", "1")
    n_speed = 16 if args.quick else 50  # images (half with the target) x 11 questions
    mem_small, mem_large = (2, 12) if args.quick else (3, 28)  # images per target; 6 targets x 6
    tmp = Path(tempfile.mkdtemp(prefix="vislens-bench-probe-"))
    try:
        base = tmp / "world"
        generate_grid_world(base, 400, seed=21, show_progress=False)
        target = common_targets(base, 1)[0]
        vlm = load_toy_vlm()
        rates: dict[bool, float] = {False: 0.0, True: 0.0}
        n_cases = 0
        # Interleaved and repeated, best of each kept, so load changes on a shared machine
        # hit both alike.
        for rep, attention in enumerate((False, True, False, True)):
            world = tmp / f"world-{rep}"
            shutil.copytree(base, world)
            t0 = time.perf_counter()
            s = run_probe(
                world,
                model="toy",
                targets=[target],
                n_images=n_speed,
                attention=attention,
                vlm=vlm,
                n_figures=4,
                show_progress=False,
            )
            rates[attention] = max(rates[attention], s["n_cases"] / (time.perf_counter() - t0))
            n_cases = s["n_cases"]
        extra = rates[False] / rates[True] - 1
        print(
            f"toy VLM probe, {n_cases} cases (1 target, 11 paraphrases), {args.threads} thread(s)"
        )
        print(f"{'':<28}{'cases/s':>10}")
        print(f"{'answers only (reference)':<28}{rates[False]:>10.1f}")
        print(f"{'answers + attention dump':<28}{rates[True]:>10.1f}")
        print(f"attention dump extra time: {extra:+.1%} (goal < +30%)")
        figure(
            "probe cases/s with attention dump",
            rates[True],
            "cases/s",
            reference="answers only",
            reference_value=rates[False],
            goal="dump adds < 30% time",
            met=extra < 0.30,
            note=f"extra time {extra:+.1%}; {n_cases} cases; {args.threads} thread(s)",
        )
        mem = {}
        for n_img in (mem_small, mem_large):
            world = tmp / f"mem-{n_img}"
            shutil.copytree(base, world)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    str(world),
                    str(n_img),
                    "6",
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            mem[n_img] = json.loads(out.strip().splitlines()[-1])
        small, large = mem[mem_small], mem[mem_large]
        grow_s = small["peak"] - small["after_load"]
        grow_l = large["peak"] - large["after_load"]
        print(
            f"{'cases':>8}{'RSS after load MiB':>20}{'peak MiB':>10}{'growth MiB':>12}"
            f"{'traced peak MiB':>17}"
        )
        for m in (small, large):
            print(
                f"{m['n_cases']:>8}{m['after_load']:>20.0f}{m['peak']:>10.0f}"
                f"{m['peak'] - m['after_load']:>12.0f}{m['traced']:>17.1f}"
            )
        figure(
            f"probe peak memory growth at {large['n_cases']} cases",
            grow_l,
            "MiB",
            reference=f"at {small['n_cases']} cases",
            reference_value=grow_s,
            goal="independent of the number of cases",
            met=grow_l <= grow_s + 50,
            note=(
                f"peak RSS {large['peak']:.0f} vs {small['peak']:.0f} MiB; traced (numpy + "
                f"Python) peak {large['traced']:.1f} vs {small['traced']:.1f} MiB"
            ),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
