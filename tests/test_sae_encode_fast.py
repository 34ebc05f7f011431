"""The fused chunked encoder (``encode_rows``) against the obvious path: dense
``sae.encode(x)`` then ``dense_to_csr``. Every architecture the registry builds, with each
input normalisation, ties, rows with no active feature, and chunks that do not divide the
rows; the CSR must be equal exactly (features ascending within a row, values bit for bit)."""

from __future__ import annotations

import pytest
import torch

from vislens.sae.base import BaseSAE
from vislens.sae.encode import _fast_kind, _topk, encode_rows
from vislens.sae.registry import SAE_CLASSES, build_sae
from vislens.sae.spec import SAESpec
from vislens.sae.standard_sae import StandardSAE
from vislens.store.codes import concat_csr, dense_to_csr

D_IN, D_SAE, K = 24, 96, 7
ARCHS = sorted(SAE_CLASSES)


def _sae(arch: str, seed: int, **kw) -> BaseSAE:
    torch.manual_seed(seed)
    extra = {"k": K} if arch == "topk" else {}
    sae = build_sae(SAESpec(d_in=D_IN, d_sae=D_SAE, architecture=arch, **extra, **kw))  # type: ignore[arg-type]
    with torch.no_grad():
        for name, p in sae.named_parameters():
            if name.startswith("b_") or name in ("threshold", "r_mag"):
                p.copy_(torch.randn_like(p) * 0.3)
        if arch == "jumprelu":  # some thresholds below zero, where relu decides instead
            sae.get_parameter("threshold").sub_(0.1)
    return sae.requires_grad_(False)


def _inputs(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D_IN, generator=g)
    x[1] = -x[0]  # mirrored rows
    x[2] = x[3]  # duplicate rows
    x[4] = 1.0  # constant row: layer_norm maps it to zeros
    x[5] = torch.randint(
        -2, 3, (D_IN,), generator=g
    ).float()  # small integers: many equal pre-activations
    return x


def _reference(
    sae: BaseSAE, x: torch.Tensor, chunk: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense ``sae.encode`` then ``dense_to_csr``, on the whole batch or on the same row
    chunks: on tiny shapes the BLAS picks a different kernel for every row count (a single
    row is a matrix-vector product), which moves last bits; at realistic widths chunking
    does not (``test_large_shapes_match_the_whole_batch_reference``)."""
    chunk = chunk or max(1, x.shape[0])
    with torch.no_grad():
        return concat_csr(
            [dense_to_csr(sae.encode(x[s : s + chunk])) for s in range(0, x.shape[0], chunk)]
        )


def _assert_equal_csr(got, want) -> None:
    (gp, gf, gv), (wp, wf, wv) = got, want
    assert gp.dtype == torch.int64 and gf.dtype == torch.int32 and gv.dtype == torch.float32
    assert torch.equal(gp, wp)
    assert torch.equal(gf, wf)
    assert torch.equal(gv.view(torch.int32), wv.view(torch.int32))  # bit for bit


def test_every_registered_architecture_takes_a_fused_path():
    for arch in ARCHS:
        assert _fast_kind(_sae(arch, 0)) == arch


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("norm", ["none", "layer_norm", "constant_norm_rescale"])
@pytest.mark.parametrize("chunk_rows", [1, 5, 16, 64])
def test_fused_csr_equals_dense_reference(arch, norm, chunk_rows):
    sae = _sae(arch, 1, normalize_activations=norm)
    x = _inputs(2, 37)  # 37 rows: no chunk size here divides them
    got = encode_rows(sae, x, max_dense_elems=chunk_rows * D_SAE)
    _assert_equal_csr(got, _reference(sae, x, chunk_rows))


@pytest.mark.parametrize("arch", ARCHS)
def test_options_and_sign_structure(arch):
    """No b_dec subtraction, decoder norms far from 1 (TopK: rescaling by them), whole batch and chunks."""
    sae = _sae(arch, 3, apply_b_dec_to_input=False, rescale_acts_by_decoder_norm=arch == "topk")
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1) * 2 + 0.1)
    x = _inputs(4, 29)
    x[7] = -x[8]
    _assert_equal_csr(encode_rows(sae, x, max_dense_elems=8 * D_SAE), _reference(sae, x, 8))
    _assert_equal_csr(encode_rows(sae, x), _reference(sae, x))


def test_rows_with_no_active_feature_are_empty_rows():
    sae = _sae("standard", 5)
    with torch.no_grad():
        sae.b_enc.fill_(-1e3)
        sae.b_enc[[3, 50]] = 1e3
    x = _inputs(6, 11)
    indptr, feat, val = encode_rows(sae, x, max_dense_elems=4 * D_SAE)
    assert torch.equal(indptr, torch.arange(12) * 2)
    assert feat.tolist() == [3, 50] * 11 and bool((val > 900).all())
    with torch.no_grad():
        sae.b_enc.fill_(-1e3)
    indptr, feat, _ = encode_rows(sae, x, max_dense_elems=4 * D_SAE)
    assert torch.equal(indptr, torch.zeros(12, dtype=torch.int64)) and feat.numel() == 0


def test_topk_ties_and_features_ascending():
    """Pre-activations with many exact ties: the same features as the dense top-k, listed
    in ascending feature order, and never more than k per row."""
    sae = _sae("topk", 7, apply_b_dec_to_input=False)
    with torch.no_grad():
        sae.W_enc.copy_(torch.randint(-1, 2, (D_IN, D_SAE)).float())
        sae.W_enc[:, 10:20] = sae.W_enc[:, 0:1]  # ten identical features
        sae.b_enc.zero_()
    x = torch.randint(0, 2, (23, D_IN)).float()
    got = encode_rows(sae, x, max_dense_elems=6 * D_SAE)
    _assert_equal_csr(got, _reference(sae, x, 6))
    indptr, feat, _ = got
    assert int((indptr[1:] - indptr[:-1]).max()) <= K
    for r in range(23):
        row = feat[indptr[r] : indptr[r + 1]]
        assert torch.all(row[1:] > row[:-1])


def test_batchtopk_style_jumprelu_scalar_threshold():
    """A BatchTopK SAE is saved as JumpReLU with one threshold repeated for every feature."""
    sae = _sae("jumprelu", 8)
    with torch.no_grad():
        sae.get_parameter("threshold").fill_(0.4)
    x = _inputs(9, 40)
    _assert_equal_csr(encode_rows(sae, x, max_dense_elems=7 * D_SAE), _reference(sae, x, 7))


def test_overridden_activation_falls_back_to_the_dense_encode():
    class Shifted(StandardSAE):
        def activation(self, hidden_pre):
            return torch.relu(hidden_pre - 0.2)

    torch.manual_seed(10)
    sae = Shifted(SAESpec(d_in=D_IN, d_sae=D_SAE)).requires_grad_(False)
    assert _fast_kind(sae) is None
    x = _inputs(11, 19)
    _assert_equal_csr(encode_rows(sae, x, max_dense_elems=4 * D_SAE), _reference(sae, x, 4))


@pytest.mark.parametrize("arch", ARCHS)
def test_zero_rows_and_bad_width(arch):
    sae = _sae(arch, 12)
    indptr, feat, val = encode_rows(sae, torch.zeros(0, D_IN))
    assert indptr.tolist() == [0] and feat.numel() == 0 and val.numel() == 0
    assert feat.dtype == torch.int32 and val.dtype == torch.float32
    with pytest.raises(ValueError, match="d_in=24"):
        encode_rows(sae, torch.zeros(3, D_IN + 1))


@pytest.mark.parametrize("arch", ARCHS)
def test_large_shapes_match_the_whole_batch_reference(arch):
    """A realistic width, 300 rows in chunks of 128 (the last one short), against dense
    ``sae.encode`` of all 300 rows at once: equal bit for bit."""
    torch.manual_seed(13)
    extra = {"k": 32} if arch == "topk" else {}
    sae = build_sae(SAESpec(d_in=256, d_sae=4096, architecture=arch, **extra))  # type: ignore[arg-type]
    sae.requires_grad_(False)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            if name.startswith("b_") or name == "threshold":
                p.copy_(torch.randn_like(p) * 0.02 - 0.03)
    x = torch.randn(300, 256)
    got = encode_rows(sae, x, max_dense_elems=128 * 4096)
    want = _reference(sae, x)
    assert want[1].numel() > 300  # something fires
    _assert_equal_csr(got, want)


def _as_sets(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx_sorted, order = torch.sort(idx, dim=-1)
    return idx_sorted, vals.gather(1, order)


def _rows_of_every_kind(seed: int, f: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(64, f, generator=g)
    h[0] = 1.0  # all equal: every block maximum ties
    h[1] = torch.randint(-3, 4, (f,), generator=g).float()  # ties at the k-th value
    h[2, :] = -5.0
    h[2, 40:72] = torch.arange(32.0)  # the whole top-k in one or two blocks
    h[3] = torch.arange(f, dtype=torch.float32)  # the top-k in the last blocks
    h[4, ::32] = 100.0  # every block's maximum equal
    h[5] = float("-inf")
    h[5, 7] = 1.0
    h[6, 100] = float("nan")
    h[7] = torch.randn(f, generator=g).round(decimals=1)  # a few ties anywhere
    return h


@pytest.mark.parametrize("k", [1, 16, 64])
def test_block_topk_is_torch_topk(k):
    """The block pre-selection gives torch.topk's set on every kind of row; rows where the
    k-th value ties fall back to torch.topk, tie-breaking included."""
    h = _rows_of_every_kind(k, 8192)
    got = _as_sets(*_topk(h, k))
    ref = torch.topk(h, k, dim=-1)
    want = _as_sets(ref.values, ref.indices)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1].view(torch.int32), want[1].view(torch.int32))  # NaN included


def test_topk_sae_with_ties_takes_both_selection_paths():
    """A TopK SAE wide enough for the block pre-selection, with duplicated features (exact
    ties between them) and integer weights: codes equal the dense encode's."""
    torch.manual_seed(14)
    sae = build_sae(SAESpec(d_in=64, d_sae=8192, architecture="topk", k=16)).requires_grad_(False)
    with torch.no_grad():
        sae.W_enc[:, 4096:] = sae.W_enc[:, :4096]  # every feature has an identical twin
        sae.W_enc[:, :64] = torch.randint(-1, 2, (64, 64)).float() * 10
    x = torch.randint(-1, 2, (90, 64)).float()
    x[::3] = torch.randn(30, 64)
    got = encode_rows(sae, x, max_dense_elems=32 * 8192)
    _assert_equal_csr(got, _reference(sae, x, 32))


@pytest.mark.parametrize("arch", ["standard", "jumprelu", "gated"])
def test_feature_blocks_interleave_into_row_major_csr(arch, monkeypatch):
    """ReLU-type SAEs encode in feature blocks; with blocks of 1,000 of 4,096 features (the
    last one short) and 64-row chunks of 300 rows, the CSR equals the whole-batch reference."""
    import vislens.sae.encode as enc

    monkeypatch.setattr(enc, "_COL_BLOCK", 1000)
    monkeypatch.setattr(enc, "_ROW_BLOCK", 64)
    torch.manual_seed(15)
    sae = build_sae(SAESpec(d_in=256, d_sae=4096, architecture=arch)).requires_grad_(False)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            if name.startswith("b_") or name == "threshold":
                p.copy_(torch.randn_like(p) * 0.02 - 0.03)
    x = torch.randn(300, 256)
    x[5] = -100.0  # a row with few or no active features
    want = _reference(sae, x)
    assert want[1].numel() > 300
    _assert_equal_csr(enc.encode_rows(sae, x), want)
