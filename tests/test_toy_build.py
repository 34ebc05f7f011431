"""The toy VLM's parts: vocabulary, processor, training-time shortcuts equal the real path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.data.synthetic import WorldSpec, sample_scene
from vislens.models.toy.build import (
    N_IMAGE_TOKENS,
    ToyArch,
    build_toy_processor,
    build_toy_vlm,
    pixel_values_for,
    toy_prompt,
)
from vislens.models.toy.tasks import TASKS, sample_qa
from vislens.models.toy.train import (
    ToyTrainConfig,
    lm_logits,
    question_and_answer,
    sample_batch,
    train_toy_vlm,
)
from vislens.models.toy.vocab import UNK, VOCAB

SMALL = ToyArch(
    vision_hidden=16, vision_layers=1, text_hidden=16, text_layers=1, text_intermediate=32
)


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, 10_000), task=st.sampled_from(TASKS), qseed=st.integers(0, 1000))
def test_every_question_and_answer_is_in_vocabulary(index: int, task: str, qseed: int) -> None:
    _, objects = sample_scene(WorldSpec(), 7, index)
    qa = sample_qa(objects, np.random.default_rng(qseed), task)
    tok = build_toy_processor().tokenizer
    for text in (qa.question, qa.answer):
        ids = tok(text, add_special_tokens=False).input_ids
        assert VOCAB[UNK] not in ids, text
        # Decoding gives the same words back (spacing around punctuation aside).
        assert tok.decode(ids).replace(" ", "") == text.replace(" ", "")


def test_processor_expands_100_image_tokens_and_matches_fast_pixels() -> None:
    processor = build_toy_processor()
    images = [sample_scene(WorldSpec(), 3, i)[0] for i in range(3)]
    batch = processor(
        images=images, text=[toy_prompt("is there a red circle?")] * 3, return_tensors="pt"
    )
    assert (batch["input_ids"] == VOCAB["<image>"]).sum(1).tolist() == [N_IMAGE_TOKENS] * 3
    np.testing.assert_allclose(
        batch["pixel_values"].numpy(), pixel_values_for(images), rtol=0, atol=1e-6
    )
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "is there a red circle?"}],
        }
    ]
    assert processor.apply_chat_template(messages, add_generation_prompt=True) == toy_prompt(
        "is there a red circle?"
    )


def test_training_forward_equals_the_models_own_forward() -> None:
    model = build_toy_vlm(SMALL, seed=1)
    processor = build_toy_processor()
    images = [sample_scene(WorldSpec(), 3, i)[0] for i in range(2)]
    batch = processor(
        images=images, text=[toy_prompt("is there a red circle?")] * 2, return_tensors="pt"
    )
    ids = batch["input_ids"]
    positions = torch.nonzero(ids[0] == VOCAB["<image>"]).flatten()
    first, last = int(positions[0]), int(positions[-1])
    assert last - first + 1 == N_IMAGE_TOKENS  # one contiguous block
    before, after, _ = question_and_answer("is there a red circle?", "yes")
    assert ids[0, :first].tolist() == before and ids[0, last + 1 :].tolist() == after
    with torch.no_grad():
        ref = model(**batch).logits
        tower = model.model.vision_tower(batch["pixel_values"], output_hidden_states=True)
        got = lm_logits(model, ids[:, :first], tower.hidden_states[-1][:, 1:], ids[:, last + 1 :])
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_a_training_batch_is_one_task_with_equal_question_lengths() -> None:
    objects = [sample_scene(WorldSpec(), 3, i)[1] for i in range(40)]
    for seed in range(6):
        idx, items, kind = sample_batch(
            objects, np.random.default_rng(seed), ToyTrainConfig(lm_batch=8)
        )
        assert kind in TASKS and 0 < len(items) <= 8 and len(idx) == len(items)
        assert len({len(before) for before, _, _ in items}) == 1
        for before, after, target in items:
            assert target[-1] == VOCAB["</s>"] and VOCAB[UNK] not in before + after + target


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    cfg = ToyTrainConfig(
        tower_steps=2, tower_batch=4, n_pool=8, lm_steps=2, lm_batch=4, arch=SMALL, n_threads=1
    )
    train_toy_vlm(tmp_path / "a", cfg, checkpoints=False)
    train_toy_vlm(tmp_path / "b", cfg, checkpoints=False)
    from transformers import LlavaForConditionalGeneration

    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "a").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "b").state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    fresh = build_toy_vlm(SMALL, seed=0).state_dict()
    changed = [k for k in a if "language_model" in k and not torch.equal(a[k], fresh[k])]
    assert changed, "stage 2 must update the LM"
