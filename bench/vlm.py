"""Cost of capturing hidden states and the attention slice in the toy VLM's forward pass.

Prints tokens/s of (a) the plain forward, (b) the same forward with every LLM layer's
hidden states at the image positions and the last token's attention to the image tokens
in every layer and head captured, side by side with the ratio. Goal: extra cost < 25%.

    python bench/vlm.py [--batch 8] [--repeats 20] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _report import figure


def main() -> None:
    import torch

    from vislens.data.synthetic import WorldSpec, sample_scene
    from vislens.models.toy import load_toy_vlm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 5
    torch.set_num_threads(args.threads)

    vlm = load_toy_vlm()
    images = [sample_scene(WorldSpec(), 99, i)[0] for i in range(args.batch)]
    prompts = ["is there a green circle?"] * args.batch
    inputs = vlm.prepare(images, prompts)
    batch = vlm._to_device(inputs.batch)
    n_tokens = int(inputs.input_ids.numel())
    layers = list(range(vlm.n_layers + 1))
    attn_layers = list(range(1, vlm.n_layers + 1))

    def plain() -> None:
        with torch.no_grad():
            vlm.model(**batch, use_cache=False, logits_to_keep=1)

    def captured() -> None:
        vlm.capture(inputs, layers=layers, attention_layers=attn_layers, query="last")

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        fn()  # warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    # Interleave the two so load changes on a shared machine hit both alike.
    t_plain, t_capture = [], []
    for _ in range(3):
        t_plain.append(timed(plain))
        t_capture.append(timed(captured))
    tp, tc = min(t_plain), min(t_capture)
    print(
        f"toy VLM forward, batch {args.batch}, {n_tokens} tokens, eager attention, {args.threads} thread(s)"
    )
    print(f"{'':<34}{'tokens/s':>12}")
    print(f"{'plain forward (reference)':<34}{n_tokens / tp:>12.0f}")
    print(f"{'forward + hidden + attn slice':<34}{n_tokens / tc:>12.0f}")
    extra = tc / tp - 1
    print(f"capture / plain time ratio: {tc / tp:.3f}  (extra cost {extra:+.1%}; goal < +25%)")
    figure(
        "toy VLM forward + hidden states + attention slice",
        n_tokens / tc,
        "tokens/s",
        reference="plain forward",
        reference_value=n_tokens / tp,
        goal="extra cost < +25%",
        met=extra < 0.25,
        note=f"extra cost {extra:+.1%}; batch {args.batch}, {args.threads} thread(s)",
    )


if __name__ == "__main__":
    main()
