"""Contract suite over checkpoint formats: a checkpoint written from known tensors in each
library's own layout loads and encodes exactly as that library's formula does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from helpers_sae import ARCHS, NORMS, random_sae, ref_encode, sae_ref_encode
from helpers_sae_prisma import VisionModelSAERunnerConfig, write_prisma_training_dir
from vislens.errors import InputError, ModelError
from vislens.sae.formats import detect_format, load_sae, save_saelens

D_IN, D_SAE, K = 10, 40, 4  # d_sae = 4 × d_in: ViT-Prisma derives d_sae from expansion_factor


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g), "b_enc": torch.randn(D_SAE, generator=g) * 0.3,
        "W_dec": torch.randn(D_SAE, D_IN, generator=g), "b_dec": torch.randn(D_IN, generator=g),
        "threshold": torch.rand(D_SAE, generator=g) * 0.5,
    }  # fmt: skip


@dataclass
class Case:
    """A checkpoint layout: how to write it, and the source library's formula for its codes."""

    name: str
    fmt: str
    hook_layer: int | None

    def write(self, path: Path, t: dict[str, torch.Tensor]) -> None:
        path.mkdir(parents=True)
        w = {k: t[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
        if self.name == "saelens-v5-topk":
            cfg = {"d_in": D_IN, "d_sae": D_SAE, "activation_fn_str": "topk", "activation_fn_kwargs": {"k": K},
                   "apply_b_dec_to_input": True, "normalize_activations": "none", "hook_name": "blocks.9.hook_resid_post",
                   "hook_layer": 9, "model_name": "clip", "dtype": "float32", "context_size": 50}  # fmt: skip
            save_file(w, str(path / "sae_weights.safetensors"))
        elif self.name == "saelens-v6-jumprelu-ln":
            cfg = {"architecture": "jumprelu", "d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": False,
                   "normalize_activations": "layer_norm", "dtype": "float32",
                   "metadata": {"hook_name": "blocks.9.hook_resid_post", "model_name": "clip"}}  # fmt: skip
            save_file(w | {"threshold": t["threshold"]}, str(path / "sae_weights.safetensors"))
        elif self.name == "saelens-standard-cnr":
            cfg = {"architecture": "standard", "d_in": D_IN, "d_sae": D_SAE, "apply_b_dec_to_input": True,
                   "normalize_activations": "constant_norm_rescale", "hook_name": "blocks.9.hook_resid_post"}  # fmt: skip
            save_file(w, str(path / "sae_weights.safetensors"))
        elif self.name.startswith("prisma"):
            topk = "topk" in self.name
            fields = {"d_in": D_IN, "expansion_factor": D_SAE // D_IN,
                      "activation_fn_str": "topk" if topk else "relu",
                      "activation_fn_kwargs": {"k": K} if topk else {},
                      "normalize_activations": "layer_norm" if "ln" in self.name else "none",
                      "hook_point_layer": 9, "cls_token_only": True,
                      "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"}  # fmt: skip
            if topk:  # the trainer's own layout: config.json + n_images_*.pt with a pickled cfg
                write_prisma_training_dir(path, w, n_images=(10, 1000), **fields)
            else:  # Prisma-Multimodal's released layout: the same config.json + weights.pt
                VisionModelSAERunnerConfig(**fields).save_config(path / "config.json")
                torch.save(w, path / "weights.pt")
            return
        elif self.name == "dl-autoencoder":
            cfg = {
                "trainer": {
                    "dict_class": "AutoEncoder",
                    "activation_dim": D_IN,
                    "dict_size": D_SAE,
                    "layer": 9,
                }
            }
            torch.save({"encoder.weight": t["W_enc"].T.contiguous(), "encoder.bias": t["b_enc"],
                        "decoder.weight": t["W_dec"].T.contiguous(), "bias": t["b_dec"]}, path / "ae.pt")  # fmt: skip
        elif self.name == "dl-topk":
            cfg = {"trainer": {"dict_class": "AutoEncoderTopK", "k": K, "layer": 9}}
            torch.save({"encoder.weight": t["W_enc"].T.contiguous(), "encoder.bias": t["b_enc"],
                        "decoder.weight": t["W_dec"].T.contiguous(), "b_dec": t["b_dec"], "k": torch.tensor(K)},
                       path / "ae.pt")  # fmt: skip
        elif self.name == "dl-jumprelu":
            cfg = {"trainer": {"dict_class": "JumpReluAutoEncoder", "layer": 9}}
            torch.save(w | {"threshold": t["threshold"]}, path / "ae.pt")
        (path / ("cfg.json" if self.fmt == "saelens" else "config.json")).write_text(
            json.dumps(cfg)
        )

    def reference(self, x: np.ndarray, t: dict[str, torch.Tensor]) -> np.ndarray:
        n = {k: v.double().numpy() for k, v in t.items()}
        W, be, bd, th = n["W_enc"], n["b_enc"], n["b_dec"], n["threshold"]
        if self.name == "saelens-v5-topk":
            return ref_encode(x, W, be, bd, arch="topk", k=K)
        if self.name == "saelens-v6-jumprelu-ln":
            return ref_encode(
                x, W, be, bd, arch="jumprelu", threshold=th, norm="layer_norm", apply_b_dec=False
            )
        if self.name == "saelens-standard-cnr":
            return ref_encode(x, W, be, bd, arch="standard", norm="constant_norm_rescale")
        if self.name.startswith("prisma"):
            norm = "layer_norm" if "ln" in self.name else "none"
            return ref_encode(
                x, W, be, bd, arch="topk" if "topk" in self.name else "standard", k=K, norm=norm
            )
        if self.name == "dl-autoencoder":  # relu(encoder(x - bias))
            return np.maximum((x - bd) @ W + be, 0)
        if self.name == "dl-topk":  # topk(relu(encoder(x - b_dec)))
            post = np.maximum((x - bd) @ W + be, 0)
            out = np.zeros_like(post)
            top = np.argsort(-post, axis=1, kind="stable")[:, :K]
            np.put_along_axis(out, top, np.take_along_axis(post, top, 1), 1)
            return out
        pre = x @ W + be  # dl-jumprelu: no b_dec on the input
        return np.where(pre > th, np.maximum(pre, 0), 0)


CASES = [
    Case("saelens-v5-topk", "saelens", 10), Case("saelens-v6-jumprelu-ln", "saelens", 10),
    Case("saelens-standard-cnr", "saelens", 10), Case("prisma-relu", "prisma", 10),
    Case("prisma-relu-ln", "prisma", 10), Case("prisma-topk", "prisma", 10),
    Case("dl-autoencoder", "dictionary_learning", 10), Case("dl-topk", "dictionary_learning", 10),
    Case("dl-jumprelu", "dictionary_learning", 10),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_checkpoint_encodes_like_its_library(tmp_path, case):
    t = _tensors()
    case.write(tmp_path / "ck", t)
    assert detect_format(tmp_path / "ck") == case.fmt
    sae = load_sae(tmp_path / "ck").requires_grad_(False)
    assert (sae.d_in, sae.d_sae, sae.spec.hook_layer) == (D_IN, D_SAE, case.hook_layer)
    x = np.random.default_rng(1).normal(size=(25, D_IN)) * 2
    got = sae.encode(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, case.reference(x, t), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_conversion_to_saelens_keeps_codes(tmp_path, case):
    case.write(tmp_path / "ck", _tensors())
    sae = load_sae(tmp_path / "ck").requires_grad_(False)
    save_saelens(sae, tmp_path / "out")
    back = load_sae(tmp_path / "out").requires_grad_(False)
    x = torch.randn(9, D_IN)
    torch.testing.assert_close(back.encode(x), sae.encode(x))
    assert back.spec.hook_layer == sae.spec.hook_layer
    assert back.spec.token_scope == sae.spec.token_scope


def test_prisma_cls_token_only_and_newest_weights(tmp_path):
    Case("prisma-topk", "prisma", 10).write(tmp_path / "ck", _tensors())
    sae = load_sae(tmp_path / "ck")
    assert sae.spec.token_scope == "cls"
    assert (
        float(sae.W_enc.detach().abs().sum()) > 0
    )  # n_images_1000.pt, not the all-zero n_images_10.pt


@pytest.mark.parametrize(("arch", "norm"), [(a, n) for a in ARCHS for n in NORMS])
def test_saelens_round_trip_every_architecture(tmp_path, arch, norm):
    sae = random_sae(arch, norm=norm, hook_layer=7)
    save_saelens(sae, tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["hook_name"] == "blocks.6.hook_resid_post" and cfg["architecture"] == arch
    back = load_sae(tmp_path / "s").requires_grad_(False)
    assert back.spec.hook_layer == 7
    x = torch.randn(6, sae.d_in)
    torch.testing.assert_close(back.encode(x), sae.encode(x))
    np.testing.assert_allclose(
        back.encode(x).numpy(), sae_ref_encode(sae, x.numpy()), rtol=1e-5, atol=1e-5
    )


class _Exploit:
    """Unpickling this runs ``os.system`` under plain pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_prisma_training_checkpoint_loads_from_its_pickled_config(tmp_path):
    """The n_images_*.pt of ViT-Prisma's trainer loads without ViT-Prisma and without
    config.json: its pickled VisionModelSAERunnerConfig is read as plain data."""
    import sys

    t = _tensors()
    w = {k: t[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    write_prisma_training_dir(tmp_path / "ck", w, config_json=False, d_in=D_IN, expansion_factor=4,
                              hook_point_layer=5, layer_subtype="hook_resid_pre",
                              activation_fn_str="topk", activation_fn_kwargs={"k": K},
                              normalize_activations="none", use_patches_only=True)  # fmt: skip
    assert "vit_prisma.sae.config" not in sys.modules
    assert detect_format(tmp_path / "ck") == "prisma"
    sae = load_sae(tmp_path / "ck").requires_grad_(False)
    assert "vit_prisma" not in sys.modules
    assert (sae.spec.hook_layer, sae.spec.hook_name) == (5, "blocks.5.hook_resid_pre")
    assert sae.spec.token_scope == "patches" and sae.spec.k == K
    assert sae.spec.extra["lr_scheduler_name"] == "cosineannealingwarmup"
    x = np.random.default_rng(3).normal(size=(7, D_IN))
    got = sae.encode(torch.tensor(x, dtype=torch.float32)).double().numpy()
    n = {k: v.double().numpy() for k, v in t.items()}
    np.testing.assert_allclose(got, ref_encode(x, n["W_enc"], n["b_enc"], n["b_dec"], arch="topk", k=K),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_pickled_code_is_never_run(tmp_path):
    ck = tmp_path / "ck"
    Case("prisma-relu", "prisma", 10).write(ck, _tensors())
    w = torch.load(ck / "weights.pt", weights_only=True)
    marker = tmp_path / "pwned"
    torch.save({"cfg": _Exploit(marker), "state_dict": w}, ck / "weights.pt")
    sae = load_sae(ck)  # config.json decides; the pickled "cfg" is inert data
    assert not marker.exists() and sae.d_sae == D_SAE
    (ck / "config.json").unlink()
    with pytest.raises(InputError, match="pickles no config"):
        load_sae(ck / "weights.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("subtype", "layer", "residual"),
    [("hook_resid_pre", 5, True), ("hook_resid_post", 6, True), ("ln1.hook_normalized", 5, False),
     ("ln2.hook_normalized", 6, False), ("hook_resid_mid", 6, False), ("hook_mlp_out", 6, False),
     ("hook_attn_out", 6, False), ("mlp.hook_post", 6, False)],
)  # fmt: skip
def test_prisma_layer_subtype_maps_to_the_right_layer(tmp_path, subtype, layer, residual):
    from types import SimpleNamespace

    from vislens.errors import ModelError as ME
    from vislens.sae.encode import check_compatible

    t = _tensors()
    w = {k: t[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    write_prisma_training_dir(tmp_path / "ck", w, d_in=D_IN, expansion_factor=4, hook_point_layer=5,
                              layer_subtype=subtype)  # fmt: skip
    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert "hook_point" not in cfg and cfg["layer_subtype"] == subtype  # as ViT-Prisma writes it
    sae = load_sae(tmp_path / "ck")
    assert (sae.spec.hook_layer, sae.spec.hook_residual) == (layer, residual)
    assert sae.spec.hook_name == f"blocks.5.{subtype}"
    store = SimpleNamespace(info=SimpleNamespace(d_model=D_IN, model="m"))
    if residual:
        check_compatible(sae, store, layer)  # type: ignore[arg-type]
        with pytest.raises(ME, match=f"--layer {layer}"):
            check_compatible(sae, store, layer + 1)  # type: ignore[arg-type]
    else:
        with pytest.raises(ME, match="allow-layer-mismatch"):
            check_compatible(sae, store, layer)  # type: ignore[arg-type]
    save_saelens(sae, tmp_path / "out")  # the hook survives conversion
    back = load_sae(tmp_path / "out")
    assert (back.spec.hook_layer, back.spec.hook_residual, back.spec.hook_name) == (
        layer, residual, f"blocks.5.{subtype}")  # fmt: skip


@pytest.mark.parametrize(
    ("hook_name", "layer", "residual"),
    [("blocks.9.hook_resid_post", 10, True), ("blocks.9.hook_resid_pre", 9, True),
     ("blocks.9.hook_mlp_out", 10, False), ("blocks.9.attn.hook_z", 9, False), ("hook_embed", None, True)],
)  # fmt: skip
def test_saelens_hook_names(tmp_path, hook_name, layer, residual):
    ck = tmp_path / "ck"
    Case("saelens-standard-cnr", "saelens", 10).write(ck, _tensors())
    cfg = json.loads((ck / "cfg.json").read_text())
    (ck / "cfg.json").write_text(json.dumps(cfg | {"hook_name": hook_name}))
    spec = load_sae(ck).spec
    assert (spec.hook_layer, spec.hook_residual) == (layer, residual)


def _v6_topk(path: Path, t: dict[str, torch.Tensor], **extra) -> None:
    path.mkdir(parents=True)
    w = {k: t[k] for k in ("W_enc", "b_enc", "W_dec", "b_dec")}
    save_file(w, str(path / "sae_weights.safetensors"))
    cfg = {"architecture": "topk", "d_in": D_IN, "d_sae": D_SAE, "k": K, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
           "reshape_activations": "none",
           "metadata": {"sae_lens_version": "6.5.0", "hook_name": "blocks.3.hook_resid_post"}} | extra  # fmt: skip
    (path / "cfg.json").write_text(json.dumps(cfg))


def test_saelens_topk_rescale_acts_by_decoder_norm(tmp_path):
    """SAELens' TopKSAE.encode: hidden_pre * ‖W_dec,i‖, then top-k + relu; decode divides it out."""
    t = _tensors()  # W_dec rows are far from unit norm
    _v6_topk(tmp_path / "ck", t, rescale_acts_by_decoder_norm=True)
    sae = load_sae(tmp_path / "ck").requires_grad_(False)
    assert (
        sae.spec.rescale_acts_by_decoder_norm
        and "rescale_acts_by_decoder_norm" not in sae.spec.extra
    )
    x = np.random.default_rng(5).normal(size=(30, D_IN)) * 2
    n = {k: v.double().numpy() for k, v in t.items()}
    norms = np.linalg.norm(n["W_dec"], axis=1)
    ref = ref_encode(x, n["W_enc"] * norms, n["b_enc"] * norms, n["b_dec"], arch="topk", k=K)
    got = sae.encode(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    plain = ref_encode(x, n["W_enc"], n["b_enc"], n["b_dec"], arch="topk", k=K)
    assert ((ref > 0) != (plain > 0)).any()  # the flag matters on this SAE
    recon = sae.decode(torch.tensor(ref, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(recon, (ref / norms) @ n["W_dec"] + n["b_dec"], rtol=1e-4, atol=1e-4)
    save_saelens(sae, tmp_path / "out")
    back = load_sae(tmp_path / "out").requires_grad_(False)
    xt = torch.tensor(x, dtype=torch.float32)
    torch.testing.assert_close(back.encode(xt), sae.encode(xt))


@pytest.mark.parametrize(
    ("extra", "key"),
    [({"reshape_activations": "hook_z"}, "reshape_activations"), ({"hook_head_index": 3}, "hook_head_index"),
     ({"finetuning_scaling_factor": True}, "finetuning_scaling_factor"), ({"d_out": 7}, "d_out"),
     ({"activation_fn_str": "tanh-relu", "architecture": "standard"}, "activation_fn_str"),
     ({"architecture": "standard", "rescale_acts_by_decoder_norm": True}, "rescale_acts_by_decoder_norm")],
)  # fmt: skip
def test_unimplemented_encode_keys_are_errors(tmp_path, extra, key):
    _v6_topk(tmp_path / "ck", _tensors(), **extra)
    with pytest.raises(InputError, match=f"'{key}'"):
        load_sae(tmp_path / "ck")


def test_written_cfg_is_read_as_saelens_v6(tmp_path):
    from packaging.version import Version

    save_saelens(random_sae("topk", hook_layer=3), tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    # SAELens' handle_config_defaulting: a version < 6.0.0-rc.0 (or none) is a pre-6 config
    assert Version(cfg["metadata"]["sae_lens_version"]) >= Version("6.0.0-rc.0")
    assert cfg["k"] == 5 and cfg["rescale_acts_by_decoder_norm"] is False
    assert cfg["reshape_activations"] == "none"


def test_shape_mismatch_names_the_tensor(tmp_path):
    ck = tmp_path / "ck"
    Case("saelens-standard-cnr", "saelens", 10).write(ck, _tensors())
    cfg = json.loads((ck / "cfg.json").read_text())
    (ck / "cfg.json").write_text(json.dumps(cfg | {"d_sae": D_SAE + 1}))
    with pytest.raises(InputError, match="W_enc"):
        load_sae(ck)


def test_not_a_checkpoint_and_unreachable_hub(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not an SAE checkpoint"):
        load_sae(tmp_path / "empty")
    with pytest.raises(ModelError, match="not a local path"):
        load_sae("no-such-owner/no-such-sae-repo")
