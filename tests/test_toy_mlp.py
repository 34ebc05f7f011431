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
from vislens.models.toy import mlp, mlp_common, teacher, toy_model_dir
from vislens.models.toy.build import ToyArch, build_toy_vlm
from vislens.models.toy.mlp import (
    ToyMlpConfig,
    scene_words,
    text_forward,
    train_toy_mlp,
    written_scene,
)
from vislens.models.toy.mlp_common import text_item
from vislens.models.toy.tasks import caption_question
from vislens.models.toy.train import _encode, resume_path
from vislens.models.toy.vocab import BOS, EOS, UNK, VOCAB

SMALL = ToyArch(
    vision_hidden=16, vision_layers=1, text_hidden=16, text_layers=1, text_intermediate=32
)
TINY = ToyMlpConfig(
    tower="train",
    slots="sum",
    n_threads=1,
    tower_steps=2,
    tower_batch=4,
    n_pool=8,
    text_steps=3,
    text_batch=4,
    connector_steps=3,
    connector_batch=4,
    teacher_steps=2,
    slot_layer=1,
    arch=SMALL,
)
TEACHER = replace(TINY, slots="teacher")


@pytest.mark.parametrize("kind", list(ToyMlpConfig().text_task_weights))
def test_text_stage_sequences(kind: str) -> None:
    objects = [sample_scene(WorldSpec(), 5, i)[1] for i in range(3)]
    item = text_item(objects, 1, np.random.default_rng(0), kind)
    caption = list(_encode(caption_for(objects[1])))
    if kind == "plain":
        assert item.example is None
        assert item.ids == [VOCAB[BOS], *caption, VOCAB[EOS]]
        return
    ex = item.example
    assert item.ids is None and ex is not None and ex.image == 1
    # The toy prompt: <s> question, [the image], "answer:", the answer, </s>.
    assert ex.before[0] == VOCAB[BOS] and ex.after == list(_encode(" answer:"))
    assert ex.target[-1] == VOCAB[EOS]
    assert VOCAB[UNK] not in [*ex.before, *ex.after, *ex.target]
    if kind == "caption":
        assert ex.target == [*_encode(caption_question(objects[1]).answer), VOCAB[EOS]]


def test_the_written_scene_is_each_cells_words_summed() -> None:
    model = build_toy_vlm(SMALL, seed=0)
    scenes = [sample_scene(WorldSpec(), 5, i)[1] for i in range(4)]
    words = torch.from_numpy(np.stack([scene_words(o) for o in scenes]))
    got = written_scene(model, words)
    emb = model.model.language_model.embed_tokens.weight
    for b, objects in enumerate(scenes):
        at = {(o.r, o.c): o for o in objects}
        for cell in range(100):
            o = at.get(divmod(cell, 10))
            want = emb[VOCAB["empty"]] if o is None else emb[VOCAB[o.color]] + emb[VOCAB[o.shape]]
            assert torch.equal(got[b, cell], want)


def test_text_forward_is_the_lm_on_the_assembled_sequences() -> None:
    model = build_toy_vlm(SMALL, seed=0).eval()
    objects = [sample_scene(WorldSpec(), 5, i)[1] for i in range(3)]
    words = torch.from_numpy(np.stack([scene_words(o) for o in objects]))
    rng = np.random.default_rng(1)
    items = [text_item(objects, 0, rng, "caption"), text_item(objects, 2, rng, "plain")]
    items.append(text_item(objects, 1, rng, "presence"))
    with torch.no_grad():
        logits, labels = text_forward(model, items, words)
        want_logits, want_labels = [], []
        lm, emb = model.model.language_model, model.model.language_model.embed_tokens
        for it in [items[1], items[0], items[2]]:  # plain captions first, then questions
            if it.ids is not None:
                x, ids = emb(torch.tensor(it.ids)), it.ids[1:]
                first = 0
            else:
                ex = it.example
                scene = written_scene(model, words[ex.image][None])[0]
                x = torch.cat(
                    [emb(torch.tensor(ex.before)), scene, emb(torch.tensor(ex.after + ex.target))]
                )
                ids, first = ex.target, len(ex.before) + 100 + len(ex.after) - 1
            out = model.lm_head(lm(inputs_embeds=x[None]).last_hidden_state)[0]
            want_logits.append(out[first : first + len(ids)])
            want_labels.extend(ids)
    assert labels.tolist() == want_labels
    torch.testing.assert_close(logits, torch.cat(want_logits), rtol=1e-5, atol=1e-5)


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
    monkeypatch.setattr(mlp_common, "CHECKPOINT_EVERY", 2)
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


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_at", "left"),
    # assemble runs once per step: teacher steps are calls 1-4, text 5-8, connector 9-12;
    # checkpoints every 2 steps, so a run stopped at call K redoes the steps after the last.
    [(4, 10), (7, 6), (11, 2)],
)
def test_a_teacher_run_stopped_anywhere_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int, left: int
) -> None:
    from transformers import LlavaForConditionalGeneration

    cfg = replace(TEACHER, teacher_steps=4, text_steps=4, connector_steps=4)
    monkeypatch.setattr(mlp_common, "CHECKPOINT_EVERY", 2)
    train_toy_mlp(tmp_path / "whole", cfg)
    real = teacher.assemble
    calls = {"n": 0}

    def counted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(teacher, "assemble", counted)
    with pytest.raises(KeyboardInterrupt):
        train_toy_mlp(tmp_path / "stopped", cfg)
    calls["n"] = -100  # no stop this time
    monkeypatch.setattr(mlp, "train_tower", lambda *a, **k: pytest.fail("stage 1 re-ran"))
    train_toy_mlp(tmp_path / "stopped", cfg)
    assert calls["n"] + 100 == left, "only the steps after the last checkpoint run again"
    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "whole").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "stopped").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_the_teacher_recipe_is_deterministic_and_its_teacher_stays_frozen(tmp_path: Path) -> None:
    from transformers import LlavaForConditionalGeneration

    train_toy_mlp(tmp_path / "a", TEACHER, checkpoints=False)
    train_toy_mlp(tmp_path / "b", TEACHER, checkpoints=False)
    a = LlavaForConditionalGeneration.from_pretrained(tmp_path / "a").state_dict()
    b = LlavaForConditionalGeneration.from_pretrained(tmp_path / "b").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    train_toy_mlp(tmp_path / "s", TINY, checkpoints=False)
    sums = LlavaForConditionalGeneration.from_pretrained(tmp_path / "s").state_dict()
    assert any(not torch.equal(a[k], sums[k]) for k in a), "the two recipes differ"
    # The stages by hand: the teacher is a copy the text stage does not move, and the
    # connector stage moves the connector alone.
    model = build_toy_vlm(SMALL, seed=0)
    feats, objects = mlp.tower_features(model, TEACHER.world_seed, TEACHER.n_pool)
    teacher.run_stage(model, objects, TEACHER, "teacher", None)
    lm = model.model.language_model
    frozen_lm = teacher.frozen_teacher(model, lm.state_dict())
    frozen = {k: v.clone() for k, v in frozen_lm.state_dict().items()}
    scenes = teacher.TeacherScenes(frozen_lm, objects, TEACHER.slot_layer)
    teacher.run_stage(model, objects, TEACHER, "text", scenes)
    assert all(torch.equal(frozen_lm.state_dict()[k], frozen[k]) for k in frozen)
    assert any(not torch.equal(frozen[k], v) for k, v in lm.state_dict().items())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    teacher.run_stage(model, objects, TEACHER, "connector", teacher.connector_slots(model, feats))
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith("model.multi_modal_projector.") for k in moved), moved


def _caption_states(lm: torch.nn.Module, objects: list, layer: int) -> torch.Tensor:
    """Reference: one caption at a time, each cell's words found by their row and column."""
    with torch.no_grad():
        empty = lm(
            input_ids=torch.tensor([[VOCAB[t] for t in (BOS, "an", "empty", "cell")]]),
            output_hidden_states=True,
        ).hidden_states[layer][0, 2]
        ids = [VOCAB[BOS], *_encode(caption_for(objects))]
        hs = lm(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[layer][0]
    want = empty.expand(100, -1).clone()
    for o in objects:
        p = next(
            p for p in range(len(ids) - 1)
            if ids[p] == VOCAB[o.color] and ids[p + 1] == VOCAB[o.shape]
            and ids[p + 4] == VOCAB[str(o.r)] and ids[p + 7] == VOCAB[str(o.c)]
        )  # fmt: skip
        want[o.r * 10 + o.c] = hs[p] + hs[p + 1]
    return want


def test_teacher_scenes_are_the_captions_states_of_each_cells_words() -> None:
    model = build_toy_vlm(SMALL, seed=0).eval()
    lm = model.model.language_model
    scenes = [sample_scene(WorldSpec(), 5, i)[1] for i in range(3)]
    write = teacher.TeacherScenes(lm, scenes, 1)
    got = torch.cat([write([2, 0]), write([1])])  # one batch right-padded, one alone
    for b, i in enumerate([2, 0, 1]):
        torch.testing.assert_close(got[b], _caption_states(lm, scenes[i], 1), rtol=1e-5, atol=1e-5)


def test_assemble_is_each_sequence_laid_out_on_its_own() -> None:
    model = build_toy_vlm(SMALL, seed=0).eval()
    objects = [sample_scene(WorldSpec(), 5, i)[1] for i in range(3)]
    write = teacher.TeacherScenes(model.model.language_model, objects, 1)
    rng = np.random.default_rng(1)
    items = [text_item(objects, 0, rng, "caption"), text_item(objects, 2, rng, "plain")]
    items.append(text_item(objects, 1, rng, "presence"))
    lm, emb = model.model.language_model, model.model.language_model.embed_tokens
    with torch.no_grad():
        x, labels = teacher.assemble(model, items, write)
        logits = model.lm_head(lm(inputs_embeds=x).last_hidden_state)
        for j, it in enumerate(items):
            if it.ids is not None:
                seq, ids, first = emb(torch.tensor(it.ids)), it.ids[1:], 0
            else:
                ex = it.example
                seq = torch.cat(
                    [
                        emb(torch.tensor(ex.before)),
                        _caption_states(lm, objects[ex.image], 1),
                        emb(torch.tensor(ex.after + ex.target)),
                    ]
                )
                ids, first = ex.target, len(ex.before) + 100 + len(ex.after) - 1
            n = len(seq)
            torch.testing.assert_close(x[j, :n], seq, rtol=1e-5, atol=1e-5)
            assert not x[j, n:].any(), "right padding is zeros"
            assert labels[j, first : first + len(ids)].tolist() == ids
            assert (labels[j] != -100).sum() == len(ids)
            want = model.lm_head(lm(inputs_embeds=seq[None]).last_hidden_state)[0]
            torch.testing.assert_close(logits[j, :n], want, rtol=1e-4, atol=1e-4)


def test_tower_toy_needs_the_shipped_towers_sizes() -> None:
    with pytest.raises(InputError, match="tower="):
        replace(TINY, tower="mine")
    with pytest.raises(InputError, match="vision_"):
        mlp._tower_stage(build_toy_vlm(SMALL, seed=0), replace(TINY, tower="toy"))
    model = build_toy_vlm(replace(SMALL, vision_hidden=96, vision_layers=2), seed=0)
    assert mlp._tower_stage(model, replace(TINY, tower="toy")) == {}
    from transformers import LlavaForConditionalGeneration

    qa = LlavaForConditionalGeneration.from_pretrained(toy_model_dir())
    got, want = model.model.vision_tower.state_dict(), qa.model.vision_tower.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert not any(p.requires_grad for p in model.model.vision_tower.parameters())


def test_the_default_config_is_the_shipped_toy_mlps() -> None:
    import json

    shipped = json.loads((toy_model_dir("toy-mlp") / "train.json").read_text(encoding="utf-8"))
    assert shipped["config"] == json.loads(json.dumps(ToyMlpConfig().to_json()))


def test_config_refuses_a_slot_layer_the_lm_lacks() -> None:
    with pytest.raises(InputError, match="slot_layer=2"):
        replace(TEACHER, slot_layer=2)
    with pytest.raises(InputError, match="slots="):
        replace(TINY, slots="gist")
    assert replace(TINY, slot_layer=9).slots == "sum"  # the layer matters to the teacher only


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
    for opt, value in [("--slots", "teacher"), ("--tower", "toy")]:
        res = CliRunner().invoke(
            app, ["toy", "train", "--variant", "qa", opt, value, "--out", str(tmp_path / "m")]
        )
        assert isinstance(res.exception, InputError) and opt in str(res.exception)
    res = CliRunner().invoke(
        app,
        ["toy", "train", "--variant", "mlp", "--slots", "teacher", "--slot-layer", "6",
         "--text-layers", "5", "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert isinstance(res.exception, InputError) and "slot_layer=6" in str(res.exception)
    assert not (tmp_path / "m").exists()


def test_cli_trains_the_teacher_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vislens.cli import app

    seen = {}

    def fake_train(out, cfg):  # the options reach the config; training itself is tested above
        seen["cfg"] = cfg
        return {"ok": 1.0}

    monkeypatch.setattr(mlp, "train_toy_mlp", fake_train)
    res = CliRunner().invoke(
        app,
        ["toy", "train", "--variant", "mlp", "--slots", "sum", "--slot-layer", "3",
         "--teacher-steps", "7", "--text-layers", "6", "--tower", "train",
         "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert (cfg.slots, cfg.slot_layer, cfg.teacher_steps, cfg.tower) == ("sum", 3, 7, "train")
    assert cfg.arch.text_layers == 6 and cfg.arch.text_hidden == ToyMlpConfig().arch.text_hidden
    res = CliRunner().invoke(
        app, ["toy", "train", "--variant", "mlp", "--out", str(tmp_path / "d")]
    )
    assert res.exit_code == 0, res.output
    assert seen["cfg"] == ToyMlpConfig(), "no option: the shipped recipe"
