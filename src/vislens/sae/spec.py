"""What an SAE checkpoint says about itself: architecture, sizes, normalisation, hook point."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Architecture = Literal["standard", "topk", "jumprelu", "gated"]
Normalization = Literal["none", "layer_norm", "constant_norm_rescale"]
TokenScope = Literal["cls", "patches", "all"]

ARCHITECTURES: tuple[str, ...] = ("standard", "topk", "jumprelu", "gated")
NORMALIZATIONS: tuple[str, ...] = ("none", "layer_norm", "constant_norm_rescale")


@dataclass(frozen=True)
class SAESpec:
    """Everything needed to rebuild an SAE module apart from its weights.

    Field names follow SAELens' ``cfg.json`` where a field exists there, so a spec maps
    onto that file one to one.
    """

    d_in: int
    """Width of the activations the SAE reads (the model's residual stream)."""

    d_sae: int
    """Number of features (dictionary size)."""

    architecture: Architecture = "standard"
    """Inference architecture: ``standard`` (ReLU), ``topk``, ``jumprelu`` or ``gated`` (a
    trained BatchTopK SAE is saved as ``jumprelu``, as SAELens does)."""

    k: int | None = None
    """Active features per token for ``topk``."""

    normalize_activations: Normalization = "none"
    """Input normalisation applied before encoding and undone after decoding."""

    apply_b_dec_to_input: bool = True
    """Subtract ``b_dec`` from the (normalised) input before the encoder, as SAELens and
    ViT-Prisma do."""

    hook_layer: int | None = None
    """Residual-stream layer the SAE was trained on (0 = embeddings, L = output of block L)."""

    hook_name: str = ""
    """The source library's hook name, kept for reference (e.g. ``blocks.9.hook_resid_post``)."""

    hook_residual: bool = True
    """Whether the hook point is a residual-stream position (what vislens stores). An SAE
    trained on ``ln2.hook_normalized``, ``hook_mlp_out``, … is refused by ``encode`` unless
    ``--allow-layer-mismatch``; ``hook_layer`` is then the nearest residual layer."""

    rescale_acts_by_decoder_norm: bool = False
    """TopK only (SAELens): multiply pre-activations by ``‖W_dec,i‖`` before selecting the
    top k, and divide codes by it before decoding."""

    token_scope: TokenScope = "all"
    """Tokens the SAE was trained on: ``cls`` (ViT-Prisma's ``cls_token_only``), ``patches`` or ``all``."""

    model_name: str = ""
    """Model the SAE was trained on, as its source recorded it."""

    dtype: str = "float32"
    """Dtype of the weights."""

    source_format: str = "vislens"
    """Checkpoint format the SAE was read from (``saelens``, ``prisma``, ``dictionary_learning``, ``vislens``)."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the source config that vislens does not interpret, kept verbatim."""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture {self.architecture!r} is not one of {ARCHITECTURES}")
        if self.normalize_activations not in NORMALIZATIONS:
            raise ValueError(
                f"normalize_activations {self.normalize_activations!r} is not one of {NORMALIZATIONS}"
            )
        if self.rescale_acts_by_decoder_norm and self.architecture != "topk":
            raise ValueError("rescale_acts_by_decoder_norm is defined for topk SAEs only")
        if self.architecture == "topk" and (self.k is None or not 0 < self.k <= self.d_sae):
            raise ValueError(
                f"a topk SAE needs 0 < k <= d_sae (got k={self.k}, d_sae={self.d_sae})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
