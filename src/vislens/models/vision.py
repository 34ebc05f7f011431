"""Vision-encoder adapters over transformers: CLIP, SigLIP, DINOv2, ViT (and a LLaVA's tower).

One interface for every encoder: ``preprocess`` (the model's own image processor),
``residual_stream`` (per-layer hidden states with the token layout), ``embed`` (one pooled
vector per image). Layer convention: 0 is the embedding output (the input of block 1), L
is the output of block L; this equals ``hidden_states[L]`` of transformers'
``output_hidden_states=True``. Blocks after the deepest requested layer are not run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from vislens.errors import ModelError

SUPPORTED = (
    "clip",
    "clip_vision_model",
    "siglip",
    "siglip_vision_model",
    "siglip2",
    "siglip2_vision_model",
    "dinov2",
    "dinov2_with_registers",
    "vit",
    "llava",
)
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class TokenLayout:
    """Where things are in an encoder's token sequence: prefix tokens, then a row-major grid."""

    has_cls: bool
    n_prefix_tokens: int
    grid_h: int
    grid_w: int

    @property
    def n_patches(self) -> int:
        return self.grid_h * self.grid_w

    @property
    def n_tokens(self) -> int:
        return self.n_prefix_tokens + self.n_patches


class _StopForward(Exception):
    """Raised by a hook once the deepest requested layer has been captured."""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _read_model_type(path: Path) -> str:
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelError(
            f"{path}: no config.json — pass a directory written by save_pretrained or a hub id"
        )
    try:
        return str(json.loads(cfg_path.read_text())["model_type"])
    except (json.JSONDecodeError, KeyError) as e:
        raise ModelError(f"{cfg_path}: cannot read model_type ({e})") from None


def _locate(name_or_path: str) -> Path:
    """A local directory for ``name_or_path``: as given, the shipped toy model, or the hub cache."""
    if name_or_path == "toy":
        try:
            from vislens.models.toy import toy_model_dir  # type: ignore[attr-defined,unused-ignore]
        except ImportError as e:  # pragma: no cover - the toy ships with vislens
            raise ModelError(f"the toy model is not available in this install ({e})") from None
        return Path(toy_model_dir(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelError(f"{path}: is a file; pass the model's directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name_or_path))
    except Exception as e:
        raise ModelError(
            f"model '{name_or_path}': not a local directory and not fetchable from the hub "
            f"({type(e).__name__}). Check the id, or pass a directory written by save_pretrained."
        ) from None


def _find_blocks(model: torch.nn.Module, n_layers: int) -> torch.nn.ModuleList:
    for _, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and len(mod) == n_layers:
            return mod
    raise ModelError(f"{type(model).__name__}: could not find its {n_layers} transformer blocks")


class VisionEncoder:
    """A loaded vision encoder with its image processor and token layout."""

    def __init__(
        self,
        name_or_path: str,
        model: torch.nn.Module,
        processor: Any,
        model_type: str,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self.name_or_path = name_or_path
        self.model = model
        self.processor = processor
        self.model_type = model_type
        self.device = device
        self.dtype = dtype
        cfg: Any = model.config
        self.n_layers: int = int(cfg.num_hidden_layers)
        self.d_model: int = int(cfg.hidden_size)
        self.patch_size: int = int(cfg.patch_size)
        self.n_registers: int = int(getattr(cfg, "num_register_tokens", 0) or 0)
        self.has_cls: bool = not model_type.startswith("siglip")
        self.blocks = _find_blocks(model, self.n_layers)

    # -- layers and layout --------------------------------------------------------------
    def resolve_layers(self, layers: Sequence[int]) -> list[int]:
        """Absolute, sorted, unique layer indices; negatives count from the last block."""
        out = set()
        for layer in layers:
            absolute = layer + self.n_layers + 1 if layer < 0 else layer
            if not 0 <= absolute <= self.n_layers:
                raise ModelError(
                    f"layer {layer} is out of range for {self.name_or_path}: it has {self.n_layers} "
                    f"blocks, so layers 0..{self.n_layers} (or -1..-{self.n_layers + 1}) exist"
                )
            out.add(absolute)
        return sorted(out)

    def layout(self, pixel_values: Tensor) -> TokenLayout:
        h, w = pixel_values.shape[-2:]
        n_prefix = (1 if self.has_cls else 0) + self.n_registers
        return TokenLayout(self.has_cls, n_prefix, h // self.patch_size, w // self.patch_size)

    # -- running ------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image]) -> Float[Tensor, "b 3 h w"]:
        """The model's own preprocessing (resize, crop, normalise) of RGB images."""
        out = self.processor(images=list(images), return_tensors="pt")
        return out["pixel_values"]

    def _forward(self, pixel_values: Tensor) -> Any:
        return self.model(pixel_values=pixel_values.to(self.device, self.dtype))

    @torch.inference_mode()
    def residual_stream(
        self, pixel_values: Float[Tensor, "b 3 h w"], layers: Sequence[int]
    ) -> dict[int, Float[Tensor, "b t d"]]:
        """Hidden states at ``layers`` (absolute indices), each ``[batch, n_tokens, d_model]``."""
        wanted = self.resolve_layers(layers)
        deepest = wanted[-1]
        captured: dict[int, Tensor] = {}
        handles = []

        def pre_hook(_mod: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            hs = args[0] if args else kwargs["hidden_states"]
            captured[0] = hs
            if deepest == 0:
                raise _StopForward

        def make_hook(layer: int) -> Any:
            def hook(_mod: torch.nn.Module, _inp: Any, out: Any) -> None:
                captured[layer] = out[0] if isinstance(out, tuple) else out
                if layer == deepest:
                    raise _StopForward

            return hook

        if 0 in wanted:
            handles.append(self.blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for layer in wanted:
            if layer > 0:
                handles.append(self.blocks[layer - 1].register_forward_hook(make_hook(layer)))
        try:
            self._forward(pixel_values)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        return {layer: captured[layer] for layer in wanted}

    @torch.inference_mode()
    def embed(self, pixel_values: Float[Tensor, "b 3 h w"]) -> Float[Tensor, "b e"]:
        """One vector per image: the model's pooled output (CLIP: projected if it has a
        projection; SigLIP: its attention-pool head; DINOv2 / ViT: the final-norm CLS)."""
        out = self._forward(pixel_values)
        image_embeds = getattr(out, "image_embeds", None)
        if image_embeds is not None:
            return image_embeds
        if self.model_type == "vit" or getattr(out, "pooler_output", None) is None:
            return out.last_hidden_state[:, 0]
        return out.pooler_output


def _load_model(path: Path, model_type: str) -> tuple[torch.nn.Module, str]:
    import transformers as tf

    if model_type == "clip":
        return tf.CLIPVisionModelWithProjection.from_pretrained(path), "clip_vision_model"
    if model_type in ("siglip", "siglip2"):
        cls = tf.SiglipVisionModel if model_type == "siglip" else tf.Siglip2VisionModel
        return cls.from_pretrained(path), f"{model_type}_vision_model"
    if model_type == "llava":
        vlm = tf.LlavaForConditionalGeneration.from_pretrained(path)
        tower = vlm.model.vision_tower
        return tower, str(tower.config.model_type)
    return tf.AutoModel.from_pretrained(path), model_type


def load_vision_encoder(
    name_or_path: str, *, device: str = "auto", dtype: str = "float32"
) -> VisionEncoder:
    """Load a CLIP / SigLIP / DINOv2 / ViT encoder (or a LLaVA checkpoint's vision tower, or
    ``"toy"``) from a hub id or a local directory, with its own image processor."""
    import transformers as tf

    tf.utils.logging.disable_progress_bar()
    if dtype not in _DTYPES:
        raise ModelError(f"dtype '{dtype}': choose one of {sorted(_DTYPES)}")
    path = _locate(name_or_path)
    model_type = _read_model_type(path)
    if model_type not in SUPPORTED:
        raise ModelError(
            f"{name_or_path}: model_type '{model_type}' is not a supported vision encoder "
            f"(supported: {', '.join(SUPPORTED)})"
        )
    prev = tf.utils.logging.get_verbosity()
    tf.utils.logging.set_verbosity_error()  # the PIL-fallback notice is noise here
    try:
        model, kind = _load_model(path, model_type)
        processor = tf.AutoImageProcessor.from_pretrained(path)
    except OSError as e:
        raise ModelError(
            f"{name_or_path}: could not load the model or its image processor ({e})"
        ) from None
    finally:
        tf.utils.logging.set_verbosity(prev)
    dev = resolve_device(device)
    torch_dtype = _DTYPES[dtype]
    model = model.to(dev, torch_dtype).eval()
    return VisionEncoder(name_or_path, model, processor, kind, dev, torch_dtype)


def select_tokens(acts_btd: Float[Tensor, "b t d"], tokens: str, layout: TokenLayout) -> Tensor:
    """Keep ``cls`` ([b, d]), ``patches`` ([b, h*w, d]), ``all`` ([b, t, d]) or ``mean`` over
    patches ([b, d])."""
    if tokens == "all":
        return acts_btd
    patches = acts_btd[:, layout.n_prefix_tokens :]
    if tokens == "patches":
        return patches
    if tokens == "mean":
        return patches.mean(dim=1)
    if tokens == "cls":
        if not layout.has_cls:
            raise ModelError(
                "tokens='cls': this model has no CLS token (SigLIP); use 'mean' or 'patches'"
            )
        return acts_btd[:, 0]
    raise ModelError(f"tokens '{tokens}': choose cls, patches, all or mean")
