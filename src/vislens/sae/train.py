"""Train SAEs (TopK, BatchTopK, JumpReLU, ReLU + L1, Matryoshka) on stored activations.

The loop, shared by every objective in ``objectives/``:

- **normalisation**: activations are scaled by one constant c so that the mean squared
  norm is 1 (estimated on a seeded sample); the saved SAE has c folded into its weights
  (``W_enc·c``, ``W_dec/c``, ``b_dec/c``), so it encodes raw activations to exactly the
  codes the training-scale SAE gives on ``c·x`` (SAELens' ``fold_activation_norm_scaling_factor``);
- **init**: unit-norm decoder rows, encoder = decoder transpose, ``b_dec`` at the data mean;
- **decoder**: unit-norm rows with the parallel gradient removed where the objective needs
  it (TopK family, JumpReLU);
- **schedule**: Adam, linear LR warmup, constant, linear decay to 0 over the last
  ``lr_decay_fraction`` of the steps; optional linear k annealing;
- **dead latents**: a latent is dead when it has not fired for ``dead_window`` steps; AuxK
  (Gao et al. 2024) trains dead latents on the residual; optional resampling re-initialises
  them toward badly reconstructed tokens;
- **resume**: data order, schedule and every update are functions of (seed, step), and the
  checkpoint holds weights, optimiser, dead-latent tracker and c: a run killed and resumed
  ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from vislens.errors import InputError
from vislens.io import atomic_path, write_json_atomic
from vislens.progress import make_progress
from vislens.sae.base import BaseSAE, normalize_in
from vislens.sae.formats.saelens import save_saelens
from vislens.sae.metrics import MetricsAccumulator, SAEMetrics
from vislens.sae.objectives import OBJECTIVES, Objective
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.json"
OPTIM_FILE = "optimizer.pt"
TRACKER_FILE = "trainer_tensors.safetensors"
_RESUMABLE_CHANGES = ("n_steps", "checkpoint_every")

TrainArchitecture = Literal["topk", "batchtopk", "jumprelu", "standard", "matryoshka"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (saved beside the checkpoint; a resume must match)."""

    architecture: TrainArchitecture = "topk"
    """``topk``, ``batchtopk`` (saved as jumprelu), ``jumprelu``, ``standard`` (ReLU + L1) or ``matryoshka``."""
    d_sae: int = 0
    """Features; 0 means ``expansion_factor * d_in``."""
    expansion_factor: int = 16
    """d_sae = expansion_factor × d_in when d_sae is 0."""
    k: int = 32
    """Active features per token (topk, matryoshka) or on average (batchtopk)."""
    k_start: int = 0
    """Anneal k linearly from this value to ``k`` over ``k_anneal_steps`` (0: no annealing)."""
    k_anneal_steps: int = 0
    """Steps of k annealing."""
    aux_k: int = -1
    """Dead latents used by the AuxK loss (topk family); -1: d_in // 2, 0: no AuxK."""
    aux_coefficient: float = 1 / 32
    """Weight of the AuxK loss (Gao et al. use 1/32)."""
    dead_window: int = 200
    """A latent that has not fired for this many steps is dead."""
    resample_dead: bool = False
    """Every ``dead_window`` steps, re-initialise dead latents toward badly reconstructed tokens."""
    l1_coefficient: float = 1e-3
    """Weight of the decoder-norm-weighted L1 penalty (standard)."""
    l0_coefficient: float = 1e-3
    """Weight of the L0 penalty (jumprelu)."""
    jumprelu_bandwidth: float = 0.01
    """Width ε of the straight-through rectangle kernel (jumprelu)."""
    jumprelu_init_threshold: float = 0.01
    """Initial threshold (jumprelu)."""
    threshold_lr: float = 0.01
    """EMA rate of the inference threshold (batchtopk)."""
    matryoshka_widths: tuple[int, ...] = ()
    """Prefix sizes (matryoshka); empty: d_sae/8, d_sae/4, d_sae/2, d_sae."""
    lr: float = 1e-3
    """Adam learning rate (peak)."""
    lr_warmup_steps: int = 0
    """Linear warmup steps."""
    lr_decay_fraction: float = 0.2
    """Final fraction of the steps over which the LR decays linearly to 0."""
    batch_size: int = 1024
    """Tokens per step."""
    n_steps: int = 2000
    """Optimizer steps in total (a resumed run stops at the same total)."""
    checkpoint_every: int = 500
    """Steps between checkpoints (0: only at the end)."""
    normalize_activations: Literal["none", "layer_norm", "constant_norm_rescale"] = "none"
    """Per-token input normalisation, stored in the checkpoint and applied when encoding."""
    scale_activations: bool = True
    """Scale activations to unit mean squared norm for training, folded into the saved weights."""
    precision: Literal["float32", "bf16"] = "float32"
    """Autocast precision of the forward pass (weights and optimiser stay float32)."""
    seed: int = 0
    """Seed of initialisation and data order."""


class BatchSource(Protocol):
    """Where training tokens come from: batch ``step`` is a function of (seed, step) only."""

    d_in: int

    def batch(self, step: int) -> Tensor: ...

    def sample(self, n: int) -> Tensor: ...


def _data_order(n_rows: int, seed: int, epoch: int) -> Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_rows, generator=g)


class MemorySource:
    """Rows of an in-memory matrix, in epoch-wise permutations of (seed, epoch)."""

    def __init__(self, acts: Tensor, batch_size: int, seed: int) -> None:
        self.acts, self.batch_size, self.seed = acts, batch_size, seed
        self.d_in = acts.shape[1]
        self.per_epoch = max(1, acts.shape[0] // batch_size)
        self._epoch, self._order = -1, torch.zeros(0, dtype=torch.int64)

    def batch(self, step: int) -> Tensor:
        epoch, pos = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, _data_order(self.acts.shape[0], self.seed, epoch)
        b = self.batch_size
        return self.acts[self._order[pos * b : (pos + 1) * b]]

    def sample(self, n: int) -> Tensor:
        return self.acts[_data_order(self.acts.shape[0], self.seed, -1)[:n]]


def _validate(acts: Tensor) -> Tensor:
    if acts.dim() != 2 or acts.shape[0] < 2:
        raise InputError(
            f"training needs a [tokens, d_in] matrix with at least 2 rows (got {tuple(acts.shape)})"
        )
    if not torch.isfinite(acts).all():
        bad = int((~torch.isfinite(acts).all(dim=1)).nonzero()[0, 0])
        raise InputError(
            f"training activations contain NaN/inf (first at row {bad}); re-extract them"
        )
    return acts


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, constant, linear decay to 0 over the last ``lr_decay_fraction``."""
    if cfg.lr_warmup_steps and step < cfg.lr_warmup_steps:
        return cfg.lr * (step + 1) / cfg.lr_warmup_steps
    decay = int(cfg.n_steps * cfg.lr_decay_fraction)
    start = cfg.n_steps - decay
    if decay and step >= start:
        return cfg.lr * max(0.0, (cfg.n_steps - step) / decay)
    return cfg.lr


@torch.no_grad()
def fold_scale(sae: BaseSAE, scale: float) -> BaseSAE:
    """The SAE that encodes raw ``x`` exactly as ``sae`` encodes ``scale·x``.

    ``(c x − b) W + e = (x − b/c)(c W) + e`` and ``(f W_dec + b)/c = f (W_dec/c) + b/c``.
    """
    out = build_sae(sae.spec)
    out.load_state_dict(sae.state_dict())
    if scale != 1.0:
        out.W_enc.mul_(scale)
        out.W_dec.div_(scale)
        out.b_dec.div_(scale)
    return out.eval()


def _remove_parallel_grad(sae: BaseSAE) -> None:
    g, w = sae.W_dec.grad, sae.W_dec
    if g is not None:
        g -= (g * w).sum(dim=-1, keepdim=True) * w


@torch.no_grad()
def _resample(
    sae: BaseSAE,
    opt: torch.optim.Optimizer,
    dead: Tensor,
    target: Tensor,
    recon: Tensor,
    step: int,
    seed: int,
) -> None:
    """Re-initialise dead latents toward tokens drawn by squared reconstruction error."""
    idx = dead.nonzero().squeeze(1)
    if idx.numel() == 0:
        return
    err = target - recon
    w = (err**2).sum(-1)
    g = torch.Generator().manual_seed(seed * 7919 + step)
    rows = torch.multinomial(w + 1e-12, idx.numel(), replacement=True, generator=g)
    d = err[rows] / err[rows].norm(dim=-1, keepdim=True).clamp_min(1e-8)
    alive = ~dead
    enc_norm = float(sae.W_enc[:, alive].norm(dim=0).mean()) if bool(alive.any()) else 1.0
    sae.W_dec[idx] = d
    sae.W_enc[:, idx] = d.T * enc_norm * 0.2
    sae.b_enc[idx] = 0
    for p in (sae.W_dec, sae.W_enc, sae.b_enc):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                if p is sae.W_enc:
                    st[key][:, idx] = 0
                else:
                    st[key][idx] = 0


def _cfg_json(cfg: TrainConfig) -> dict[str, object]:
    return json.loads(json.dumps(asdict(cfg)))  # tuples as lists, as stored


def _save_checkpoint(
    sae: BaseSAE, opt: torch.optim.Optimizer, step: int, cfg: TrainConfig, scale: float,
    last_fired: Tensor, out_dir: Path,
) -> None:  # fmt: skip
    ck = out_dir / CHECKPOINT_DIR
    save_saelens(sae, ck)
    with atomic_path(ck / OPTIM_FILE) as tmp:
        torch.save(opt.state_dict(), tmp)
    with atomic_path(ck / TRACKER_FILE) as tmp:
        save_file({"last_fired": last_fired.contiguous()}, str(tmp))
    write_json_atomic(ck / STATE_FILE, {"step": step, "scale": scale, "config": _cfg_json(cfg)})


def _stats(out: object, dead: Tensor) -> str:
    o = out  # a StepOut
    with torch.no_grad():
        tgt = o.target  # type: ignore[attr-defined]
        sst = float(((tgt - tgt.mean(0)) ** 2).sum())
        ev = 1 - float(((tgt - o.recon) ** 2).sum()) / sst if sst > 0 else float("nan")  # type: ignore[attr-defined]
        l0 = float((o.codes > 0).sum(-1).float().mean())  # type: ignore[attr-defined]
    return f"loss {float(o.loss.detach()):.4g} L0 {l0:.1f} EV {ev:.3f} dead {float(dead.float().mean()):.1%}"  # type: ignore[attr-defined]


def train_sae(
    acts_nd: Tensor | BatchSource,
    out_dir: Path,
    cfg: TrainConfig,
    *,
    hook_layer: int | None = None,
    model_name: str = "",
    token_scope: str = "all",
    resume: bool = True,
    eval_acts: Tensor | None = None,
    stop_after: int | None = None,
) -> tuple[BaseSAE, SAEMetrics]:
    """Train an SAE and save it to ``out_dir`` in SAELens format (normalisation folded in).

    ``acts_nd``: a ``[tokens, d_in]`` matrix or a :class:`BatchSource` (e.g. streaming
    shards). With ``resume`` and a checkpoint in ``out_dir/checkpoint`` from the same
    config, training continues from its step. ``stop_after`` ends this call after that many
    steps with a checkpoint, as a kill would (the next call resumes). Returns the saved SAE
    and its metrics on ``eval_acts`` (default: all rows, or a sample of the source).
    """
    out_dir = Path(out_dir)
    if cfg.architecture not in OBJECTIVES:
        raise InputError(f"architecture '{cfg.architecture}' is not one of {sorted(OBJECTIVES)}")
    if isinstance(acts_nd, Tensor):
        acts = _validate(acts_nd.float())
        cfg = replace(cfg, batch_size=min(cfg.batch_size, acts.shape[0]))
        source: BatchSource = MemorySource(acts, cfg.batch_size, cfg.seed)
    else:
        acts, source = None, acts_nd
    d_in = source.d_in
    d_sae = cfg.d_sae or cfg.expansion_factor * d_in
    objective: Objective = OBJECTIVES[cfg.architecture](cfg, d_in, d_sae)
    if objective.inference_architecture == "topk" and not 0 < cfg.k <= d_sae:
        raise InputError(f"k must lie in 1..d_sae={d_sae} (got {cfg.k})")
    spec = SAESpec(
        d_in=d_in, d_sae=d_sae, architecture=objective.inference_architecture,  # type: ignore[arg-type]
        normalize_activations=cfg.normalize_activations, hook_layer=hook_layer, model_name=model_name,
        token_scope=token_scope, source_format="vislens",  # type: ignore[arg-type]
        extra=objective.extra_cfg(), **objective.spec_kwargs(),
    )  # fmt: skip
    torch.manual_seed(cfg.seed)
    sae = build_sae(spec)
    if cfg.architecture == "jumprelu":
        with torch.no_grad():
            sae.threshold.fill_(cfg.jumprelu_init_threshold)  # type: ignore[operator]
    if cfg.architecture == "batchtopk":
        sae.threshold.requires_grad_(False)
    params = [p for p in sae.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    step, scale = 0, 1.0
    last_fired = torch.zeros(d_sae, dtype=torch.int64)
    ck = out_dir / CHECKPOINT_DIR
    if resume and (ck / STATE_FILE).is_file():
        state = json.loads((ck / STATE_FILE).read_text())
        # n_steps / checkpoint_every may change: resuming may also extend a finished run
        same = {k: v for k, v in state["config"].items() if k not in _RESUMABLE_CHANGES}
        if same != {k: v for k, v in _cfg_json(cfg).items() if k not in _RESUMABLE_CHANGES}:
            raise InputError(
                f"{ck / STATE_FILE}: the checkpoint was trained with other settings; pass --no-resume to start over"
            )
        with torch.no_grad():
            for name, t in load_file(str(ck / "sae_weights.safetensors")).items():
                sae.get_parameter(name).copy_(t)
        opt.load_state_dict(torch.load(ck / OPTIM_FILE, weights_only=True))
        last_fired = load_file(str(ck / TRACKER_FILE))["last_fired"]
        step, scale = int(state["step"]), float(state["scale"])
    else:
        with torch.no_grad():
            sample = source.sample(65536).float()
            if cfg.scale_activations and cfg.normalize_activations == "none":
                scale = float(1.0 / (sample**2).sum(-1).mean().sqrt().clamp_min(1e-12))
            # b_dec at the mean of the (scaled, normalised) data, as SAELens' "mean" init
            normed = normalize_in(sample * scale, cfg.normalize_activations, d_in)[0]
            sae.b_dec.copy_(normed.mean(dim=0))
    sae.train()
    start_step = step
    out = None
    with make_progress() as progress:
        task = progress.add_task(f"train {cfg.architecture}", total=cfg.n_steps, completed=step)
        while step < cfg.n_steps:
            if stop_after is not None and step - start_step >= stop_after:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            x = source.batch(step).float() * scale
            dead = (step - last_fired) >= cfg.dead_window
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                out = objective.step(sae, x, step, dead)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            if objective.unit_norm_decoder:
                with torch.no_grad():
                    _remove_parallel_grad(sae)
            opt.step()
            if objective.unit_norm_decoder:
                sae.set_decoder_norm_to_unit_norm()
            objective.after_step(sae, out.codes.detach())
            last_fired[(out.codes.detach() > 0).any(0)] = step + 1
            step += 1
            if cfg.resample_dead and step % cfg.dead_window == 0:
                dead_now = (step - last_fired) >= cfg.dead_window
                _resample(
                    sae, opt, dead_now, out.target.detach(), out.recon.detach(), step, cfg.seed
                )
                last_fired[dead_now] = step
            if step % 20 == 0 or step == cfg.n_steps:
                progress.update(task, description=f"train {cfg.architecture} · {_stats(out, dead)}")
            progress.advance(task)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.n_steps:
                _save_checkpoint(sae, opt, step, cfg, scale, last_fired, out_dir)
    sae.eval()
    _save_checkpoint(sae, opt, step, cfg, scale, last_fired, out_dir)
    final = fold_scale(sae, scale).requires_grad_(False)
    if eval_acts is None:
        eval_acts = acts if acts is not None else source.sample(65536)
    metrics = evaluate(final, eval_acts)
    if step >= cfg.n_steps:
        save_saelens(final, out_dir)
        write_json_atomic(
            out_dir / "metrics.json", metrics.as_dict() | {"steps": step, "activation_scale": scale}
        )
    return final, metrics


@torch.no_grad()
def evaluate(sae: BaseSAE, acts_nd: Tensor, *, batch_size: int = 4096) -> SAEMetrics:
    """Explained variance, MSE, L0 and dead fraction of ``sae`` on ``acts_nd`` rows."""
    acc = MetricsAccumulator(sae.d_sae)
    for s in range(0, acts_nd.shape[0], batch_size):
        x = acts_nd[s : s + batch_size].float()
        x_hat, codes = sae(x)
        acc.add(x, x_hat, codes)
    return acc.result()


__all__ = ["MemorySource", "TrainConfig", "evaluate", "fold_scale", "lr_at", "train_sae"]
