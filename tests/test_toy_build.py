"""The toy VLM's parts: vocabulary, processor, training-time shortcuts equal the real path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vislens.data.synthetic import WorldSpec, sample_scene
from vislens.errors import InputError
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
    Example,
    ToyTrainConfig,
    lm_forward,
    question_and_answer,
    sample_batch,
    train_toy_vlm,
)
from vislens.models.toy.vocab import UNK, VOCAB

SMALL = ToyArch(
    vision_hidden=16, vision_layers=1, text_hidden=16, text_layers=1, text_intermediate=32
)
TINY_TRAIN = ToyTrainConfig(
    tower_steps=2,
    tower_batch=4,
    n_pool=8,
    lm_steps=2,
    lm_batch=4,
    evidence_layer=1,
    arch=SMALL,
    n_threads=1,
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


@settings(max_examples=80, deadline=None)
@given(index=st.integers(0, 10_000), task=st.sampled_from(TASKS), qseed=st.integers(0, 1000))
def test_evidence_cells_are_what_the_answer_depends_on(index: int, task: str, qseed: int) -> None:
    _, objects = sample_scene(WorldSpec(), 11, index)
    qa = sample_qa(objects, np.random.default_rng(qseed), task)
    by_cell = {o.r * 10 + o.c: o for o in objects}
    if qa.kind == "caption":
        assert qa.evidence is None
        return
    assert qa.evidence is not None
    cells = [by_cell.get(i) for i in qa.evidence]
    if qa.kind == "presence":
        assert (qa.answer == "yes") == bool(qa.evidence)
        assert all(
            o is not None and qa.question == f"is there a {o.color} {o.shape}?" for o in cells
        )
    elif qa.kind in ("cell_color", "cell_shape"):
        (cell,) = qa.evidence
        assert f"row {cell // 10}, column {cell % 10}?" in qa.question
        o = by_cell.get(cell)
        want = "none" if o is None else (o.color if qa.kind == "cell_color" else o.shape)
        assert qa.answer == want
    elif qa.kind == "location":
        (cell,) = qa.evidence
        assert qa.answer == f"row {cell // 10}, column {cell % 10}"
    elif qa.kind == "count":
        assert qa.answer == str(len(qa.evidence)) and all(o is not None for o in cells)


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
    scenes = [sample_scene(WorldSpec(), 3, i) for i in range(2)]
    questions = [("is there a red circle?", "yes"), ("what shape is in row 1, column 2?", "none")]
    examples = [
        Example(j, "presence", *question_and_answer(q, a), None)
        for j, (q, a) in enumerate(questions)
    ]
    with torch.no_grad():
        feats = model.model.vision_tower(
            torch.from_numpy(pixel_values_for([im for im, _ in scenes])),
            output_hidden_states=True,
        ).hidden_states[-1][:, 1:]
        logits, labels, hidden = lm_forward(model, feats, examples, hidden_layer=1)
    for j, ((image, _), (question, answer)) in enumerate(zip(scenes, questions, strict=True)):
        text = toy_prompt(question) + " " + answer + " </s>"
        batch = processor(images=[image], text=[text], return_tensors="pt")
        ids = batch["input_ids"][0]
        n = len(ids)
        before, after, target = question_and_answer(question, answer)
        assert ids.tolist() == [*before, *[VOCAB["<image>"]] * N_IMAGE_TOKENS, *after, *target]
        with torch.no_grad():
            ref = model(**batch, output_hidden_states=True)
        torch.testing.assert_close(logits[j, :n], ref.logits[0], rtol=1e-5, atol=1e-5)
        image_at = slice(len(before), len(before) + N_IMAGE_TOKENS)
        torch.testing.assert_close(
            hidden[j], ref.hidden_states[1][0, image_at], rtol=1e-5, atol=1e-5
        )
        # Each answer token (and </s>) is the label of the position before it, nothing else.
        want = torch.full((logits.shape[1],), -100)
        want[n - len(target) - 1 : n - 1] = torch.tensor(target)
        assert labels[j].tolist() == want.tolist()


def test_a_training_batch_mixes_tasks_and_flags_the_evidence() -> None:
    objects = [sample_scene(WorldSpec(), 3, i)[1] for i in range(40)]
    seen: set[str] = set()
    for seed in range(6):
        examples = sample_batch(objects, np.random.default_rng(seed), ToyTrainConfig(lm_batch=8))
        assert len(examples) == 8
        for e in examples:
            seen.add(e.kind)
            assert e.before[0] == VOCAB["<s>"] and e.target[-1] == VOCAB["</s>"]
            assert VOCAB[UNK] not in e.before + e.after + e.target
            assert (e.evidence is None) == (e.kind == "caption")
            if e.evidence is not None:
                occupied = {o.r * 10 + o.c for o in objects[e.image]}
                flagged = set(np.flatnonzero(e.evidence).tolist())
                if e.kind != "cell_color" and e.kind != "cell_shape":
                    assert flagged <= occupied
    assert len(seen) >= 4


@pytest.mark.slow
def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    cfg = TINY_TRAIN
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


@pytest.mark.slow
def test_a_stopped_training_run_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import LlavaForConditionalGeneration

    from vislens.models.toy import train

    cfg = replace(TINY_TRAIN, lm_steps=5)
    monkeypatch.setattr(train, "CHECKPOINT_EVERY", 2)
    train_toy_vlm(tmp_path / "whole", cfg)

    real = train.sample_batch
    calls = {"n": 0}

    def stop_at_step_3(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "sample_batch", stop_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        train_toy_vlm(tmp_path / "stopped", cfg)
    assert train.resume_path(tmp_path / "stopped").is_file()
    monkeypatch.setattr(train, "sample_batch", real)
    # The tower is not trained again on resume: stage 1 must not run.
    real_tower = train.train_tower
    monkeypatch.setattr(train, "train_tower", lambda *a, **k: pytest.fail("stage 1 re-ran"))
    train_toy_vlm(tmp_path / "stopped", cfg)
    assert not train.resume_path(tmp_path / "stopped").exists()

    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "whole").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "stopped").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A leftover state of another configuration is refused, not silently mixed in.
    monkeypatch.setattr(train, "train_tower", real_tower)
    monkeypatch.setattr(train, "sample_batch", stop_at_step_3)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        train_toy_vlm(tmp_path / "other", cfg)
    monkeypatch.setattr(train, "sample_batch", real)
    with pytest.raises(InputError, match="another configuration"):
        train_toy_vlm(tmp_path / "other", replace(cfg, lm_lr=0.5))


def test_resume_state_past_warm_up_loads_with_weights_only(tmp_path: Path) -> None:
    """The learning rate lands in the optimiser state that resuming reads with
    ``weights_only=True``: past warm-up it must still be a plain float."""
    from vislens.models.toy.tower import cosine_lr

    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(lin.parameters(), lr=1e-3)
    for step in (0, 500):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, 1000, 1e-3)
    lin(torch.ones(1, 2)).sum().backward()
    opt.step()
    torch.save({"opt": opt.state_dict()}, tmp_path / "state.pt")
    back = torch.load(tmp_path / "state.pt", map_location="cpu", weights_only=True)
    assert back["opt"]["param_groups"][0]["lr"] == pytest.approx(cosine_lr(500, 1000, 1e-3))
