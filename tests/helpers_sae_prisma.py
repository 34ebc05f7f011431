"""ViT-Prisma training checkpoints written the way its trainer writes them.

``VisionModelSAERunnerConfig`` below has ViT-Prisma's module path, class name and fields
(``vit_prisma/sae/config.py``: ``RunnerConfig`` + ``VisionModelSAERunnerConfig``, their
defaults, and the ``__post_init__`` attributes that are *not* fields: ``hook_point``,
``tokens_per_buffer``, ``total_training_steps``). :func:`write_prisma_training_dir`
reproduces ``VisionSAETrainer.checkpoint``: ``save_config`` (``dataclasses.asdict`` with
torch.device / torch.dtype as ``{"__type__", "value"}``) to ``config.json``, then
``SparseAutoencoder.save_model``: ``torch.save({"cfg": cfg, "state_dict": …})`` to
``n_images_<N>.pt``. The module is registered under ViT-Prisma's name only while saving,
so loading proves that nothing needs (or imports) ViT-Prisma.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

MODULE = "vit_prisma.sae.config"


@dataclass
class HookedViTConfig:
    """A few fields of ViT-Prisma's ``HookedViTConfig`` (nested in the runner config)."""

    n_layers: int = 12
    d_model: int = 768
    d_head: int = 64
    n_heads: int = 12
    patch_size: int = 32
    image_size: int = 224
    dtype: torch.dtype = torch.float32


@dataclass
class VisionModelSAERunnerConfig:
    # RunnerConfig
    model_class_name: str = "HookedViT"
    model_name: str = "wkcn/TinyCLIP-ViT-40M-32-Text-19M-LAION400M"
    vit_model_cfg: HookedViTConfig | None = None
    model_path: str | None = None
    hook_point_layer: int = 9
    layer_subtype: str = "hook_resid_post"
    hook_point_head_index: int | None = None
    context_size: int = 50
    use_cached_activations: bool = False
    use_patches_only: bool = False
    cached_activations_path: str | None = None
    d_in: int = 512
    activation_fn_str: str = "relu"
    activation_fn_kwargs: dict[str, Any] = field(default_factory=dict)
    cls_token_only: bool = False
    max_grad_norm: float = 1.0
    initialization_method: str = "encoder_transpose_decoder"
    normalize_activations: str = "layer_norm"
    n_batches_in_buffer: int = 20
    store_batch_size: int = 32
    num_workers: int = 16
    num_epochs: int = 10
    total_training_images: int = 13_000_000
    total_training_tokens: int = 13_000_000 * 50
    image_size: int = 224
    device: Any = "cpu"
    seed: int = 42
    dtype: torch.dtype = torch.float32
    # VisionModelSAERunnerConfig
    architecture: str = "standard"
    verbose: bool = False
    b_dec_init_method: str = "geometric_median"
    expansion_factor: int = 16
    from_pretrained_path: str | None = None
    d_sae: int | None = None
    l1_coefficient: float = 0.0002
    lp_norm: float = 1
    lr: float = 0.001
    lr_scheduler_name: str = "cosineannealingwarmup"
    lr_warm_up_steps: int = 500
    train_batch_size: int = 4096
    dataset_name: str = "imagenet1k"
    dataset_path: str = "/datasets/imagenet"
    dataset_train_path: str = "/datasets/imagenet/train"
    dataset_val_path: str = "/datasets/imagenet/val"
    use_ghost_grads: bool = True
    feature_sampling_window: int = 1000
    dead_feature_window: int = 5000
    dead_feature_threshold: float = 1e-8
    log_to_wandb: bool = True
    wandb_project: str = "tinyclip_sae_16_hyperparam_sweep_lr"
    wandb_entity: str | None = None
    wandb_log_frequency: int = 10
    n_validation_runs: int = 100
    n_checkpoints: int = 10
    checkpoint_path: str = "/checkpoints/tinyclip"

    def __post_init__(self) -> None:
        self.hook_point = f"blocks.{self.hook_point_layer}.{self.layer_subtype}"
        if self.cached_activations_path is None:
            self.cached_activations_path = f"activations/{self.dataset_path.replace('/', '_')}/{self.model_name.replace('/', '_')}/{self.hook_point}"
        if self.cls_token_only:
            self.context_size = 1
            self.total_training_tokens = self.total_training_images * self.context_size
        if not isinstance(self.expansion_factor, list):
            self.d_sae = self.d_in * self.expansion_factor
        self.tokens_per_buffer = (
            self.train_batch_size * self.context_size * self.n_batches_in_buffer
        )
        self.device = torch.device(self.device)
        self.total_training_steps = self.total_training_tokens // self.train_batch_size
        self.activation_fn_kwargs = self.activation_fn_kwargs or {}

    def save_config(self, path: Path) -> None:
        def make_serializable(obj: Any) -> Any:
            if isinstance(obj, torch.device):
                return {"__type__": "torch.device", "value": str(obj)}
            if isinstance(obj, torch.dtype):
                return {"__type__": "torch.dtype", "value": obj.__repr__()}
            if isinstance(obj, (list, tuple)):
                return [make_serializable(x) for x in obj]
            if isinstance(obj, dict):
                return {k: make_serializable(v) for k, v in obj.items()}
            return obj

        Path(path).write_text(json.dumps(make_serializable(asdict(self)), indent=4))


def _register() -> dict[str, types.ModuleType | None]:
    """Put this module's classes under ViT-Prisma's module paths; returns what to restore."""
    names = [
        "vit_prisma",
        "vit_prisma.sae",
        MODULE,
        "vit_prisma.configs",
        "vit_prisma.configs.HookedViTConfig",
    ]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    VisionModelSAERunnerConfig.__module__ = MODULE
    HookedViTConfig.__module__ = "vit_prisma.configs.HookedViTConfig"
    sys.modules[MODULE].VisionModelSAERunnerConfig = VisionModelSAERunnerConfig  # type: ignore[attr-defined]
    sys.modules["vit_prisma.configs.HookedViTConfig"].HookedViTConfig = HookedViTConfig  # type: ignore[attr-defined]
    return saved


def _unregister(saved: dict[str, types.ModuleType | None]) -> None:
    for n, m in saved.items():
        if m is None:
            sys.modules.pop(n, None)
        else:
            sys.modules[n] = m
    VisionModelSAERunnerConfig.__module__ = __name__
    HookedViTConfig.__module__ = __name__


def write_prisma_training_dir(
    path: Path,
    tensors: dict[str, torch.Tensor],
    *,
    n_images: tuple[int, ...] = (1000,),
    config_json: bool = True,
    **cfg_fields: Any,
) -> VisionModelSAERunnerConfig:
    """A ViT-Prisma ``checkpoint_path`` directory: ``config.json`` and ``n_images_<N>.pt`` files.

    Every ``n_images`` value but the largest gets all-zero weights (earlier checkpoints).
    ``tensors``: ``W_enc [d_in, d_sae]``, ``b_enc``, ``W_dec [d_sae, d_in]``, ``b_dec``.
    """
    path.mkdir(parents=True, exist_ok=True)
    cfg_fields.setdefault("vit_model_cfg", HookedViTConfig(d_model=tensors["W_enc"].shape[0]))
    cfg = VisionModelSAERunnerConfig(checkpoint_path=str(path), **cfg_fields)
    saved = _register()
    try:
        if config_json:
            cfg.save_config(path / "config.json")
        for n in sorted(n_images):
            # SparseAutoencoder.__init__ registers W_dec, W_enc, b_enc, b_dec in this order
            scale = 1.0 if n == max(n_images) else 0.0
            sd = {k: tensors[k] * scale for k in ("W_dec", "W_enc", "b_enc", "b_dec")}
            torch.save({"cfg": cfg, "state_dict": sd}, path / f"n_images_{n}.pt")
    finally:
        _unregister(saved)
    return cfg
