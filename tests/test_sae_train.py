"""SAE training: planted sparse directions are recovered; a resumed run equals an
uninterrupted one; metrics equal their direct definitions; bad input fails clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers_sae import planted_data, random_sae
from vislens.errors import InputError
from vislens.sae.formats import load_sae
from vislens.sae.metrics import MetricsAccumulator
from vislens.sae.train import TrainConfig, evaluate, train_sae


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls run faster on one thread than on two contended ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _recovered(sae, dirs: torch.Tensor) -> torch.Tensor:
    w = sae.W_dec.detach()
    w = w / w.norm(dim=1, keepdim=True)
    return (dirs @ w.T).max(dim=1).values


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "extra"),
    [("topk", {"k": 3}), ("standard", {"l1_coefficient": 0.3})],
)
def test_planted_directions_are_recovered(tmp_path, arch, extra):
    x, dirs = planted_data(4096, d=32, n_dirs=48, k=3, seed=0)
    cfg = TrainConfig(
        architecture=arch,
        d_sae=96,
        lr=3e-3,
        batch_size=256,
        n_steps=800,
        checkpoint_every=0,
        **extra,
    )
    sae, metrics = train_sae(x, tmp_path / "sae", cfg)
    cos = _recovered(sae, dirs)
    assert (cos > 0.9).float().mean() >= 0.9, cos
    assert metrics.explained_variance > 0.9
    saved = load_sae(tmp_path / "sae")  # written in SAELens format
    torch.testing.assert_close(saved.W_dec.detach(), sae.W_dec.detach())


@pytest.mark.parametrize("arch", ["topk", "standard"])
def test_resume_equals_uninterrupted(tmp_path, arch):
    x, _ = planted_data(512, d=8, n_dirs=12, k=2, seed=1)
    full = TrainConfig(
        architecture=arch, d_sae=16, k=2, batch_size=64, n_steps=30, checkpoint_every=10
    )
    a, _ = train_sae(x, tmp_path / "a", full)
    # an interrupted run: stopped at step 20, then resumed (asking for the full 30 steps)
    train_sae(x, tmp_path / "b", TrainConfig(**{**full.__dict__, "n_steps": 20}))
    b, _ = train_sae(x, tmp_path / "b", full)
    for name, p in a.named_parameters():
        torch.testing.assert_close(p, b.get_parameter(name), msg=name)


def test_resume_with_other_settings_is_refused(tmp_path):
    x, _ = planted_data(256, d=8, n_dirs=8, k=2)
    train_sae(x, tmp_path / "s", TrainConfig(d_sae=16, k=2, batch_size=64, n_steps=4))
    with pytest.raises(InputError, match="no-resume"):
        train_sae(x, tmp_path / "s", TrainConfig(d_sae=16, k=3, batch_size=64, n_steps=4))


def test_nan_activations_are_refused(tmp_path):
    x = torch.randn(20, 4)
    x[7, 2] = float("nan")
    with pytest.raises(InputError, match="row 7"):
        train_sae(x, tmp_path / "s", TrainConfig(d_sae=8, k=2, n_steps=1))


def test_metrics_equal_direct_definitions():
    sae = random_sae("topk", d_in=6, d_sae=20, k=3)
    x = torch.randn(300, 6) * 2 + 1
    m = evaluate(sae, x, batch_size=64)  # batched accumulation
    x_hat, codes = sae(x)
    xd, xh = x.double().numpy(), x_hat.double().numpy()
    ev = 1 - ((xd - xh) ** 2).sum() / ((xd - xd.mean(0)) ** 2).sum()
    assert abs(m.explained_variance - ev) < 1e-9
    assert abs(m.mse - ((xd - xh) ** 2).mean()) < 1e-9
    assert m.l0 == pytest.approx(float((codes != 0).sum(1).double().mean()))
    fired = (codes != 0).any(0).numpy()
    assert m.dead_fraction == pytest.approx(1 - fired.mean()) and m.alive_fraction == pytest.approx(
        fired.mean()
    )
    with pytest.raises(ValueError):
        MetricsAccumulator(3).result()
    assert np.isfinite(m.l0)
