"""The ``toy-mlp`` recipe (LatentLens' connector-only training): text stage data, the LM
frozen during the connector stage, determinism and resume, and the CLI's options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vislens.data.synthetic import WorldSpec, caption_for, sample_scene
from vislens.errors import InputError
from vislens.models.toy import mlp
from vislens.models.toy.build import ToyArch, build_toy_vlm
from vislens.models.toy.mlp import ToyMlpConfig, text_sequence, train_toy_mlp
from vislens.models.toy.train import _encode, _tokenizer, resume_path
from vislens.models.toy.vocab import BOS, EOS, UNK, VOCAB

SMALL = ToyArch(
    vision_hidden=16, vision_layers=1, text_hidden=16, text_layers=1, text_intermediate=32
)
TINY = ToyMlpConfig(
    tower_steps=2,
    tower_batch=4,
    n_pool=8,
    text_steps=3,
    text_batch=4,
    connector_steps=3,
    connector_batch=4,
    arch=SMALL,
)


def _find(seq: list[int], sub: list[int]) -> int:
    return next((i for i in range(len(seq) - len(sub) + 1) if seq[i : i + len(sub)] == sub), -1)


@pytest.mark.parametrize("kind", list(ToyMlpConfig().text_task_weights))
def test_text_stage_writes_the_scene_where_the_image_goes(kind: str) -> None:
    _, objects = sample_scene(WorldSpec(), 5, 3)
    ids = text_sequence(objects, np.random.default_rng(0), kind)
    caption = list(_encode(caption_for(objects)))
    assert VOCAB[UNK] not in ids
    assert ids[0] == VOCAB[BOS] and ids[-1] == VOCAB[EOS]
    at = _find(ids, caption)
    assert at >= 1, "the scene is written out in the sequence"
    if kind == "plain":
        assert ids == [VOCAB[BOS], *caption, VOCAB[EOS]]
    else:
        # <s> question, the scene, "answer:", the answer, </s>: the prompt of the toy with
        # the caption where the image tokens go.
        answer_at = _find(ids, list(_encode(" answer:")))
        assert answer_at == at + len(caption)
        assert ids[1:at] == list(_encode(_tokenizer().decode(ids[1:at])))


@pytest.mark.slow
def test_training_is_deterministic_and_the_connector_stage_freezes_the_lm(tmp_path: Path) -> None:
    from transformers import LlavaForConditionalGeneration

    train_toy_mlp(tmp_path / "a", TINY, checkpoints=False)
    train_toy_mlp(tmp_path / "b", TINY, checkpoints=False)
    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "a").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The text stage alone: the LM after it equals the LM of the finished model.
    model = build_toy_vlm(SMALL, seed=0)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    _, objects = mlp.tower_features(model, TINY.world_seed, TINY.n_pool)
    threads = torch.get_num_threads()
    torch.set_num_threads(TINY.n_threads)
    try:
        mlp.train_text(model, objects, TINY)
    finally:
        torch.set_num_threads(threads)
    lm_keys = [k for k in a if "language_model" in k or k.startswith("lm_head")]
    assert any(not torch.equal(a[k], fresh[k]) for k in lm_keys), "the text stage trains the LM"
    after_text = model.state_dict()
    assert all(torch.equal(a[k], after_text[k]) for k in lm_keys), "the connector stage froze it"
    proj = [k for k in a if "multi_modal_projector" in k]
    assert any(not torch.equal(a[k], fresh[k]) for k in proj)


@pytest.mark.slow
def test_a_stopped_run_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import LlavaForConditionalGeneration

    cfg = replace(TINY, text_steps=4, connector_steps=4)
    monkeypatch.setattr(mlp, "CHECKPOINT_EVERY", 2)
    train_toy_mlp(tmp_path / "whole", cfg)
    real = mlp.lm_forward  # called once per connector step, never in the text stage
    calls = {"n": 0}

    def stop_in_connector_stage(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # step 3, after the checkpoint of step 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mlp, "lm_forward", stop_in_connector_stage)
    with pytest.raises(KeyboardInterrupt):
        train_toy_mlp(tmp_path / "stopped", cfg)
    assert resume_path(tmp_path / "stopped").is_file()
    monkeypatch.setattr(mlp, "lm_forward", real)
    real_tower, real_text = mlp.train_tower, mlp.train_text
    monkeypatch.setattr(mlp, "train_tower", lambda *a, **k: pytest.fail("stage 1 re-ran"))
    monkeypatch.setattr(mlp, "train_text", lambda *a, **k: pytest.fail("the text stage re-ran"))
    train_toy_mlp(tmp_path / "stopped", cfg)
    assert not resume_path(tmp_path / "stopped").exists()
    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "whole").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "stopped").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # A leftover state of another configuration is refused, not silently mixed in.
    monkeypatch.setattr(mlp, "train_tower", real_tower)
    monkeypatch.setattr(mlp, "train_text", real_text)
    monkeypatch.setattr(mlp, "lm_forward", stop_in_connector_stage)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        train_toy_mlp(tmp_path / "other", cfg)
    monkeypatch.setattr(mlp, "lm_forward", real)
    with pytest.raises(InputError, match="another configuration"):
        train_toy_mlp(tmp_path / "other", replace(cfg, connector_lr=0.5))


def test_cli_refuses_options_of_the_other_variant(tmp_path: Path) -> None:
    from vislens.cli import app

    res = CliRunner().invoke(
        app, ["toy", "train", "--variant", "mlp", "--lm-steps", "3", "--out", str(tmp_path / "m")]
    )
    assert isinstance(res.exception, InputError) and "--lm-steps" in str(res.exception)
    res = CliRunner().invoke(
        app, ["toy", "train", "--variant", "big", "--out", str(tmp_path / "m")]
    )
    assert isinstance(res.exception, InputError) and "qa or mlp" in str(res.exception)
    assert not (tmp_path / "m").exists()
