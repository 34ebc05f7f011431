"""One contract suite for every VLM adapter: tiny random-weight real architectures saved
with save_pretrained and loaded back through ``load_vlm`` (the user path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers_vlm import save_tiny_llava, save_tiny_qwen2_5_vl
from vislens.errors import InputError, ModelError
from vislens.models.vlm import VLMAdapter, load_vlm

# name -> (builder, image size the adapter is pinned to, LLM token grid (rows, cols))
MEMBERS = {
    "llava": (save_tiny_llava, (56, 56), (4, 4)),
    "qwen2_5_vl": (save_tiny_qwen2_5_vl, (280, 280), (10, 10)),
}


@pytest.fixture(scope="module", params=sorted(MEMBERS))
def member(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    builder, size, grid = MEMBERS[request.param]
    model_dir = builder(tmp_path_factory.mktemp(request.param))
    adapter = load_vlm(model_dir, image_size=size)
    return request.param, adapter, size, grid


def _images(size: tuple[int, int], n: int) -> list[Image.Image]:
    g = torch.Generator().manual_seed(1)
    return [
        Image.fromarray(
            torch.randint(0, 255, (size[1], size[0], 3), generator=g, dtype=torch.uint8).numpy()
        )
        for _ in range(n)
    ]


PROMPTS = ["is there a red circle?", "what color is the shape in the row?"]


def test_image_positions_match_the_processors_own_expansion(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, grid = member
    images = _images(size, 2)
    inputs = vlm.prepare(images, PROMPTS)
    # The processor, called directly, must give the same ids; its placeholder id marks the positions.
    texts = [vlm.format_prompt(p) for p in PROMPTS]
    vlm.processor.tokenizer.padding_side = "left"
    direct = vlm.processor(
        images=images, text=texts, return_tensors="pt", padding=True, **vlm.processor_kwargs()
    )
    assert torch.equal(direct["input_ids"], inputs.input_ids)
    placeholder = vlm.processor.image_token_id
    for b in range(2):
        expected = torch.nonzero(direct["input_ids"][b] == placeholder).flatten()
        assert torch.equal(inputs.image_positions_bn[b], expected)
    assert inputs.grid_shape == grid
    assert inputs.n_image_tokens == grid[0] * grid[1]
    rows, cols = grid
    want = [(k // cols, k % cols) for k in range(rows * cols)]
    assert [tuple(x) for x in inputs.grid_rc_n2.tolist()] == want


def test_hidden_states_equal_a_plain_forward(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    inputs = vlm.prepare(_images(size, 2), PROMPTS)
    layers = list(range(vlm.n_layers + 1))
    got = vlm.hidden_states(inputs, layers)
    with torch.no_grad():
        ref = vlm.model(**inputs.batch, output_hidden_states=True).hidden_states
    assert len(ref) == vlm.n_layers + 1
    for layer in layers:
        for b in range(2):
            want = ref[layer][b, inputs.image_positions_bn[b]]
            torch.testing.assert_close(got[layer][b], want, rtol=0, atol=0)


def test_attention_slice_equals_the_full_tensor_slice(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    inputs = vlm.prepare(_images(size, 2), PROMPTS)
    layers = list(range(1, vlm.n_layers + 1))
    queries = [-1, -3]
    got = vlm.attention_to_image(inputs, layers, query=queries)
    with torch.no_grad():
        full = vlm.model(**inputs.batch, output_attentions=True).attentions
    t = inputs.input_ids.shape[1]
    n_heads = full[0].shape[1]
    assert got.shape == (2, len(layers), n_heads, len(queries), inputs.n_image_tokens)
    for li, layer in enumerate(layers):
        for b in range(2):
            for qi, q in enumerate(queries):
                want = full[layer - 1][b, :, t + q, inputs.image_positions_bn[b]]
                torch.testing.assert_close(got[b, li, :, qi], want, rtol=0, atol=0)


def test_answer_start_query_uses_the_teacher_forced_answer(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    images = _images(size, 2)
    inputs = vlm.prepare(images, PROMPTS, answers=["red", "blue circle"])
    tok = vlm.processor.tokenizer
    assert inputs.answer_start_b is not None
    for b, ans in enumerate(["red", "blue circle"]):
        start = int(inputs.answer_start_b[b])
        assert tok.decode(inputs.input_ids[b, start:]).strip() == ans
    cap = vlm.capture(inputs, attention_layers=[1], query="answer_start")
    assert cap.query_positions_bq is not None
    assert torch.equal(cap.query_positions_bq[:, 0], inputs.answer_start_b)


def test_generate_is_greedy_and_deterministic(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    images = _images(size, 2)
    first = vlm.generate(images, PROMPTS, max_new_tokens=4)
    assert first == vlm.generate(images, PROMPTS, max_new_tokens=4)
    assert all(isinstance(a, str) for a in first) and len(first) == 2


def test_layers_and_queries_out_of_range_are_clear_errors(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    inputs = vlm.prepare(_images(size, 1), PROMPTS[:1])
    with pytest.raises(ModelError, match="out of range"):
        vlm.hidden_states(inputs, [vlm.n_layers + 1])
    with pytest.raises(ModelError, match="out of range"):
        vlm.attention_to_image(inputs, [0])
    with pytest.raises(InputError, match="outside"):
        vlm.attention_to_image(inputs, [1], query=[10_000])
    with pytest.raises(InputError, match="answers="):
        vlm.attention_to_image(inputs, [1], query="answer_start")


def test_wrong_image_size_and_long_prompt_are_clear_errors(member) -> None:  # type: ignore[no-untyped-def]
    _, vlm, size, _ = member
    wrong = Image.new("RGB", (size[0] + 28, size[1]))
    with pytest.raises(InputError, match="pinned"):
        vlm.prepare([wrong], PROMPTS[:1])
    too_long = " ".join(["red"] * (vlm.max_sequence_length() or 0))
    with pytest.raises(InputError, match="too long"):
        vlm.prepare(_images(size, 1), [too_long])


def test_adapter_satisfies_the_base_interface(member) -> None:  # type: ignore[no-untyped-def]
    name, vlm, _, _ = member
    assert isinstance(vlm, VLMAdapter)
    assert name in type(vlm).model_types
    assert vlm.n_layers == len(vlm.decoder_layers) > 0


def test_unknown_models_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown model"):
        load_vlm(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match=r"no config\.json"):
        load_vlm(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelError, match="no VLM adapter"):
        load_vlm(tmp_path)
