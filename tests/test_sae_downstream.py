"""Downstream loss of an LLM-side SAE: the reconstruction spliced into the real transformers
module at the image positions. A perfect reconstruction recovers all of the loss, a zero SAE
none; the losses equal transformers' own loss computed another way; the study command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers_vlm import save_tiny_llava
from vislens.errors import InputError, ModelError
from vislens.sae.downstream import downstream_loss, splice
from vislens.sae.registry import build_sae
from vislens.sae.spec import SAESpec


def _identity_sae(d: int, hook_layer: int | None = None):
    """ReLU SAE with W_enc = [I, −I], W_dec = [I; −I]: relu(x) − relu(−x) = x, exactly."""
    spec = SAESpec(d_in=d, d_sae=2 * d, architecture="standard", hook_layer=hook_layer)
    sae = build_sae(spec).requires_grad_(False)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 1))
        sae.W_dec.copy_(torch.cat([torch.eye(d), -torch.eye(d)], 0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae


def _zero_sae(d: int):
    sae = build_sae(SAESpec(d_in=d, d_sae=8, architecture="standard")).requires_grad_(False)
    with torch.no_grad():
        for p in sae.parameters():
            p.zero_()
    return sae


def _random_sae(d: int, seed: int = 0):
    torch.manual_seed(seed)
    sae = build_sae(SAESpec(d_in=d, d_sae=4 * d, architecture="topk", k=8)).requires_grad_(False)
    with torch.no_grad():
        sae.W_dec.mul_(3.0)
    return sae


@pytest.fixture(scope="module")
def toy():
    from vislens.data.synthetic import WorldSpec, caption_for, sample_scene
    from vislens.models.toy import load_toy_vlm

    vlm = load_toy_vlm()
    scenes = [sample_scene(WorldSpec(), 0, i) for i in range(4)]
    return vlm, [img for img, _ in scenes], [caption_for(objs) for _, objs in scenes]


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    from vislens.models.vlm import load_vlm

    vlm = load_vlm(save_tiny_llava(tmp_path_factory.mktemp("llava")), image_size=(56, 56))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)) for _ in range(3)]
    texts = ["a red circle and a blue square .", "the green square", "is there a circle ?"]
    return vlm, images, texts


def _width(vlm) -> int:
    return int(vlm.model.config.text_config.hidden_size)


@pytest.mark.parametrize("which", ["toy", "llava"])
def test_perfect_reconstruction_recovers_all_and_a_zero_sae_none(request, which):
    vlm, images, texts = request.getfixturevalue(which)
    d = _width(vlm)
    for layer in (0, 1, vlm.n_layers - 1):
        full, acc = downstream_loss(vlm, _identity_sae(d), layer, images, texts, batch_size=2)
        assert full.loss_spliced == pytest.approx(full.loss_clean, abs=1e-6)
        if which == "toy":  # the trained toy needs the image to write its caption
            assert full.loss_zero > full.loss_clean + 0.05, full
        else:  # random weights: ablation changes the loss, either way
            assert abs(full.loss_zero - full.loss_clean) > 1e-3, full
        assert full.loss_recovered == pytest.approx(1.0, abs=1e-5)
        assert acc.result().explained_variance == pytest.approx(1.0, abs=1e-6)
        assert acc.result().n_tokens == len(images) * vlm.prepare(images[:1], ["x"]).n_image_tokens
        none, _ = downstream_loss(vlm, _zero_sae(d), layer, images, texts, batch_size=2)
        assert none.loss_clean == pytest.approx(full.loss_clean)
        assert none.loss_spliced == pytest.approx(none.loss_zero, abs=1e-6)
        assert none.loss_recovered == pytest.approx(0.0, abs=1e-5)
        assert full.n_tokens == none.n_tokens > len(texts)


def test_losses_equal_transformers_own_loss(llava):
    """Clean: transformers' ``labels=`` loss on the text tokens. Spliced at layer 0: the same
    loss with the connector output replaced in ``inputs_embeds`` by the SAE's reconstruction."""
    vlm, images, texts = llava
    sae = _random_sae(_width(vlm))
    for image, text in zip(images, texts, strict=True):
        got, _ = downstream_loss(vlm, sae, 0, [image], [text], prompt="describe the image .")
        inputs = vlm.prepare([image], ["describe the image ."], answers=[text])
        ids = inputs.input_ids
        labels = torch.full_like(ids, -100)
        start = int(inputs.answer_start_b[0])
        labels[:, start:] = ids[:, start:]
        with torch.no_grad():
            clean = vlm.model(**inputs.batch, labels=labels).loss
            x0 = vlm.hidden_states(inputs, [0])[0]
            embeds = vlm.model.get_input_embeddings()(ids).clone()
            recon, _ = sae(x0[0])
            embeds[0, inputs.image_positions_bn[0]] = recon
            spliced = vlm.model(inputs_embeds=embeds, attention_mask=inputs.batch["attention_mask"],
                                labels=labels).loss  # fmt: skip
        assert got.n_tokens == ids.shape[1] - start
        assert got.loss_clean == pytest.approx(float(clean), rel=1e-5)
        assert got.loss_spliced == pytest.approx(float(spliced), rel=1e-4)
        assert abs(got.loss_spliced - got.loss_clean) > 1e-3  # the random SAE does change it


def test_last_layer_splices_after_the_final_norm(toy):
    """The last visual layer is read after the LLM's final norm; zero-ablating it there
    cannot reach the text positions (nothing attends after it), so nothing is recovered."""
    vlm, images, texts = toy
    seen = {}

    def keep(x):
        seen["x"] = x.clone()
        return x

    inputs = vlm.prepare(images[:1], ["describe the image."])
    with splice(vlm, vlm.n_layers, inputs.image_positions_bn, keep), torch.no_grad():
        vlm.model(**inputs.batch, use_cache=False)
    torch.testing.assert_close(seen["x"], vlm.hidden_states(inputs, [vlm.n_layers])[vlm.n_layers])
    last, _ = downstream_loss(vlm, _zero_sae(_width(vlm)), vlm.n_layers, images, texts)
    assert last.loss_zero == last.loss_clean and np.isnan(last.loss_recovered)


def test_bad_input(toy):
    vlm, images, texts = toy
    with pytest.raises(InputError, match="d_in=8"):
        downstream_loss(vlm, _zero_sae(8), 1, images, texts)
    with pytest.raises(ModelError, match="out of range"):
        downstream_loss(vlm, _identity_sae(_width(vlm)), vlm.n_layers + 1, images, texts)
    with pytest.raises(InputError, match="one text per image"):
        downstream_loss(vlm, _identity_sae(_width(vlm)), 1, images, texts[:2])
    with pytest.raises(InputError, match="empty"):
        downstream_loss(vlm, _identity_sae(_width(vlm)), 1, images[:1], [" "])


@pytest.mark.slow
def test_study_command_writes_the_downstream_report(tmp_path, toy, capsys):
    """``vislens sae eval STUDY --site llm`` on a toy-world study: captions from images.parquet,
    the SAE's hook layer, eval.json with the four losses."""
    from typer.testing import CliRunner

    from vislens import cli
    from vislens.cli import app
    from vislens.data.setup import init_study
    from vislens.data.synthetic import generate_grid_world
    from vislens.sae.formats import save_saelens
    from vislens.study import Study

    vlm = toy[0]
    generate_grid_world(tmp_path / "world", 6, seed=0)
    init_study(tmp_path / "s", images=str(tmp_path / "world"), model="toy", layers=[1], name="s")
    save_saelens(
        _identity_sae(_width(vlm), hook_layer=2), Study.open(tmp_path / "s").sae_dir("llm2")
    )
    res = CliRunner().invoke(app, ["sae", "eval", str(tmp_path / "s"), "--name", "llm2",
                                   "--site", "llm", "--n-images", "4"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "loss recovered 1.000" in res.output
    doc = json.loads((tmp_path / "s" / "sae" / "llm2" / "eval" / "eval.json").read_text())
    assert (
        doc["site"] == "llm" and doc["layer"] == 2 and doc["metrics"]["explained_variance"] == 1.0
    )
    ds = doc["downstream"]
    assert ds["n_images"] == 4 and ds["loss_spliced"] == ds["loss_clean"] < ds["loss_zero"]
    assert ds["loss_recovered"] == 1.0 and ds["text_column"] == "caption"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sae", "eval", str(tmp_path / "s"), "--name", "llm2", "--site", "llm",
                  "--text-column", "nope"])  # fmt: skip
    assert exit_info.value.code == 2 and "column 'nope'" in capsys.readouterr().err
