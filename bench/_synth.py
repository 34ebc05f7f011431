"""Synthetic SAE codes shaped like real ones, for the benchmarks (not a vislens module)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sparse_codes(n_items: int, n_features: int, l0: int, seed: int = 0) -> sp.csr_matrix:
    """``[n_items, n_features]`` CSR with about ``l0`` distinct active features per item (draws
    with replacement, duplicates dropped) and exponential values; feature frequency is skewed
    (a few features fire often) as in real SAEs."""
    rng = np.random.default_rng(seed)
    p = rng.pareto(1.5, n_features) + 1e-3
    cdf = np.cumsum(p / p.sum())

    def draw(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.minimum(np.searchsorted(cdf, rng.random((n, m)) * cdf[-1]), n_features - 1).astype(
            np.int32
        )
        idx.sort(axis=1)
        keep = np.ones_like(idx, dtype=bool)
        keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
        return idx, keep

    _, pilot = draw(200, l0)  # oversample so that about l0 distinct features remain
    idx, keep = draw(n_items, round(l0 * l0 / pilot.sum(axis=1).mean()))
    indices = idx[keep]
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    data = rng.exponential(1.0, size=indices.shape).astype(np.float32) + 0.01
    return sp.csr_matrix((data, indices, indptr), shape=(n_items, n_features))


def report(rows: list[tuple[str, float, float | None, str]]) -> None:
    """Print ``(figure, ours_s, reference_s, note)`` side by side with the ratio."""
    print(f"{'figure':58s} {'vislens':>10s} {'reference':>11s} {'ratio':>9s}  note")
    for name, ours, ref, note in rows:
        r = f"{ref:10.2f}s" if ref is not None else f"{'—':>11s}"
        ratio = f"{ref / ours:8.1f}×" if ref is not None and ours > 0 else f"{'—':>9s}"
        print(f"{name:58s} {ours:9.2f}s {r} {ratio}  {note}")


class Timer:
    """Wall and process-CPU seconds of a block: on a shared machine the CPU figure is the
    steadier one (it does not count time spent waiting for a core)."""

    def __enter__(self) -> Timer:
        import time

        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        import time

        self.wall = time.perf_counter() - self._w
        self.cpu = time.process_time() - self._c
