"""Streaming training data from activation shards, and the `sae eval` report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers_sae import random_sae
from vislens.sae.evaluation import frequency_histogram, write_eval_report
from vislens.sae.metrics import DENSE_FREQUENCY, MetricsAccumulator
from vislens.sae.stream import ShardStream
from vislens.sae.train import TrainConfig, train_sae
from vislens.store.activations import ActivationStore, ActivationWriter, StoreInfo, items_digest

N_ITEMS, SHARD, N_TOK, D = 23, 5, 5, 6  # CLS + 2×2 patches, the last shard short


def _store(tmp_path) -> tuple[ActivationStore, torch.Tensor]:
    ids = [f"i{k}" for k in range(N_ITEMS)]
    info = StoreInfo(model="m", model_type="vit", layers=[2], tokens="all", has_cls=True,
                     n_prefix_tokens=1, grid_h=2, grid_w=2, n_tokens=N_TOK, d_model=D, dtype="float32",
                     shard_size=SHARD, n_items=N_ITEMS, items_sha256=items_digest(ids))  # fmt: skip
    acts = torch.arange(N_ITEMS * N_TOK * D, dtype=torch.float32).reshape(N_ITEMS, N_TOK, D)
    w = ActivationWriter(tmp_path / "acts", info, ids)
    for k in range(info.n_shards):
        a, b = info.shard_bounds(k)
        w.write_shard(k, {2: acts[a:b]})
    return ActivationStore.open(tmp_path / "acts"), acts


def test_stream_visits_rows_once_per_epoch_and_is_a_function_of_step(tmp_path):
    store, acts = _store(tmp_path)
    s = ShardStream(store, 2, start=1, stop=N_TOK, batch_size=7, seed=3, buffer_shards=2)
    patches = acts[:, 1:].reshape(-1, D)
    s._locate(0)
    per_epoch = s._epoch_starts[1]
    seen = torch.cat([s.batch(i) for i in range(per_epoch)])
    assert seen.shape[1] == D and all(b.shape[0] == 7 for b in (s.batch(0), s.batch(per_epoch - 1)))
    keys = {tuple(r.tolist()) for r in seen}
    assert len(keys) == seen.shape[0]  # no row twice within an epoch
    assert keys <= {tuple(r.tolist()) for r in patches}  # patch rows only: CLS skipped
    assert seen.shape[0] >= patches.shape[0] - 3 * 7  # at most a partial batch dropped per buffer
    fresh = ShardStream(store, 2, start=1, stop=N_TOK, batch_size=7, seed=3, buffer_shards=2)
    for step in (per_epoch + 2, 5, 0, 3 * per_epoch + 1):  # any order: a resumed run's reads
        torch.testing.assert_close(fresh.batch(step), s.batch(step))
    assert not torch.equal(s.batch(0), s.batch(per_epoch))  # epochs are reshuffled


def test_streamed_training_resumes_exactly(tmp_path):
    store, _ = _store(tmp_path)
    cfg = TrainConfig(
        architecture="topk", d_sae=12, k=2, batch_size=8, n_steps=24, checkpoint_every=8
    )

    def src():
        return ShardStream(store, 2, start=0, stop=N_TOK, batch_size=8, seed=0, buffer_shards=2)

    a, _ = train_sae(src(), tmp_path / "a", cfg)
    train_sae(src(), tmp_path / "b", cfg, stop_after=16)
    b, _ = train_sae(src(), tmp_path / "b", cfg)
    for name, p in a.named_parameters():
        torch.testing.assert_close(p, b.get_parameter(name), rtol=0, atol=0, msg=name)


def test_eval_metrics_and_report(tmp_path):
    sae = random_sae("topk", d_in=6, d_sae=30, k=3)
    x = torch.randn(400, 6) * 2 + 1
    acc = MetricsAccumulator(sae.d_sae)
    for s in range(0, 400, 128):
        with torch.no_grad():
            r, c = sae(x[s : s + 128])
        acc.add(x[s : s + 128], r, c)
    m = acc.result()
    with torch.no_grad():
        r, c = sae(x)
    freq = (c != 0).double().mean(0).numpy()
    np.testing.assert_allclose(acc.frequencies().numpy(), freq)
    assert m.fvu == pytest.approx(1 - m.explained_variance)
    assert m.dense_fraction == pytest.approx(float((freq > DENSE_FREQUENCY).mean()))
    cos = torch.nn.functional.cosine_similarity(x.double(), r.double(), dim=-1).mean()
    assert m.cosine == pytest.approx(float(cos))
    paths = write_eval_report(m, freq, tmp_path / "eval", context={"sae": "s"})
    doc = json.loads(paths[0].read_text())
    assert doc["schema_version"] == 2 and doc["sae"] == "s"
    hist = doc["frequency_histogram"]
    assert sum(hist["counts"]) + hist["n_dead"] == 30 and hist["n_dead"] == int((freq == 0).sum())
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert frequency_histogram(np.array([0.0, 1e-3, 1.0]))["n_dead"] == 1
