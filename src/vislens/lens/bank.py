"""The contextual bank: hidden states of sampled caption tokens, per LLM layer.

Layout (docs/formats/lens-bank.md)::

    bank/
      bank.json                 manifest: model, fingerprint, layers, rules, shards done
      metadata.parquet          one row per kept token: token_str, token_id, caption, position, ...
      layer_LL/shard_KKKKK.safetensors   ``states`` [n, d] fp16 (or int8 + ``scale`` [n])

Building is resumable by construction (as ``store/extract.py``): the plan of kept tokens
is made from the tokenized corpus before any forward pass and written first; shards cover
fixed caption ranges, are written atomically, and are listed in the manifest only once all
their layers are on disk. A killed build, run again, recomputes exactly the missing shards
with the same batches, so the result is byte-identical to an uninterrupted build.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float

from vislens.engine.ray_data import RayOptions
from vislens.errors import ConfigError, InputError, ModelError
from vislens.io import atomic_path, write_json_atomic
from vislens.lens.bank_engine import batch_states
from vislens.lens.corpus import corpus_digest
from vislens.lens.sampling import SamplingRules, plan_bank
from vislens.lens.textmodel import BankModel, default_layers

SCHEMA_VERSION = 1
MANIFEST = "bank.json"
METADATA = "metadata.parquet"
METADATA_COLUMNS = ("row", "token_str", "token_id", "caption", "position", "caption_idx")
MANIFEST_KEYS = (
    "schema_version", "model", "model_fingerprint", "n_model_layers", "layers", "d_model",
    "dtype", "n_rows", "n_captions", "corpus_sha256", "rules", "padding_side",
    "batch_size", "shard_captions", "shards", "complete",
)  # fmt: skip
"""Keys of bank.json, in order."""

_SETTINGS = (
    "model_fingerprint", "layers", "dtype", "corpus_sha256", "rules", "padding_side",
    "batch_size", "shard_captions",
)  # fmt: skip
"""What a resumed build must share with the partial one."""


def layer_dir(root: Path, layer: int) -> Path:
    return Path(root) / f"layer_{layer:02d}"


def shard_path(root: Path, layer: int, k: int) -> Path:
    return layer_dir(root, layer) / f"shard_{k:05d}.safetensors"


def quantize_int8(x_nd: Float[torch.Tensor, "n d"]) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one fp32 scale per row (``x ~= q * scale``)."""
    x = x_nd.float()
    scale = (x.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
    q = torch.round(x / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


@dataclass(frozen=True)
class BankResult:
    """What one ``build_bank`` call did."""

    root: Path
    n_rows: int
    n_shards: int
    n_shards_written: int
    n_tokens_forwarded: int
    seconds: float
    bytes_on_disk: int

    @property
    def tokens_per_s(self) -> float:
        return self.n_tokens_forwarded / self.seconds if self.seconds > 0 else float("nan")


def _tokenize(model: BankModel, captions: Sequence[str]) -> list[list[int]]:
    enc = model.tokenizer(list(captions), add_special_tokens=True)
    ids = [list(map(int, x)) for x in enc["input_ids"]]
    max_len = getattr(model.backbone.config, "max_position_embeddings", None)
    for i, x in enumerate(ids):
        if max_len is not None and len(x) > max_len:
            raise InputError(
                f"corpus caption {i + 1} has {len(x)} tokens; {model.name} takes at most {max_len}"
            )
    return ids


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())


def build_bank(
    captions: Sequence[str],
    out_dir: Path,
    model: BankModel,
    *,
    layers: Sequence[int] | None = None,
    rules: SamplingRules | None = None,
    dtype: str = "fp16",
    batch_size: int = 32,
    shard_captions: int = 512,
    overwrite: bool = False,
    progress: bool = True,
    engine: str = "local",
    ray: RayOptions | None = None,
    model_ref: str | None = None,
) -> BankResult:
    """Run ``captions`` through ``model`` and keep, per layer, the states of the tokens the
    sampling rules pick (see ``vislens.lens.sampling``). Resumes a partial build in
    ``out_dir``; a finished or different one needs ``overwrite``. ``engine="ray"`` encodes
    the batches in Ray Data actors that load ``model_ref`` (docs/scale.md); same files."""
    from vislens.progress import make_progress

    out_dir = Path(out_dir)
    rules = rules or SamplingRules()
    if not captions:
        raise InputError("the corpus is empty — it needs at least one caption")
    if dtype not in ("fp16", "int8"):
        raise ConfigError(f"bank dtype {dtype!r}: choose fp16 or int8")
    layer_ids = sorted(set(int(x) for x in layers)) if layers else default_layers(model.n_layers)
    bad = [x for x in layer_ids if not 1 <= x <= model.n_layers]
    if bad:
        raise ModelError(
            f"{model.name}: contextual layers {bad} out of range; this LM has layers 1..{model.n_layers}"
        )
    # Bad engine settings are an error before anything is written (no batches: no work).
    batch_states(
        model, captions, {}, [], batch_size, layer_ids, engine=engine, ray=ray, model_ref=model_ref
    )
    ids = _tokenize(model, captions)
    tok = model.tokenizer
    vocab_ids = sorted({t for x in ids for t in x})
    token_str = {t: tok.decode([t]) for t in vocab_ids}
    kept = plan_bank(ids, token_str, rules, special_ids=tok.all_special_ids)
    if not kept:
        raise InputError(
            f"no token of the {len(captions)} captions is kept: every caption is shorter than "
            f"skip_positions={rules.skip_positions} (plus special tokens); give longer captions"
        )
    by_caption: dict[int, list[int]] = {}
    for ci, pos in kept:
        by_caption.setdefault(ci, []).append(pos)
    caption_order = sorted(by_caption)
    shards = [
        caption_order[s : s + shard_captions] for s in range(0, len(caption_order), shard_captions)
    ]
    shard_info = []
    row = 0
    for sh in shards:
        n = sum(len(by_caption[c]) for c in sh)
        shard_info.append({"captions": [sh[0], sh[-1] + 1], "rows": [row, row + n]})
        row += n
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": model.name,
        "model_fingerprint": model.fingerprint(),
        "n_model_layers": model.n_layers,
        "layers": layer_ids,
        "d_model": model.d_model,
        "dtype": dtype,
        "n_rows": len(kept),
        "n_captions": len(captions),
        "corpus_sha256": corpus_digest(list(captions)),
        "rules": asdict(rules),
        "padding_side": str(getattr(tok, "padding_side", "right")),
        "batch_size": batch_size,
        "shard_captions": shard_captions,
        "shards": shard_info,
        "complete": [],
    }
    old_path = out_dir / MANIFEST
    if old_path.is_file():
        old = json.loads(old_path.read_text(encoding="utf-8"))
        differ = [k for k in _SETTINGS if old.get(k) != manifest[k]]
        done = len(old.get("complete", [])) == len(old.get("shards", [None]))
        if overwrite:
            shutil.rmtree(out_dir)
        elif differ:
            raise ConfigError(
                f"{old_path}: a bank with other settings ({', '.join(differ)}) is here — pass "
                "--overwrite to replace it, or choose another study"
            )
        elif done:
            raise ConfigError(
                f"{old_path}: the bank is already complete — pass --overwrite to rebuild it"
            )
        else:
            manifest["complete"] = sorted(int(k) for k in old["complete"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if not manifest["complete"]:
        meta = pd.DataFrame(
            {
                "row": np.arange(len(kept), dtype=np.int64),
                "token_str": [token_str[ids[c][p]] for c, p in kept],
                "token_id": np.array([ids[c][p] for c, p in kept], dtype=np.int64),
                "caption": [captions[c] for c, _ in kept],
                "position": np.array([p for _, p in kept], dtype=np.int64),
                "caption_idx": np.array([c for c, _ in kept], dtype=np.int64),
            }
        )
        with atomic_path(out_dir / METADATA) as tmp:
            meta.to_parquet(tmp, index=False)
        write_json_atomic(out_dir / MANIFEST, manifest)

    from safetensors.torch import save_file

    pending = [k for k in range(len(shards)) if k not in set(manifest["complete"])]
    n_todo = sum(len(shards[k]) for k in pending)
    n_tokens = 0
    t0 = time.perf_counter()
    source = batch_states(
        model, captions, by_caption, [shards[k] for k in pending], batch_size, layer_ids,
        engine=engine, ray=ray, model_ref=model_ref,
    )  # fmt: skip
    with make_progress(disable=None if progress else True) as bar:
        task = bar.add_task("lens bank", total=n_todo)
        for k in pending:
            parts: dict[int, list[torch.Tensor]] = {x: [] for x in layer_ids}
            sh = shards[k]
            for b in range(0, len(sh), batch_size):
                batch = sh[b : b + batch_size]
                states = next(source)
                n_tokens += sum(len(ids[c]) for c in batch)
                for x in layer_ids:
                    parts[x].append(states[x])
                bar.advance(task, len(batch))
            for x in layer_ids:
                full = torch.cat(parts[x])
                tensors = (
                    {"states": full.to(torch.float16).contiguous()}
                    if dtype == "fp16"
                    else dict(zip(("states", "scale"), quantize_int8(full), strict=True))
                )
                layer_dir(out_dir, x).mkdir(parents=True, exist_ok=True)
                with atomic_path(shard_path(out_dir, x, k)) as tmp:
                    save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp))
            manifest["complete"] = sorted([*manifest["complete"], k])
            write_json_atomic(out_dir / MANIFEST, manifest)
    source.close()
    seconds = time.perf_counter() - t0
    return BankResult(
        out_dir, len(kept), len(shards), len(pending), n_tokens, seconds, _dir_bytes(out_dir)
    )


class Bank:
    """A finished bank on disk, read one chunk of rows at a time."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        path = self.root / MANIFEST
        if not path.is_file():
            raise InputError(
                f"{self.root}: no bank here (no {MANIFEST}) — run `vislens lens bank` first"
            )
        self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        version = self.manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise InputError(
                f"{path}: schema_version {version!r}; this vislens reads {SCHEMA_VERSION}"
            )
        if len(self.manifest["complete"]) != len(self.manifest["shards"]):
            raise InputError(
                f"{path}: the bank is incomplete ({len(self.manifest['complete'])} of "
                f"{len(self.manifest['shards'])} shards) — run `vislens lens bank` again to finish it"
            )
        self._metadata: pd.DataFrame | None = None

    @property
    def layers(self) -> list[int]:
        return [int(x) for x in self.manifest["layers"]]

    @property
    def n_rows(self) -> int:
        return int(self.manifest["n_rows"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["model_fingerprint"])

    @property
    def metadata(self) -> pd.DataFrame:
        if self._metadata is None:
            self._metadata = pd.read_parquet(self.root / METADATA)
        return self._metadata

    def check_model(self, model_name: str, fingerprint: str) -> None:
        """A clear error unless the bank was built with this model's LLM."""
        if fingerprint != self.fingerprint:
            raise ModelError(
                f"{self.root / MANIFEST}: this bank was built with {self.manifest['model']!r}, "
                f"not with {model_name!r} (their embedding weights differ) — rebuild it with "
                "`vislens lens bank STUDY --corpus FILE --overwrite`"
            )

    def iter_chunks(
        self, layer: int, chunk_rows: int
    ) -> Iterator[tuple[int, Float[torch.Tensor, "n d"]]]:
        """``(first row, fp32 states)`` for consecutive chunks of at most ``chunk_rows`` rows;
        only one chunk (plus one shard) is in memory at a time. Each chunk is a fresh
        tensor the caller may modify in place."""
        from safetensors import safe_open

        if layer not in self.layers:
            raise ModelError(f"{self.root}: the bank has layers {self.layers}, not {layer}")
        buf: list[torch.Tensor] = []
        n_buf = 0
        start = 0
        for k, info in enumerate(self.manifest["shards"]):
            # One shard at a time, whole (slicing a loaded tensor is several times faster
            # than safetensors' lazy slices); a shard is at most ``shard_captions`` captions.
            with safe_open(str(shard_path(self.root, layer, k)), framework="pt") as f:
                states = f.get_tensor("states")
                scale = f.get_tensor("scale") if "scale" in f.keys() else None  # noqa: SIM118
            n = info["rows"][1] - info["rows"][0]
            s = 0
            while s < n:
                take = min(n - s, chunk_rows - n_buf)
                part = states[s : s + take].float()
                if scale is not None:
                    part.mul_(scale[s : s + take].float()[:, None])
                buf.append(part)
                n_buf += take
                s += take
                if n_buf == chunk_rows:
                    yield start, buf[0] if len(buf) == 1 else torch.cat(buf)
                    start += n_buf
                    buf, n_buf = [], 0
            del states, scale
        if n_buf:
            yield start, buf[0] if len(buf) == 1 else torch.cat(buf)

    def layer_matrix(self, layer: int) -> Float[torch.Tensor, "n d"]:
        """All of one layer's states in memory (for FAISS indexes and small banks)."""
        return torch.cat([c for _, c in self.iter_chunks(layer, max(1, self.n_rows))])
