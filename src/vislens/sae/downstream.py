"""Downstream loss of an SAE trained on a VLM's LLM side: the model's next-token loss on
text about an image with the SAE's reconstruction spliced in at the image positions of one
LLM layer (the "CE loss recovered" of SAELens and the downstream loss of Gao et al. 2024).

Per batch of (image, prompt, text) the VLM runs three times, teacher-forced on the text:

- **clean**: untouched; a hook reads the hidden states at the image positions of the layer,
  so the SAE's reconstruction metrics (EV, L0, …) come from the same pass;
- **spliced**: those hidden states replaced by the SAE's reconstruction;
- **zero**: replaced by zeros (zero ablation).

The loss is the mean next-token cross-entropy over the text tokens, and
``loss_recovered = (L_zero − L_spliced) / (L_zero − L_clean)``: 1 when the reconstruction
is as good as the activations, 0 when it is as bad as nothing.

Layers follow ``vislens.models.vlm.base``: 0 is the LLM's input at the image positions (a
pre-hook on the first decoder block), ``L`` the output of decoder block ``L`` (a hook on it);
the last block's states are taken after the LLM's final norm, as transformers reports them,
so there the splice is on the norm's output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from torch import Tensor

from vislens.errors import InputError, ModelError
from vislens.sae.metrics import MetricsAccumulator

if TYPE_CHECKING:
    from vislens.models.vlm.base import VLMAdapter, VLMInputs
    from vislens.sae.base import BaseSAE

Replace = Callable[[Tensor], Tensor]
"""Maps the hidden states at the image positions ``[b, n, d]`` to what the model sees."""


@dataclass(frozen=True)
class DownstreamLoss:
    """Next-token losses on the text tokens (nats per token) for one layer."""

    layer: int
    n_images: int
    n_tokens: int
    loss_clean: float
    loss_spliced: float
    loss_zero: float

    @property
    def loss_recovered(self) -> float:
        """``(L_zero − L_spliced) / (L_zero − L_clean)``; NaN when zero ablation costs nothing."""
        gap = self.loss_zero - self.loss_clean
        return (self.loss_zero - self.loss_spliced) / gap if gap != 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"loss_recovered": self.loss_recovered}

    def report(self, *, prompt: str, text_column: str) -> dict[str, Any]:
        """The ``downstream`` entry of eval.json (docs/formats/sae-eval.md)."""
        return self.as_dict() | {"prompt": prompt, "text_column": text_column}


def _replace_at(h_btd: Tensor, pos_bn: Tensor, replace: Replace) -> Tensor:
    idx = pos_bn.to(h_btd.device).unsqueeze(-1).expand(-1, -1, h_btd.shape[-1])
    new = replace(torch.gather(h_btd, 1, idx)).to(h_btd.dtype)
    return h_btd.scatter(1, idx, new)


@contextmanager
def splice(vlm: VLMAdapter, layer: int, pos_bn: Tensor, replace: Replace) -> Iterator[None]:
    """While open, the hidden states at ``pos_bn`` of visual layer ``layer`` pass through
    ``replace`` in every forward pass of ``vlm``'s LLM."""
    if not 0 <= layer <= vlm.n_layers:
        raise ModelError(
            f"{vlm.name}: layer {layer} out of range; this LLM has layers 0..{vlm.n_layers}"
        )
    blocks = vlm.decoder_layers
    if layer == 0:

        def pre_hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if args:
                return (_replace_at(args[0], pos_bn, replace), *args[1:]), kwargs
            return args, kwargs | {
                "hidden_states": _replace_at(kwargs["hidden_states"], pos_bn, replace)
            }

        handle = blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:

        def post_hook(module: Any, args: Any, output: Any) -> Any:
            if isinstance(output, tuple):
                return (_replace_at(output[0], pos_bn, replace), *output[1:])
            return _replace_at(output, pos_bn, replace)

        module = vlm.final_norm if layer == vlm.n_layers else blocks[layer - 1]
        handle = module.register_forward_hook(post_hook)
    try:
        yield
    finally:
        handle.remove()


def _text_loss(vlm: VLMAdapter, inputs: VLMInputs) -> tuple[float, int]:
    """Summed next-token cross-entropy over the appended text tokens, and their count."""
    assert inputs.answer_start_b is not None
    batch = {k: v.to(vlm.device) if hasattr(v, "to") else v for k, v in inputs.batch.items()}
    with torch.no_grad():
        logits = vlm.model(**batch, use_cache=False).logits.float()
    ids = batch["input_ids"]
    t = ids.shape[1]
    total, count = 0.0, 0
    for b in range(ids.shape[0]):
        start = int(inputs.answer_start_b[b])
        # the token at p is predicted from the logits at p - 1 (left padding: text is the tail)
        ce = torch.nn.functional.cross_entropy(
            logits[b, start - 1 : t - 1], ids[b, start:], reduction="sum"
        )
        total += float(ce)
        count += t - start
    return total, count


def downstream_loss(
    vlm: VLMAdapter,
    sae: BaseSAE,
    layer: int,
    images: Sequence[Image.Image],
    texts: Sequence[str],
    *,
    prompt: str = "describe the image.",
    batch_size: int = 8,
) -> tuple[DownstreamLoss, MetricsAccumulator]:
    """Clean, spliced and zero-ablation next-token losses of ``vlm`` on ``texts`` (one per
    image, teacher-forced after ``prompt``) with ``sae`` at visual layer ``layer``, and the
    SAE's reconstruction metrics on the hidden states it replaced (``.result()``,
    ``.frequencies()``)."""
    if len(images) != len(texts) or not images:
        raise InputError(f"give one text per image ({len(images)} images, {len(texts)} texts)")
    if any(not str(t).strip() for t in texts):
        raise InputError("a text to score is empty; every image needs a caption or answer")
    acc = MetricsAccumulator(sae.d_sae)

    def read(x_bnd: Tensor) -> Tensor:
        x = x_bnd.reshape(-1, x_bnd.shape[-1]).float()
        if x.shape[-1] != sae.d_in:
            raise InputError(
                f"layer {layer} of {vlm.name} is {x.shape[-1]} wide but the SAE reads d_in={sae.d_in}"
            )
        with torch.no_grad():
            x_hat, codes = sae(x)
        acc.add(x, x_hat, codes)
        return x_bnd

    def reconstruct(x_bnd: Tensor) -> Tensor:
        with torch.no_grad():
            x_hat, _ = sae(x_bnd.float())
        return x_hat

    sums = {"clean": 0.0, "spliced": 0.0, "zero": 0.0}
    n_tokens = 0
    for s in range(0, len(images), batch_size):
        inputs = vlm.prepare(list(images[s : s + batch_size]), [prompt] * len(images[s : s + batch_size]),
                             answers=[str(t) for t in texts[s : s + batch_size]])  # fmt: skip
        for key, fn in (("clean", read), ("spliced", reconstruct), ("zero", torch.zeros_like)):
            with splice(vlm, layer, inputs.image_positions_bn, fn):
                total, count = _text_loss(vlm, inputs)
            sums[key] += total
        n_tokens += count
    loss = DownstreamLoss(
        layer=layer, n_images=len(images), n_tokens=n_tokens,
        loss_clean=sums["clean"] / n_tokens, loss_spliced=sums["spliced"] / n_tokens,
        loss_zero=sums["zero"] / n_tokens,
    )  # fmt: skip
    return loss, acc


__all__ = ["DownstreamLoss", "downstream_loss", "splice"]
