"""Label-save latency under concurrent annotators: SQLite vs PostgreSQL, side by side.

Starts `vislens serve` for a fresh study per backend (PostgreSQL: a throw-away server from
Debian's postgresql package), runs N annotators in parallel, each saving labels one after
another through POST /api/v1/tasks/<task>/events, and prints p50/p95 of the save latency.

    python bench/annotate.py [--n-annotators 20] [--n-labels 200] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # reuse the test suite's server/PostgreSQL launchers

from helpers_human import ServerProcess, make_study, postgres_server, write_export  # noqa: E402
from vislens.human.tasks import create_binary_task  # noqa: E402
from vislens.store.annotations import AnnotationStore  # noqa: E402


def _annotator(url: str, w: int, n_labels: int, out: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for pos in range(n_labels):
            body = {
                "annotator": f"bench-{w}",
                "position": pos,
                "kind": "label",
                "value": "related" if (pos + w) % 2 else "not-related",
                "event_id": f"b{w}-{pos}",
            }
            t0 = time.perf_counter()
            r = client.post("/api/v1/tasks/bench/events", json=body)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()


@contextlib.contextmanager
def _database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        yield ""
    else:
        with postgres_server() as url:
            yield url


def run(
    backend: str, n_annotators: int, n_labels: int, synchronous: str | None = None
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="vislens-bench-") as tmp, _database(backend) as url:
        root = Path(tmp)
        study = make_study(root / "study", url)
        if synchronous is not None:  # else study.toml's default
            study.config.annotations.sqlite_synchronous = synchronous  # type: ignore[assignment]
            study.save()
        store = AnnotationStore.for_study(study)
        create_binary_task(store, write_export(root / "e.json", n_labels), n=n_labels, name="bench")
        store.close()
        server = ServerProcess(study.root)
        server.start()
        try:
            lat: list[list[float]] = [[] for _ in range(n_annotators)]
            threads = [
                threading.Thread(target=_annotator, args=(server.url, w, n_labels, lat[w]))
                for w in range(n_annotators)
            ]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            server.stop()
    ms = np.concatenate([np.asarray(x) for x in lat]) * 1000
    return {
        "n": int(ms.size),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
        "saves_per_s": float(ms.size / wall),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n-annotators", type=int, default=20)
    ap.add_argument("--n-labels", type=int, default=200, help="labels each annotator saves")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--sqlite-synchronous",
        default=None,
        choices=["FULL", "NORMAL"],
        help="override [annotations] sqlite_synchronous (default NORMAL)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="8 annotators × 50 labels: the same figures, smaller"
    )
    args = ap.parse_args()
    if args.quick:
        args.n_annotators, args.n_labels = min(args.n_annotators, 8), min(args.n_labels, 50)
    results = {
        b: run(b, args.n_annotators, args.n_labels, args.sqlite_synchronous)
        for b in args.backends.split(",")
    }
    sync = args.sqlite_synchronous or "NORMAL"
    print(
        f"label save latency, {args.n_annotators} concurrent annotators x {args.n_labels} labels"
        f" (SQLite synchronous={sync})"
    )
    print(f"{'backend':<10}{'saves':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'saves/s':>10}")
    for b, r in results.items():
        print(
            f"{b:<10}{r['n']:>8}{r['p50_ms']:>10.1f}{r['p95_ms']:>10.1f}{r['max_ms']:>10.1f}{r['saves_per_s']:>10.1f}"
        )
    out = REPO / "bench" / "out" / "annotate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"n_annotators": args.n_annotators, "n_labels": args.n_labels, **results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
