"""One interface over transformers VLMs: where the image tokens are, what the LLM holds
there, where it looks, and what it answers.

Conventions (the same for every adapter):

- **Image tokens** are the placeholder positions the processor expanded in ``input_ids``
  (``<image>`` for LLaVA, ``<|image_pad|>`` for Qwen2-VL). Each maps to ``(row, col)`` in
  the LLM's token grid, row-major (after Qwen's 2x2 merge: one token per 28-px cell).
- **Layers**: visual layer 0 is the LLM's input at the image positions (the connector's
  output); layer ``L`` is the output of decoder block ``L`` (1-based) — exactly
  ``hidden_states[L]`` of a plain forward with ``output_hidden_states=True``, which means
  the last layer has the LLM's final norm applied, as transformers does.
- **Attention** is the softmax weight from chosen query positions to the image tokens,
  per layer and head. Forward hooks keep only that slice; the full ``(heads, seq, seq)``
  tensor of a layer is dropped as soon as the layer is done. Needs eager attention, which
  the adapter switches on for the capture if the model was loaded otherwise.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from jaxtyping import Float, Int
from PIL import Image

from vislens.errors import InputError, ModelError

if TYPE_CHECKING:
    import torch

QuerySpec = Literal["last", "answer_start"] | Sequence[int]


@dataclass
class VLMInputs:
    """A processed batch (one image per prompt) and where its image tokens sit."""

    batch: dict[str, Any]
    """The processor's output (``input_ids``, ``attention_mask``, ``pixel_values``, ...)."""
    image_positions_bn: Int[torch.Tensor, "b n"]
    """Sequence position of each image token, per prompt (left padding included)."""
    grid_rc_n2: Int[torch.Tensor, "n 2"]
    """``(row, col)`` of each image token in the LLM token grid (the same for every prompt)."""
    grid_shape: tuple[int, int]
    """Rows and columns of the LLM token grid."""
    answer_start_b: Int[torch.Tensor, " b"] | None = None
    """Position of the first answer token per prompt, when answers were appended."""

    @property
    def n_image_tokens(self) -> int:
        return int(self.image_positions_bn.shape[1])

    @property
    def input_ids(self) -> torch.Tensor:
        return self.batch["input_ids"]


@dataclass
class Capture:
    """What one forward pass recorded."""

    hidden: dict[int, Float[torch.Tensor, "b n d"]]
    """Visual layer -> LLM hidden states at the image positions."""
    attention: Float[torch.Tensor, "b l h q n"] | None
    """Attention from the query positions to the image tokens, per captured layer and head."""
    attention_layers: tuple[int, ...]
    """Decoder blocks (1-based) the attention axis ``l`` stands for."""
    query_positions_bq: Int[torch.Tensor, "b q"] | None
    """The sequence positions the queries were taken at."""
    logits_last: Float[torch.Tensor, "b v"]
    """Next-token logits at the last position."""


class VLMAdapter(ABC):
    """Base class: subclasses say how prompts are formatted and where the grid is."""

    #: transformers ``model_type`` values this adapter serves.
    model_types: tuple[str, ...] = ()

    def __init__(
        self,
        model: Any,
        processor: Any,
        name: str,
        *,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self.image_size = image_size
        """If set, every image must be exactly this (width, height); others are an error."""

    # --- what subclasses provide -------------------------------------------------------
    @property
    @abstractmethod
    def image_token_id(self) -> int:
        """Token id of the image placeholder the processor expands."""

    @abstractmethod
    def grid_shape(self, batch: dict[str, Any]) -> tuple[int, int]:
        """The LLM token grid ``(rows, cols)`` of the (single-size) images in ``batch``."""

    @abstractmethod
    def processor_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the processor call (e.g. pinned pixel bounds)."""

    @property
    @abstractmethod
    def decoder_layers(self) -> Sequence[torch.nn.Module]:
        """The LLM's decoder blocks, in order."""

    # --- shared behaviour --------------------------------------------------------------
    @property
    def final_norm(self) -> torch.nn.Module:
        """The LLM's norm after the last block (applied to the last visual layer)."""
        return self.model.model.language_model.norm

    @property
    def n_layers(self) -> int:
        """Number of LLM decoder blocks (visual layers run 0..n_layers)."""
        return len(self.decoder_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: str) -> str:
        """The text for one image + prompt: the processor's chat template when it has one,
        else the image placeholder followed by the prompt."""
        template = getattr(self.processor, "chat_template", None)
        if template:
            messages = [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
            ]
            return str(self.processor.apply_chat_template(messages, add_generation_prompt=True))
        return f"{self.processor.image_token}\n{prompt}"

    def check_image(self, image: Image.Image, where: str) -> Image.Image:
        """An RGB image of the size this adapter was pinned to; a clear error otherwise."""
        if not isinstance(image, Image.Image):
            raise InputError(f"{where}: expected a PIL image, got {type(image).__name__}")
        if self.image_size is not None and image.size != tuple(self.image_size):
            w, h = self.image_size
            raise InputError(
                f"{where}: image is {image.size[0]}x{image.size[1]} px but {self.name} is pinned to "
                f"{w}x{h} (one LLM token per grid cell); resize or crop it to {w}x{h} first"
            )
        return image.convert("RGB")

    def prepare(
        self,
        images: Sequence[Image.Image] | Image.Image,
        prompts: Sequence[str] | str,
        *,
        answers: Sequence[str] | None = None,
    ) -> VLMInputs:
        """Process images and prompts (one image per prompt) and locate the image tokens.

        With ``answers``, each answer is appended after the generation prompt (teacher
        forcing) and ``answer_start_b`` marks its first token.
        """
        import torch

        if isinstance(images, Image.Image):
            images = [images]
        if isinstance(prompts, str):
            prompts = [prompts]
        if len(images) != len(prompts):
            raise InputError(
                f"{len(images)} images but {len(prompts)} prompts; give one image per prompt"
            )
        if answers is not None and len(answers) != len(prompts):
            raise InputError(f"{len(answers)} answers for {len(prompts)} prompts")
        images = [self.check_image(im, f"image {i}") for i, im in enumerate(images)]
        texts = [self.format_prompt(p) for p in prompts]
        answer_lens: list[int] | None = None
        if answers is not None:
            tok = self.processor.tokenizer
            answer_lens = [len(tok(a, add_special_tokens=False).input_ids) for a in answers]
            texts = [t + a for t, a in zip(texts, answers, strict=True)]
        tok = self.processor.tokenizer
        old_side = tok.padding_side
        tok.padding_side = "left"  # so generation continues right after every prompt
        try:
            batch = dict(
                self.processor(
                    images=list(images),
                    text=texts,
                    return_tensors="pt",
                    padding=True,
                    **self.processor_kwargs(),
                )
            )
        finally:
            tok.padding_side = old_side
        ids = batch["input_ids"]
        max_len = self.max_sequence_length()
        if max_len is not None and ids.shape[1] > max_len:
            raise InputError(
                f"prompt too long: {ids.shape[1]} tokens with the image, but {self.name} takes at "
                f"most {max_len}; shorten the prompt"
            )
        is_img = ids == self.image_token_id
        counts = is_img.sum(1)
        if bool((counts != counts[0]).any()) or int(counts[0]) == 0:
            raise InputError(
                f"image tokens per prompt differ or are missing ({counts.tolist()}); give images of one "
                "size and do not put image placeholders in the prompt text"
            )
        rows, cols = self.grid_shape(batch)
        n = int(counts[0])
        if rows * cols != n:
            raise ModelError(
                f"{self.name}: processor made {n} image tokens but the grid is {rows}x{cols}"
            )
        positions = torch.stack([torch.nonzero(row).flatten() for row in is_img])
        grid_rc = torch.stack(
            torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), -1
        )
        answer_start = None
        if answer_lens is not None:
            # Left padding: every sequence ends at the last column, answers are its tail.
            answer_start = torch.tensor([ids.shape[1] - k for k in answer_lens])
        return VLMInputs(
            batch=batch,
            image_positions_bn=positions,
            grid_rc_n2=grid_rc.reshape(-1, 2),
            grid_shape=(rows, cols),
            answer_start_b=answer_start,
        )

    def max_sequence_length(self) -> int | None:
        """The LLM's longest sequence, from its config."""
        cfg = getattr(self.model.config, "text_config", self.model.config)
        value = getattr(cfg, "max_position_embeddings", None)
        return int(value) if value else None

    def _query_positions(self, inputs: VLMInputs, query: QuerySpec) -> torch.Tensor:
        import torch

        b, t = inputs.input_ids.shape
        if query == "last":
            return torch.full((b, 1), t - 1, dtype=torch.long)
        if query == "answer_start":
            if inputs.answer_start_b is None:
                raise InputError("query 'answer_start' needs inputs prepared with answers=")
            return inputs.answer_start_b.view(b, 1).long()
        pos = torch.tensor(list(query), dtype=torch.long)
        pos = torch.where(pos < 0, pos + t, pos)
        if bool(((pos < 0) | (pos >= t)).any()):
            raise InputError(f"query positions {list(query)} fall outside the {t}-token sequence")
        return pos.view(1, -1).expand(b, -1)

    def _check_layers(self, layers: Sequence[int], lo: int, what: str) -> tuple[int, ...]:
        out = tuple(int(x) for x in layers)
        bad = [x for x in out if not lo <= x <= self.n_layers]
        if bad:
            raise ModelError(
                f"{self.name}: {what} {bad} out of range; this LLM has layers {lo}..{self.n_layers}"
            )
        return out

    @contextmanager
    def _eager_attention(self, needed: bool) -> Iterator[None]:
        current = getattr(self.model.config, "_attn_implementation", "eager")
        if not needed or current == "eager":
            yield
            return
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(current)

    def capture(
        self,
        inputs: VLMInputs,
        *,
        layers: Sequence[int] = (),
        attention_layers: Sequence[int] = (),
        query: QuerySpec = "last",
    ) -> Capture:
        """One forward pass recording hidden states at the image positions for ``layers``
        (0 = LLM input) and attention from ``query`` positions to the image tokens for
        ``attention_layers`` (1-based blocks)."""
        import torch

        layers = self._check_layers(layers, 0, "layers")
        attn_layers = self._check_layers(attention_layers, 1, "attention layers")
        pos_bn = inputs.image_positions_bn.to(self.device)
        q_bq = self._query_positions(inputs, query).to(self.device) if attn_layers else None
        hidden: dict[int, torch.Tensor] = {}
        attn: dict[int, torch.Tensor] = {}
        blocks = self.decoder_layers
        n_blocks = len(blocks)
        handles = []

        def take_hidden(h_btd: torch.Tensor) -> torch.Tensor:
            idx = pos_bn.unsqueeze(-1).expand(-1, -1, h_btd.shape[-1])
            return torch.gather(h_btd, 1, idx).detach()

        if 0 in layers:

            def pre_hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                h = args[0] if args else kwargs["hidden_states"]
                hidden[0] = take_hidden(h)

            handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
        for layer in layers:
            if layer == 0:
                continue

            def post_hook(module: Any, args: Any, output: Any, layer: int = layer) -> None:
                h = output[0] if isinstance(output, tuple) else output
                hidden[layer] = take_hidden(h)
                if layer == n_blocks:  # transformers reports the last block after the norm
                    hidden[layer] = self.final_norm(hidden[layer]).detach()

            handles.append(blocks[layer - 1].register_forward_hook(post_hook))
        for layer in attn_layers:

            def attn_hook(module: Any, args: Any, output: Any, layer: int = layer) -> None:
                weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
                if weights is None:
                    raise ModelError(
                        f"{self.name}: layer {layer} returned no attention weights; load with "
                        "attn_implementation='eager'"
                    )
                assert q_bq is not None
                b, h = weights.shape[:2]
                rows = torch.gather(
                    weights, 2, q_bq.view(b, 1, -1, 1).expand(b, h, -1, weights.shape[-1])
                )
                cols = pos_bn.view(b, 1, 1, -1).expand(b, h, rows.shape[2], -1)
                attn[layer] = torch.gather(rows, 3, cols).detach()

            handles.append(
                self._attention_module(blocks[layer - 1]).register_forward_hook(attn_hook)
            )
        try:
            with self._eager_attention(bool(attn_layers)), torch.no_grad():
                out = self.model(**self._to_device(inputs.batch), use_cache=False, logits_to_keep=1)
        finally:
            for handle in handles:
                handle.remove()
        attention = torch.stack([attn[x] for x in attn_layers], 1) if attn_layers else None
        return Capture(
            hidden={x: hidden[x] for x in layers},
            attention=attention,
            attention_layers=attn_layers,
            query_positions_bq=q_bq,
            logits_last=out.logits[:, -1].detach(),
        )

    def _attention_module(self, block: torch.nn.Module) -> torch.nn.Module:
        return block.self_attn  # type: ignore[return-value]

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        dev = self.device
        return {k: v.to(dev) if hasattr(v, "to") else v for k, v in batch.items()}

    def hidden_states(
        self, inputs: VLMInputs, layers: Sequence[int]
    ) -> dict[int, Float[torch.Tensor, "b n d"]]:
        """LLM hidden states at the image positions for ``layers`` (0 = connector output)."""
        return self.capture(inputs, layers=layers).hidden

    def attention_to_image(
        self, inputs: VLMInputs, layers: Sequence[int], query: QuerySpec = "last"
    ) -> Float[torch.Tensor, "b l h q n"]:
        """Attention weights from ``query`` positions to the image tokens per layer and head."""
        result = self.capture(inputs, attention_layers=layers, query=query).attention
        assert result is not None
        return result

    def generate(
        self,
        images: Sequence[Image.Image] | Image.Image,
        prompts: Sequence[str] | str,
        *,
        max_new_tokens: int = 32,
    ) -> list[str]:
        """Greedy answers, one per (image, prompt)."""
        import torch

        inputs = self.prepare(images, prompts)
        with torch.no_grad():
            out = self.model.generate(
                **self._to_device(inputs.batch), max_new_tokens=max_new_tokens, do_sample=False
            )
        new = out[:, inputs.input_ids.shape[1] :]
        texts = self.processor.tokenizer.batch_decode(new, skip_special_tokens=True)
        return [t.strip() for t in texts]

    def answer(self, image: Image.Image, prompt: str, *, max_new_tokens: int = 32) -> str:
        """The greedy answer to one prompt about one image."""
        return self.generate([image], [prompt], max_new_tokens=max_new_tokens)[0]
