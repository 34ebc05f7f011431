"""Text-only access to an LLM: caption-token hidden states, embeddings, norm + LM head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers_vlm import _word_tokenizer, save_tiny_llava, save_tiny_qwen2_5_vl
from vislens.errors import ModelError
from vislens.models.text import TextLM
from vislens.models.vlm import load_vlm

BUILDERS = {"llava": save_tiny_llava, "qwen2_5_vl": save_tiny_qwen2_5_vl}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def text_lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    vlm = load_vlm(BUILDERS[request.param](tmp_path_factory.mktemp(request.param)))
    return vlm, TextLM.from_vlm(vlm)


def test_token_states_equal_a_plain_text_forward(text_lm) -> None:  # type: ignore[no-untyped-def]
    vlm, lm = text_lm
    layers = list(range(lm.n_layers + 1))
    states = lm.token_states(["a red circle in the image", "blue square"], layers)
    for s in states:
        with torch.no_grad():
            ref = vlm.model(input_ids=s.token_ids[None], output_hidden_states=True)
        for layer in layers:
            torch.testing.assert_close(s.hidden[layer], ref.hidden_states[layer][0], rtol=0, atol=0)
        # The logit lens on the last (already normed) layer is the model's own logits.
        torch.testing.assert_close(
            lm.logits(s.hidden[lm.n_layers], normed=True), ref.logits[0], rtol=1e-6, atol=1e-6
        )
        assert [s.text[a:b] for a, b in s.offsets] == s.tokens


def test_logit_lens_applies_the_final_norm(text_lm) -> None:  # type: ignore[no-untyped-def]
    _, lm = text_lm
    h = torch.randn(3, lm.input_embeddings().shape[1])
    want = lm.lm_head(lm.final_norm(h))
    torch.testing.assert_close(lm.logits(h), want)


def test_input_embeddings_are_the_embedding_matrix(text_lm) -> None:  # type: ignore[no-untyped-def]
    vlm, lm = text_lm
    emb = lm.input_embeddings()
    assert torch.equal(emb, vlm.model.get_input_embeddings().weight)
    assert emb.shape[0] == len(vlm.processor.tokenizer)


def test_standalone_causal_lm_loads_and_rejects_bad_layers(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _word_tokenizer(["<pad>", "<unk>"], {"pad_token": "<pad>", "unk_token": "<unk>"})
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    lm = TextLM.load(str(tmp_path))
    assert lm.n_layers == 2
    (s,) = lm.token_states(["red circle"], [0, 2])
    assert s.hidden[2].shape == (2, 16)
    with pytest.raises(ModelError, match="out of range"):
        lm.token_states(["red"], [3])
    with pytest.raises(ModelError, match="cannot load"):
        TextLM.load(str(tmp_path / "missing"))
