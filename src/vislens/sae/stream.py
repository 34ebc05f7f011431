"""Training tokens streamed from a study's activation shards, with a shuffle buffer.

Shards are read whole and in sequence (no full load into memory): each epoch visits the
shards in a seeded order, ``buffer_shards`` at a time; the buffer's token rows are shuffled
with a generator seeded by (seed, epoch, buffer), and cut into batches (a buffer's last
partial batch is dropped). Batch ``step`` is therefore a pure function of (seed, step), so
a resumed run reads exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import bisect

import torch
from safetensors.torch import load_file
from torch import Tensor

from vislens.errors import InputError
from vislens.store.activations import ActivationStore, shard_path


class ShardStream:
    """A :class:`vislens.sae.train.BatchSource` over ``layer``'s shards, tokens ``[start, stop)``."""

    def __init__(
        self, store: ActivationStore, layer: int, *, start: int, stop: int, batch_size: int,
        seed: int = 0, buffer_shards: int = 8,
    ) -> None:  # fmt: skip
        if not store.is_complete:
            raise InputError(f"{store.root}: extraction is not finished — re-run `vislens extract`")
        self.store, self.layer, self.start, self.stop = store, layer, start, stop
        self.seed, self.buffer_shards = seed, max(1, buffer_shards)
        self.d_in = store.info.d_model
        self.shards = list(store.complete_shards)
        per_token = stop - start
        rows = {
            k: (lambda b: (b[1] - b[0]) * per_token)(store.info.shard_bounds(k))
            for k in self.shards
        }
        self.batch_size = min(batch_size, sum(rows.values()))
        self._rows = rows
        self._epoch_plan: dict[int, tuple[list[list[int]], list[int]]] = {}
        self._cached: tuple[tuple[int, int], Tensor] | None = None
        self._epoch_starts = [0]
        if self._plan(0)[1][-1] == 0:
            raise InputError(f"{store.root}: fewer than batch_size={batch_size} tokens per buffer")

    def _plan(self, epoch: int) -> tuple[list[list[int]], list[int]]:
        """Buffers (lists of shards) of ``epoch`` and the cumulative batch count after each."""
        if epoch not in self._epoch_plan:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = [self.shards[i] for i in torch.randperm(len(self.shards), generator=g).tolist()]
            bufs = [
                order[i : i + self.buffer_shards] for i in range(0, len(order), self.buffer_shards)
            ]
            cum, total = [], 0
            for b in bufs:
                total += sum(self._rows[k] for k in b) // self.batch_size
                cum.append(total)
            if len(self._epoch_plan) > 4:
                self._epoch_plan.clear()
            self._epoch_plan[epoch] = (bufs, cum)
        return self._epoch_plan[epoch]

    def _locate(self, step: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of ``step``; epochs may differ in length by a
        batch or so (partial batches per buffer are dropped)."""
        while len(self._epoch_starts) < 2 or self._epoch_starts[-1] <= step:
            e = len(self._epoch_starts) - 1
            self._epoch_starts.append(self._epoch_starts[-1] + self._plan(e)[1][-1])
        e = bisect.bisect_right(self._epoch_starts, step) - 1
        return e, step - self._epoch_starts[e]

    def _read(self, shards: list[int]) -> Tensor:
        parts = []
        for k in shards:
            acts = load_file(str(shard_path(self.store.root, self.layer, k)))["acts"]
            a = acts[:, None, :] if acts.dim() == 2 else acts
            parts.append(a[:, self.start : self.stop].reshape(-1, a.shape[-1]).float())
        return torch.cat(parts)

    def _buffer(self, epoch: int, b: int) -> Tensor:
        if self._cached is None or self._cached[0] != (epoch, b):
            rows = self._read(self._plan(epoch)[0][b])
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 7919 + b)
            self._cached = ((epoch, b), rows[torch.randperm(rows.shape[0], generator=g)])
        return self._cached[1]

    def batch(self, step: int) -> Tensor:
        epoch, pos = self._locate(step)
        _, cum = self._plan(epoch)
        b = bisect.bisect_right(cum, pos)
        first = cum[b - 1] if b else 0
        off = (pos - first) * self.batch_size
        return self._buffer(epoch, b)[off : off + self.batch_size]

    def sample(self, n: int) -> Tensor:
        """Up to ``n`` rows from the first shards in storage order (for scale and b_dec init)."""
        parts, have = [], 0
        for k in self.shards:
            parts.append(self._read([k]))
            have += parts[-1].shape[0]
            if have >= n:
                break
        rows = torch.cat(parts)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 - 1)
        return rows[torch.randperm(rows.shape[0], generator=g)[:n]]
