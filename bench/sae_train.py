"""Training throughput of `vislens sae train` (TopK) beside a bare PyTorch loop of the same SAE.

The bare loop is the floor: forward (x − b_dec) @ W_enc + b_enc, top-k, decode, MSE,
backward, Adam step — nothing else. vislens adds unit-norm decoder upkeep, AuxK, dead
tracking, the LR schedule and metrics; its per-step cost is measured as the difference of
two runs of different length (so the fixed init / save / eval cost drops out). Goal:
≥ 85% of the floor. The sae-lens row is sae-lens' own ``SAETrainer`` fed the same batches
from an in-memory iterator (its ``TopKTrainingSAE`` with its default AuxK, gradient clipping
and dead-feature tracking; wandb off), timed the same way; it runs only where sae-lens is
importable and prints "not run" with the reason elsewhere (sae-lens is not a vislens
dependency: install it in a separate environment and run this file with that Python and
``PYTHONPATH=src:bench``).

    python bench/sae_train.py            # d_in 768, d_sae 24,576, batch 4,096 (slow on a CPU)
    python bench/sae_train.py --quick    # d_sae 4,096, batch 1,024
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Iterator

import torch

from _report import figure
from vislens.sae.train import TrainConfig, train_sae


def bare_loop(x: torch.Tensor, d_sae: int, k: int, batch: int, steps: int) -> float:
    """Seconds per step of the plain TopK SAE loop."""
    d = x.shape[1]
    W_dec = torch.nn.Parameter(torch.randn(d_sae, d) / d**0.5)
    W_enc = torch.nn.Parameter(W_dec.detach().T.clone())
    b_enc = torch.nn.Parameter(torch.zeros(d_sae))
    b_dec = torch.nn.Parameter(torch.zeros(d))
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=1e-4)
    times = []
    for s in range(steps + 1):
        xb = x[(s * batch) % (x.shape[0] - batch) :][:batch]
        t = time.perf_counter()
        h = (xb - b_dec) @ W_enc + b_enc
        top = torch.topk(h, k, dim=-1)
        codes = torch.zeros_like(h).scatter(-1, top.indices, torch.relu(top.values))
        loss = ((codes @ W_dec + b_dec - xb) ** 2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s:  # the first step warms the allocator up
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def vislens_step(x: torch.Tensor, d_sae: int, k: int, batch: int, steps: int) -> float:
    """Seconds per step of train_sae, from two runs of different length."""
    out = []
    for n in (2, 2 + steps):
        cfg = TrainConfig(architecture="topk", d_sae=d_sae, k=k, batch_size=batch, n_steps=n,
                          checkpoint_every=0, dead_window=max(1, steps // 2), lr=1e-4)  # fmt: skip
        t = time.perf_counter()
        train_sae(x, tempfile.mkdtemp(), cfg, eval_acts=x[:batch])
        out.append(time.perf_counter() - t)
    return (out[1] - out[0]) / steps


def _batches(x: torch.Tensor, batch: int) -> Iterator[torch.Tensor]:
    for s in itertools.count():
        yield x[(s * batch) % (x.shape[0] - batch) :][:batch]


def saelens_step(
    x: torch.Tensor, d_sae: int, k: int, batch: int, steps: int
) -> tuple[float | None, str]:
    """Seconds per step of sae-lens' trainer, from two runs of different length, or
    ``(None, why not)``."""
    try:
        import sae_lens
        from sae_lens.config import LoggingConfig, SAETrainerConfig
    except ImportError:
        return None, "not run (sae-lens is not installed in this environment)"
    version = getattr(sae_lens, "__version__", "?")
    out = []
    try:
        for n in (2, 2 + steps):
            sae = sae_lens.TopKTrainingSAE(
                sae_lens.TopKTrainingSAEConfig(d_in=x.shape[1], d_sae=d_sae, k=k)
            )
            cfg = SAETrainerConfig(total_training_samples=n * batch, train_batch_size_samples=batch, lr=1e-4, lr_end=1e-5,
                                   device="cpu", logger=LoggingConfig(log_to_wandb=False))  # fmt: skip
            t = time.perf_counter()
            sae_lens.SAETrainer(cfg, sae, _batches(x, batch)).fit()
            out.append(time.perf_counter() - t)
    except Exception as e:  # an sae-lens version whose API differs: say so, keep the rest
        return None, f"not run (sae-lens {version}: {type(e).__name__}: {e})"
    return (out[1] - out[0]) / steps, f"sae-lens {version}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d, d_sae, batch, k = (768, 4096, 1024, 32) if a.quick else (768, 24576, 4096, 64)
    steps = a.steps or (20 if a.quick else 5)
    x = torch.randn(batch * 8, d)
    floor = bare_loop(x, d_sae, k, batch, steps)
    ours = vislens_step(x, d_sae, k, batch, steps)
    print(f"d_in {d}, d_sae {d_sae}, batch {batch}, k {k}, {a.threads} threads, {steps} steps")
    print(f"bare PyTorch loop : {batch / floor:10.0f} tokens/s")
    print(f"vislens sae train : {batch / ours:10.0f} tokens/s  ({floor / ours:.0%} of the floor)")
    shape = f"TopK d_in {d}, d_sae {d_sae}, batch {batch}, k {k}"
    figure(
        f"train {shape}: tokens/s", batch / ours, "tokens/s", reference="bare PyTorch loop of the same SAE",
        reference_value=batch / floor, goal=">= 85% of the bare loop", met=None if a.quick else floor / ours >= 0.85,
        note=f"{a.threads} thread(s), {steps} steps",
    )  # fmt: skip
    theirs, label = saelens_step(x, d_sae, k, batch, steps)
    if theirs is None:
        print(f"sae-lens trainer  :    {label}")
    else:
        figure(f"train {shape}: tokens/s vs sae-lens", batch / ours, "tokens/s",
               reference=f"{label} SAETrainer, in-memory batches", reference_value=batch / theirs,
               note=f"{a.threads} thread(s), {steps} steps")  # fmt: skip
        print(f"sae-lens trainer  : {batch / theirs:10.0f} tokens/s  ({floor / theirs:.0%} of the floor; "
              f"{label}); vislens is {theirs / ours:.2f}x its speed")  # fmt: skip


if __name__ == "__main__":
    main()
