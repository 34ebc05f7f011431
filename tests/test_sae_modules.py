"""Contract suite over every SAE architecture × input normalisation: the encode path equals
the SAELens / ViT-Prisma formula written out by hand, decode undoes the normalisation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from helpers_sae import ARCHS, NORMS, random_sae, sae_ref_encode
from vislens.sae.spec import SAESpec

CASES = list(itertools.product(ARCHS, NORMS, (True, False)))


@pytest.mark.parametrize(("arch", "norm", "apply_b_dec"), CASES)
def test_encode_equals_reference_formula(arch, norm, apply_b_dec):
    sae = random_sae(arch, norm=norm, apply_b_dec=apply_b_dec)
    x = torch.randn(30, sae.d_in) * 3 + 1
    got = sae.encode(x).double().numpy()
    np.testing.assert_allclose(got, sae_ref_encode(sae, x.numpy()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("arch", "norm"), list(itertools.product(ARCHS, NORMS)))
def test_any_leading_shape_and_nonnegative(arch, norm):
    sae = random_sae(arch, norm=norm)
    x = torch.randn(2, 7, sae.d_in)
    codes = sae.encode(x)
    assert codes.shape == (2, 7, sae.d_sae)
    assert (codes >= 0).all()
    torch.testing.assert_close(codes.reshape(14, -1), sae.encode(x.reshape(14, -1)))
    if arch == "topk":
        assert ((codes > 0).sum(-1) <= sae.spec.k).all()


@pytest.mark.parametrize("norm", NORMS)
def test_decode_undoes_normalisation(norm):
    """With an identity dictionary (W_dec = I, codes = normalised input - b_dec), forward
    returns the input in its own units."""
    d = 8
    sae = random_sae("standard", d_in=d, d_sae=d, norm=norm)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
        sae.b_enc.zero_()
        sae.b_dec.fill_(-100.0)  # keeps every pre-activation positive, so relu is the identity
    x = torch.randn(5, d) * 2 + 0.5
    recon, _ = sae(x)
    torch.testing.assert_close(recon, x, rtol=1e-5, atol=1e-4)


def test_wrong_width_is_a_clear_error():
    sae = random_sae("standard", d_in=12)
    with pytest.raises(ValueError, match="d_in=12"):
        sae.encode(torch.randn(3, 13))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"architecture": "batchtopk"}, "architecture"), ({"architecture": "topk"}, "k"),
     ({"architecture": "topk", "k": 99}, "k"), ({"normalize_activations": "batch"}, "normalize")],
)  # fmt: skip
def test_spec_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SAESpec(d_in=4, d_sae=8, **kwargs)
