"""The language model a bank is built with: a VLM's LLM, a causal LM, or a text encoder.

One small interface (``BankModel``) over transformers backbones: batched hidden states at
any layer (0 = embedding output, ``L`` = output of block ``L``, transformers'
``hidden_states[L]``), the tokenizer, and a fingerprint that tells two models apart, so a
bank is never searched with visual tokens of another model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jaxtyping import Float, Int

from vislens.errors import ModelError

if TYPE_CHECKING:
    import torch

    from vislens.models.text import TextLM


class BankModel:
    """A transformers backbone with ``output_hidden_states`` and its tokenizer."""

    def __init__(self, backbone: Any, tokenizer: Any, name: str, n_layers: int) -> None:
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.name = name
        self.n_layers = n_layers
        if getattr(tokenizer, "pad_token", None) is None:
            # Many causal LMs ship without a pad token; batching needs one, and padded
            # positions are masked and never kept, so the EOS token serves.
            fill = getattr(tokenizer, "eos_token", None) or getattr(tokenizer, "unk_token", None)
            if fill is None:
                raise ModelError(
                    f"{name}: the tokenizer has no pad, eos or unk token to pad batches with"
                )
            tokenizer.pad_token = fill

    @classmethod
    def from_text_lm(cls, lm: TextLM) -> BankModel:
        return cls(lm.backbone, lm.tokenizer, lm.name, lm.n_layers)

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def d_model(self) -> int:
        return int(self.embedding_matrix().shape[1])

    def embedding_matrix(self) -> Float[torch.Tensor, "v d"]:
        return self.backbone.get_input_embeddings().weight.detach()

    def fingerprint(self) -> str:
        """sha256 over the layer count and a strided sample of the input embedding rows:
        equal for the same weights, different for another model (or another training)."""
        import torch

        emb = self.embedding_matrix()
        step = max(1, emb.shape[0] // 1024)
        sample = emb[::step].to("cpu", torch.float32).contiguous()
        h = hashlib.sha256(f"{self.n_layers}:{tuple(emb.shape)}".encode())
        h.update(sample.numpy().tobytes())
        return h.hexdigest()

    def hidden_states(
        self,
        input_ids_bt: Int[torch.Tensor, "b t"],
        attention_mask_bt: Int[torch.Tensor, "b t"],
        layers: Sequence[int],
    ) -> dict[int, Float[torch.Tensor, "b t d"]]:
        """Hidden states of a padded batch at ``layers``. Position ids count real tokens only,
        so left and right padding give every token the position it has unpadded."""
        import torch

        bad = [x for x in layers if not 0 <= x <= self.n_layers]
        if bad:
            raise ModelError(f"{self.name}: layers {bad} out of range 0..{self.n_layers}")
        dev = self.device
        mask = attention_mask_bt.to(dev)
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = self.backbone(
                input_ids=input_ids_bt.to(dev),
                attention_mask=mask,
                position_ids=position_ids,
                output_hidden_states=True,
            )
        return {x: out.hidden_states[x] for x in layers}


def _is_vlm_dir(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type", "")
    from vislens.models.vlm.load import ADAPTERS

    return any(model_type in cls.model_types for cls in ADAPTERS)


def load_bank_model(name_or_path: str, *, device: str = "cpu") -> BankModel:
    """``toy`` (the toy VLM's LLM), a VLM directory (its LLM), a causal LM, or a text
    encoder (e.g. all-MiniLM-L6-v2), by directory or hub id."""
    from vislens.models.text import TextLM
    from vislens.models.toy.paths import is_toy_name

    if is_toy_name(name_or_path):
        return BankModel.from_text_lm(TextLM.load(name_or_path, device=device))
    path = Path(name_or_path)
    if path.is_dir() and _is_vlm_dir(path):
        from vislens.models.vlm import load_vlm

        return BankModel.from_text_lm(TextLM.from_vlm(load_vlm(str(path), device=device)))
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        cfg = AutoConfig.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"cannot load text model {name_or_path!r} ({type(e).__name__}); give a directory "
            "written by save_pretrained, a reachable hub id, or 'toy'"
        ) from None
    archs = cfg.architectures or []
    if any(a.endswith("ForCausalLM") for a in archs):
        return BankModel.from_text_lm(TextLM.load(name_or_path, device=device))
    model = AutoModel.from_pretrained(name_or_path).to(device).eval()
    n_layers = int(getattr(model.config, "num_hidden_layers", 0))
    if n_layers < 1:
        raise ModelError(f"{name_or_path}: config has no num_hidden_layers")
    return BankModel(model, tokenizer, str(name_or_path), n_layers)


def default_layers(n_layers: int) -> list[int]:
    """The paper's contextual layers 1, 2, 4, 8, 16, 24, N-2, N-1 that an N-layer LM has
    (a 4-layer LM gets 1-4: its N-1 = 3 and N-2 = 2, and 4 = N itself)."""
    wanted = {1, 2, 4, 8, 16, 24, n_layers - 2, n_layers - 1}
    return sorted(x for x in wanted if 1 <= x <= n_layers)
