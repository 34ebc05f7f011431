"""Train TopK or ReLU + L1 SAEs on stored activations, with resumable checkpoints.

TopK follows Gao et al. 2024 (MSE only; decoder rows kept at unit norm, the gradient
component parallel to them removed). ReLU + L1 follows Bricken et al. 2023 / SAELens'
standard recipe: MSE + λ Σ_i f_i ‖W_dec,i‖. ``b_dec`` starts at the data mean. The data
order is a function of (seed, epoch), so a run resumed from a checkpoint continues with
exactly the batches an uninterrupted run would have used.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Float
from safetensors.torch import load_file
from torch import Tensor

from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic
from vislens.progress import make_progress
from vislens.sae.base import BaseSAE, normalize_in
from vislens.sae.formats.saelens import save_saelens
from vislens.sae.metrics import MetricsAccumulator, SAEMetrics
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.pt"
_RESUMABLE_CHANGES = ("n_steps", "checkpoint_every")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (saved beside the checkpoint; a resume must match)."""

    architecture: Literal["topk", "standard"] = "topk"
    """``topk`` (Gao et al. 2024) or ``standard`` (ReLU + L1)."""
    d_sae: int = 0
    """Features; 0 means ``expansion_factor * d_in``."""
    expansion_factor: int = 16
    """d_sae = expansion_factor × d_in when d_sae is 0."""
    k: int = 32
    """Active features per token (topk)."""
    l1_coefficient: float = 1e-3
    """Weight of the L1 penalty (standard)."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 1024
    """Tokens per step."""
    n_steps: int = 2000
    """Optimizer steps in total (a resumed run stops at the same total)."""
    checkpoint_every: int = 500
    """Steps between checkpoints (0: only at the end)."""
    normalize_activations: Literal["none", "layer_norm", "constant_norm_rescale"] = "none"
    """Input normalisation, stored in the checkpoint and applied when encoding."""
    seed: int = 0
    """Seed of initialisation and data order."""


def _data_order(n_rows: int, seed: int, epoch: int) -> Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_rows, generator=g)


class _Batches:
    """Batch ``step`` of the run: epoch-wise permutations that depend only on (seed, epoch)."""

    def __init__(self, acts: Tensor, cfg: TrainConfig) -> None:
        self.acts, self.cfg = acts, cfg
        self.per_epoch = max(1, acts.shape[0] // cfg.batch_size)
        self._epoch, self._order = -1, torch.zeros(0, dtype=torch.int64)

    def __call__(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, _data_order(self.acts.shape[0], self.cfg.seed, epoch)
        b = self.cfg.batch_size
        return self.acts[self._order[pos * b : (pos + 1) * b]]


def _loss(sae: BaseSAE, x: Tensor, cfg: TrainConfig) -> tuple[Tensor, Tensor, Tensor]:
    """``(loss, mse, codes)``; the reconstruction is compared in the SAE's normalised space."""
    hidden_pre, _ = sae.encode_pre(x)
    codes = sae.activation(hidden_pre)
    target, _ = normalize_in(x, cfg.normalize_activations, sae.d_in)
    mse = ((sae.decode(codes) - target) ** 2).sum(dim=-1).mean()
    if cfg.architecture == "standard":
        l1 = (codes * sae.W_dec.norm(dim=-1)).sum(dim=-1).mean()
        return mse + cfg.l1_coefficient * l1, mse, codes
    return mse, mse, codes


def _save_checkpoint(
    sae: BaseSAE, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig, out_dir: Path
) -> None:
    ck = out_dir / CHECKPOINT_DIR
    save_saelens(sae, ck)
    with atomic_path(ck / OPTIM_FILE) as tmp:
        torch.save(opt.state_dict(), tmp)
    write_json_atomic(ck / STATE_FILE, {"step": step, "config": asdict(cfg)})


def train_sae(
    acts_nd: Float[Tensor, "n d"],
    out_dir: Path,
    cfg: TrainConfig,
    *,
    hook_layer: int | None = None,
    model_name: str = "",
    token_scope: str = "all",
    resume: bool = True,
    eval_acts: Tensor | None = None,
) -> tuple[BaseSAE, SAEMetrics]:
    """Train an SAE on rows of ``acts_nd`` and save it to ``out_dir`` in SAELens format.

    With ``resume`` and a checkpoint in ``out_dir/checkpoint`` from the same config, training
    continues from its step. Returns the SAE and its metrics on ``eval_acts`` (default: all rows).
    """
    out_dir = Path(out_dir)
    acts = acts_nd.float()
    if acts.dim() != 2 or acts.shape[0] < 2:
        raise InputError(
            f"training needs a [tokens, d_in] matrix with at least 2 rows (got {tuple(acts.shape)})"
        )
    if not torch.isfinite(acts).all():
        bad = int((~torch.isfinite(acts).all(dim=1)).nonzero()[0, 0])
        raise InputError(
            f"training activations contain NaN/inf (first at row {bad}); re-extract them"
        )
    d_in = acts.shape[1]
    cfg = replace(cfg, batch_size=min(cfg.batch_size, acts.shape[0]))
    d_sae = cfg.d_sae or cfg.expansion_factor * d_in
    spec = SAESpec(
        d_in=d_in, d_sae=d_sae, architecture=cfg.architecture, k=cfg.k if cfg.architecture == "topk" else None,
        normalize_activations=cfg.normalize_activations, hook_layer=hook_layer, model_name=model_name,
        token_scope=token_scope,  # type: ignore[arg-type]
        source_format="vislens",
    )  # fmt: skip
    torch.manual_seed(cfg.seed)
    sae = build_sae(spec)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    step = 0
    ck = out_dir / CHECKPOINT_DIR
    if resume and (ck / STATE_FILE).is_file():
        state = json.loads((ck / STATE_FILE).read_text())
        # n_steps / checkpoint_every may change: resuming may also extend a finished run
        same = {k: v for k, v in state["config"].items() if k not in _RESUMABLE_CHANGES}
        if same != {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE_CHANGES}:
            raise InputError(
                f"{ck / STATE_FILE}: the checkpoint was trained with other settings; pass --no-resume to start over"
            )
        with torch.no_grad():
            for name, t in load_file(str(ck / "sae_weights.safetensors")).items():
                sae.get_parameter(name).copy_(t)
        opt.load_state_dict(torch.load(ck / OPTIM_FILE, weights_only=True))
        step = int(state["step"])
    else:
        with torch.no_grad():  # b_dec at the mean of the (normalised) data, as SAELens' "mean" init
            sample = acts[_data_order(acts.shape[0], cfg.seed, -1)[:65536]]
            sae.b_dec.copy_(normalize_in(sample, cfg.normalize_activations, d_in)[0].mean(dim=0))
    sae.train()
    batches = _Batches(acts, cfg)
    with make_progress() as progress:
        task = progress.add_task("train sae", total=cfg.n_steps, completed=step)
        while step < cfg.n_steps:
            x = batches(step)
            loss, _, _ = _loss(sae, x, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.architecture == "topk":
                with torch.no_grad():  # keep ‖W_dec,i‖ = 1: drop the gradient along each row
                    g, w = sae.W_dec.grad, sae.W_dec
                    assert g is not None
                    g -= (g * w).sum(dim=-1, keepdim=True) * w
            opt.step()
            if cfg.architecture == "topk":
                sae.set_decoder_norm_to_unit_norm()
            step += 1
            progress.advance(task)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.n_steps:
                _save_checkpoint(sae, opt, step, cfg, out_dir)
    sae.eval()
    _save_checkpoint(sae, opt, step, cfg, out_dir)
    metrics = evaluate(sae, eval_acts if eval_acts is not None else acts)
    save_saelens(sae, out_dir)
    write_json_atomic(out_dir / "metrics.json", metrics.as_dict())
    return sae, metrics


@torch.no_grad()
def evaluate(sae: BaseSAE, acts_nd: Tensor, *, batch_size: int = 4096) -> SAEMetrics:
    """Explained variance, MSE, L0 and dead fraction of ``sae`` on ``acts_nd`` rows."""
    acc = MetricsAccumulator(sae.d_sae)
    for s in range(0, acts_nd.shape[0], batch_size):
        x = acts_nd[s : s + batch_size].float()
        x_hat, codes = sae(x)
        acc.add(x, x_hat, codes)
    return acc.result()
