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
from vislens.errors import InputError, ModelError
from vislens.sae.formats import detect_format, load_sae, save_saelens

D_IN, D_SAE, K = 10, 24, 4


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
            cfg = {"d_in": D_IN, "d_sae": D_SAE, "activation_fn_str": "topk" if topk else "relu",
                   "activation_fn_kwargs": {"k": K} if topk else {}, "architecture": "standard",
                   "normalize_activations": "layer_norm" if "ln" in self.name else "none",
                   "hook_point_layer": 9, "hook_point": "blocks.9.hook_resid_post", "cls_token_only": True,
                   "model_name": "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K"}  # fmt: skip
            if topk:  # the n_images_*.pt layout, state dict nested under "state_dict"
                torch.save({"state_dict": w}, path / "n_images_1000.pt")
                torch.save(
                    {"state_dict": {k: v * 0 for k, v in w.items()}}, path / "n_images_10.pt"
                )
            else:
                torch.save(w, path / "weights.pt")
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


class _NotATensor:
    pass


def test_pickled_objects_are_refused(tmp_path):
    ck = tmp_path / "ck"
    Case("prisma-relu", "prisma", 10).write(ck, _tensors())
    torch.save({"cfg": _NotATensor(), "state_dict": {}}, ck / "weights.pt")
    with pytest.raises(InputError, match="weights_only"):
        load_sae(ck)


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
