"""Text-only access to a causal LM (on its own, or the LLM inside a VLM).

What LatentLens-style lenses need from the language side: hidden states of caption tokens
at any layer, the input embedding matrix, and the final norm + LM head (logit lens).
Layers follow transformers' numbering: 0 is the embedding output, ``L`` the output of
block ``L``, and the last one has the final norm applied (as ``output_hidden_states``
reports it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jaxtyping import Float, Int

from vislens.errors import InputError, ModelError

if TYPE_CHECKING:
    import torch

    from vislens.models.vlm.base import VLMAdapter


@dataclass
class TokenStates:
    """Hidden states of every token of one text."""

    text: str
    token_ids: Int[torch.Tensor, " t"]
    tokens: list[str]
    """Token strings as the tokenizer spells them."""
    offsets: list[tuple[int, int]]
    """Character span of each token in ``text``."""
    hidden: dict[int, Float[torch.Tensor, "t d"]]
    """Layer -> hidden state of each token."""


class TextLM:
    """A causal LM's text side: its backbone (decoder stack), final norm, LM head, tokenizer."""

    def __init__(self, backbone: Any, lm_head: Any, tokenizer: Any, name: str) -> None:
        self.backbone = backbone
        self.lm_head = lm_head
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def from_vlm(cls, vlm: VLMAdapter) -> TextLM:
        """The LLM inside a VLM adapter (same weights, text only)."""
        return cls(
            vlm.model.model.language_model, vlm.model.lm_head, vlm.processor.tokenizer, vlm.name
        )

    @classmethod
    def load(cls, name_or_path: str, *, device: str = "cpu", dtype: str = "float32") -> TextLM:
        """A causal LM by hub id or directory, or ``toy`` for the toy VLM's LLM."""
        import torch

        from vislens.models.toy.paths import is_toy_name

        if is_toy_name(name_or_path):
            from vislens.models.toy import load_toy_vlm

            return cls.from_vlm(load_toy_vlm(name_or_path, device=device))
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=getattr(torch, dtype))
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as e:
            raise ModelError(
                f"cannot load causal LM {name_or_path!r} ({type(e).__name__}); give a directory "
                "written by save_pretrained, a reachable hub id, or 'toy'"
            ) from None
        model = model.to(device).eval()  # type: ignore[arg-type]
        return cls(model.model, model.lm_head, tokenizer, name_or_path)

    @property
    def n_layers(self) -> int:
        return len(self.backbone.layers)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def final_norm(self) -> torch.nn.Module:
        return self.backbone.norm

    def input_embeddings(self) -> Float[torch.Tensor, "v d"]:
        """The input embedding matrix (vocabulary x width)."""
        return self.backbone.embed_tokens.weight.detach()

    def logits(
        self, hidden_nd: Float[torch.Tensor, "n d"], *, normed: bool = False
    ) -> Float[torch.Tensor, "n v"]:
        """LM-head logits for hidden states (the logit lens): final norm first unless the
        states are already normed (the last layer is)."""
        import torch

        with torch.no_grad():
            h = hidden_nd if normed else self.final_norm(hidden_nd)
            return self.lm_head(h)

    def token_states(
        self, texts: Sequence[str], layers: Sequence[int], *, add_special_tokens: bool = True
    ) -> list[TokenStates]:
        """Hidden states of every token of each text at ``layers`` (0..n_layers)."""
        import torch

        bad = [x for x in layers if not 0 <= x <= self.n_layers]
        if bad:
            raise ModelError(f"{self.name}: layers {bad} out of range 0..{self.n_layers}")
        out: list[TokenStates] = []
        max_len = getattr(self.backbone.config, "max_position_embeddings", None)
        for text in texts:
            enc = self.tokenizer(
                text,
                add_special_tokens=add_special_tokens,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            ids = enc["input_ids"]
            if ids.shape[1] == 0:
                raise InputError(f"text {text!r} has no tokens")
            if max_len is not None and ids.shape[1] > max_len:
                raise InputError(
                    f"text of {ids.shape[1]} tokens exceeds {self.name}'s context of {max_len}"
                )
            with torch.no_grad():
                res = self.backbone(input_ids=ids.to(self.device), output_hidden_states=True)
            out.append(
                TokenStates(
                    text=text,
                    token_ids=ids[0],
                    tokens=self.tokenizer.convert_ids_to_tokens(ids[0].tolist()),
                    offsets=[(int(a), int(b)) for a, b in enc["offset_mapping"][0].tolist()],
                    hidden={x: res.hidden_states[x][0].detach() for x in layers},
                )
            )
        return out
