"""``run_probe``: ask, score, dump attention, rank heads — the whole visual-search probe.

The run is resumable by construction. Every answer goes through the study's judge cache
(``judge-cache.sqlite``, keyed by model fingerprint + image bytes + question + decoding
parameters) and is committed as it arrives; every attention file is written atomically
and skipped on a re-run when its ``meta`` matches. Reports are computed from those two
stores at the end and written atomically, so a killed run resumes where it stopped and
a finished one re-runs without a forward pass.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vislens.errors import InputError, ModelError
from vislens.probe.config import ProbeConfig
from vislens.probe.questions import (
    ProbeCase,
    SceneRecord,
    World,
    build_cases,
    check_image_sizes,
    load_world,
    resolve_targets,
)
from vislens.probe.templates import PromptTemplates, load_templates

if TYPE_CHECKING:
    from PIL import Image

    from vislens.judge.cache import JudgeCache
    from vislens.models.vlm.base import VLMAdapter


@dataclass
class ProbePaths:
    """Where a probe run reads and writes."""

    annotations: Path
    out_dir: Path
    """``STUDY/probe``."""
    cache: Path
    model: str
    config: ProbeConfig

    @property
    def reports(self) -> Path:
        return self.out_dir / "reports"

    @property
    def attn_dir(self) -> Path:
        return self.reports / "attn_cache"

    @property
    def figs_dir(self) -> Path:
        return self.reports / "figs"

    @property
    def stats_dir(self) -> Path:
        return self.reports / "stats"


def resolve_paths(study_or_dir: str | Path, overrides: dict[str, Any]) -> ProbePaths:
    """A study directory (its ``[images] source`` grid world, ``[probe]`` and ``[model]``
    settings) or a grid-world directory holding ``annotations.jsonl``."""
    root = Path(study_or_dir)
    given = {k: v for k, v in overrides.items() if v is not None}
    if (root / "study.toml").is_file():
        from vislens.study import Study

        study = Study.open(root)
        base = study.config.probe.model_dump()
        source = study.config.images.source
        if not source:
            raise InputError(
                f"{study.config_path}: [images] source is empty; point it at a grid world"
            )
        src = study.resolve(source)
        annotations = src if src.is_file() else src / "annotations.jsonl"
        if not annotations.is_file():
            raise InputError(
                f"{study.config_path}: [images] source {src} has no annotations.jsonl; the probe "
                "needs a grid world in seed 004's layout (vislens synth grid)"
            )
        cfg = ProbeConfig.model_validate(base | given)
        model = cfg.model or study.config.model.name_or_path
        out_dir, cache = study.probe_dir, study.judge_cache_path
    elif (root / "annotations.jsonl").is_file():
        annotations = root / "annotations.jsonl"
        cfg = ProbeConfig.model_validate(given)
        model, out_dir, cache = cfg.model, root / "probe", root / "judge-cache.sqlite"
    else:
        raise InputError(
            f"{root}: neither a study (study.toml) nor a grid world (annotations.jsonl)"
        )
    if not model:
        raise InputError(f"{root}: no model to probe; pass --model toy|MODEL")
    return ProbePaths(annotations, out_dir, cache, model, cfg)


def model_fingerprint(name: str) -> str:
    """``name@<12 hex>``: the model's identity in cache keys (config and weight files of a
    local directory — size plus first and last MiB of each —, else the name alone)."""
    from vislens.models.vlm.load import resolve_vlm_path

    path, _ = resolve_vlm_path(name)
    local = Path(path)
    h = hashlib.sha256(name.encode())
    if local.is_dir():
        for f in sorted(local.iterdir()):
            if f.suffix in (".json", ".safetensors", ".bin", ".jinja") and f.name != "train.json":
                h.update(f.name.encode())
                size = f.stat().st_size
                h.update(str(size).encode())
                with f.open("rb") as fh:
                    h.update(fh.read(1 << 20))
                    if size > 2 << 20:
                        fh.seek(-(1 << 20), 2)
                        h.update(fh.read())
    return f"{name}@{h.hexdigest()[:12]}"


def check_grid(vlm: VLMAdapter, image: Image.Image, world: World) -> None:
    """Refuse a model whose token grid is not the annotations' grid (never misalign)."""
    inputs = vlm.prepare([image], ["?"])
    if inputs.grid_shape != (world.grid, world.grid):
        side = world.grid * world.patch
        raise ModelError(
            f"{vlm.name} turns a {side}x{side} image into a {inputs.grid_shape[0]}x"
            f"{inputs.grid_shape[1]} token grid, but {world.annotations_path} uses a "
            f"{world.grid}x{world.grid} grid of {world.patch}-px cells; the probe needs one "
            f"LLM token per cell (Qwen2.5-VL with 28-px cells, or a LLaVA whose vision patch "
            f"is {world.patch} px)"
        )


@dataclass
class _Counts:
    answers_generated: int = 0
    answers_cached: int = 0
    attention_computed: int = 0
    attention_cached: int = 0
    answers: dict[str, str] = field(default_factory=dict)


class _Images:
    """Images and their cache-key data URLs, kept only for the current batch."""

    def __init__(self) -> None:
        self._img: dict[str, Image.Image] = {}
        self._url: dict[str, str] = {}

    def keep_only(self, scenes: Sequence[SceneRecord]) -> None:
        ids = {s.image_id for s in scenes}
        for d in (self._img, self._url):
            for k in list(d):
                if k not in ids:
                    del d[k]

    def image(self, scene: SceneRecord) -> Image.Image:
        from PIL import Image

        if scene.image_id not in self._img:
            with Image.open(scene.path) as im:
                self._img[scene.image_id] = im.convert("RGB")
        return self._img[scene.image_id]

    def url(self, scene: SceneRecord) -> str:
        if scene.image_id not in self._url:
            mime = "png" if scene.path.suffix.lower() == ".png" else "jpeg"
            b64 = base64.b64encode(scene.path.read_bytes()).decode("ascii")
            self._url[scene.image_id] = f"data:image/{mime};base64,{b64}"
        return self._url[scene.image_id]


def _batches(cases: Sequence[ProbeCase], size: int) -> Iterator[list[ProbeCase]]:
    for i in range(0, len(cases), size):
        yield list(cases[i : i + size])


class ProbeRun:
    """One run's state: the model, the cache, the cases; ``execute`` does the work."""

    def __init__(
        self,
        paths: ProbePaths,
        vlm: VLMAdapter,
        world: World,
        cases: list[ProbeCase],
        templates: PromptTemplates,
        cache: JudgeCache,
        model_key: str,
    ) -> None:
        self.paths = paths
        self.cfg = paths.config
        self.vlm = vlm
        self.world = world
        self.cases = cases
        self.templates = templates
        self.cache = cache
        self.model_key = model_key
        self.generic_prompt = self.cfg.generic_prompt or templates.generic_prompt
        self.layers = list(range(1, vlm.n_layers + 1))
        self.counts = _Counts()
        self.images = _Images()
        self.show_progress = True
        self.feature_cache: dict[str, Any] = {}
        """Head features of the attention files written in this run (reports.case_features)."""
        self._generic: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] = {}
        """Attention maps captured during generation, until written."""

    # -- answers --------------------------------------------------------------------
    def _max_tokens(self, kind: str) -> int:
        c = self.cfg
        return c.max_new_tokens_presence if kind == "presence" else c.max_new_tokens_location

    def _request(self, case: ProbeCase) -> Any:
        from vislens.judge.messages import ChatRequest

        message = {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": self.images.url(case.scene)}},
                {"type": "text", "text": case.question},
            ],
        }
        params = {"max_tokens": self._max_tokens(case.kind), "temperature": 0.0}
        return ChatRequest(f"probe:{self.model_key}", [message], params)

    def answer_batch(self, batch: list[ProbeCase]) -> None:
        from vislens.judge.client import ChatReply
        from vislens.probe.generate import generate_with_attention

        todo: dict[str, list[tuple[ProbeCase, Any]]] = {}
        for case in batch:
            req = self._request(case)
            hit = self.cache.get(req.key())
            if hit is not None:
                self.counts.answers[case.case_id] = hit.text
                self.counts.answers_cached += 1
            else:
                todo.setdefault(case.kind, []).append((case, req))
        for kind, items in todo.items():
            images = [self.images.image(c.scene) for c, _ in items]
            prompts = [c.question for c, _ in items]
            if self.cfg.attention and not all(self._up_to_date(c) for c, _ in items):
                texts, maps, grid = generate_with_attention(
                    self.vlm,
                    images,
                    prompts,
                    layers=self.layers,
                    query=self.cfg.query,
                    max_new_tokens=self._max_tokens(kind),
                )
                self._check_grid(grid)
                if maps is not None:
                    for i, (case, _) in enumerate(items):
                        self._pending[case.case_id] = maps[i]
            else:
                texts = self.vlm.generate(images, prompts, max_new_tokens=self._max_tokens(kind))
            for (case, req), text in zip(items, texts, strict=True):
                self.cache.put(req, ChatReply(text=text), task=f"probe-{kind}")
                self.counts.answers[case.case_id] = text
                self.counts.answers_generated += 1

    # -- attention ------------------------------------------------------------------
    def attn_path(self, case: ProbeCase) -> Path:
        return self.paths.attn_dir / f"{case.case_id}.npz"

    def _meta(self, case: ProbeCase, query_position: str) -> dict[str, Any]:
        from vislens.probe.attention import SCHEMA_VERSION

        return {
            "schema_version": SCHEMA_VERSION,
            "case_id": case.case_id,
            "image": case.scene.image,
            "question": case.question,
            "model": self.model_key,
            "query": self.cfg.query,
            "query_position": query_position,
            "templates": self.templates.version,
            "generic_prompt": self.generic_prompt,
            "grid": [self.world.grid, self.world.grid],
            "layers": self.layers,
            "n_heads": None,
            "evidence": list(case.evidence),
        }

    def _up_to_date(self, case: ProbeCase) -> bool:
        from vislens.probe.attention import read_meta

        meta = read_meta(self.attn_path(case))
        if meta is None:
            return False
        want = self._meta(case, "")
        keys = ("schema_version", "model", "query", "templates", "generic_prompt", "question")
        return all(meta.get(k) == want[k] for k in (*keys, "grid", "layers"))

    def _check_grid(self, grid: tuple[int, int]) -> None:
        if grid != (self.world.grid, self.world.grid):
            raise ModelError(f"{self.vlm.name}: token grid {grid} changed mid-run")

    def _grid_attention(
        self, images: list[Image.Image], prompts: list[str], answers: list[str] | None
    ) -> np.ndarray:
        """``[b, layers, heads, rows, cols]`` float32 from one captured forward pass."""
        from vislens.probe.attention import tokens_to_grid

        inputs = self.vlm.prepare(images, prompts, answers=answers)
        self._check_grid(inputs.grid_shape)
        cap = self.vlm.capture(
            inputs,
            attention_layers=self.layers,
            query="answer_start" if answers is not None else "last",
        )
        assert cap.attention is not None
        attn = cap.attention[:, :, :, 0, :].float().cpu().numpy()
        return tokens_to_grid(attn, inputs.grid_rc_n2.cpu().numpy(), inputs.grid_shape)

    def attention_batch(self, batch: list[ProbeCase]) -> None:
        from vislens.probe.attention import write_case_npz
        from vislens.probe.reports import features_from_maps

        todo = [c for c in batch if not self._up_to_date(c)]
        self.counts.attention_cached += len(batch) - len(todo)
        if not todo:
            return
        # The generic prompt's map is per image; the last batch's are kept, since one
        # image's questions may straddle two batches.
        wanted = {c.scene.image_id: c.scene for c in todo}
        self._generic = {k: v for k, v in self._generic.items() if k in wanted}
        scenes = [s for k, s in wanted.items() if k not in self._generic]
        if scenes:
            generic = self._grid_attention(
                [self.images.image(s) for s in scenes], [self.generic_prompt] * len(scenes), None
            )
            self._generic |= {s.image_id: generic[i] for i, s in enumerate(scenes)}
        generic_by_id = self._generic
        positions = {
            c.case_id: (
                "last"
                if self.cfg.query == "last"
                else (
                    "answer_start"
                    if self.counts.answers[c.case_id].strip()
                    else "answer_start(eos)"
                )
            )
            for c in todo
        }
        maps = {c.case_id: self._pending.pop(c.case_id) for c in todo if c.case_id in self._pending}
        rest = [c for c in todo if c.case_id not in maps]
        if rest:  # answers came from the cache: one captured forward pass
            answers = None
            if self.cfg.query == "answer_start":
                eos = self.vlm.processor.tokenizer.eos_token or " "
                answers = [self.counts.answers[c.case_id].strip() or eos for c in rest]
            captured = self._grid_attention(
                [self.images.image(c.scene) for c in rest], [c.question for c in rest], answers
            )
            maps |= {c.case_id: captured[i] for i, c in enumerate(rest)}
        for case in todo:
            m = maps[case.case_id]
            meta = self._meta(case, positions[case.case_id])
            meta["n_heads"] = int(m.shape[1])
            gen = generic_by_id[case.scene.image_id]
            write_case_npz(self.attn_path(case), m, gen, meta)
            self.feature_cache[case.case_id] = features_from_maps(
                m.astype(np.float16), gen.astype(np.float16), case.evidence, self.layers
            )
            self.counts.attention_computed += 1
        self._pending.clear()

    # -- the loop -------------------------------------------------------------------
    def execute(self, *, show_progress: bool = True) -> None:
        from vislens.progress import make_progress

        if self.cfg.attention:
            self.paths.attn_dir.mkdir(parents=True, exist_ok=True)
        what = "probe: answers + attention" if self.cfg.attention else "probe: answers"
        with make_progress(disable=None if show_progress else True) as progress:
            task = progress.add_task(what, total=len(self.cases))
            for batch in _batches(self.cases, self.cfg.batch_size):
                self.images.keep_only([c.scene for c in batch])
                self.answer_batch(batch)
                if self.cfg.attention:
                    self.attention_batch(batch)
                progress.advance(task, len(batch))


def run_probe(
    study_or_dir: str | Path,
    *,
    model: str | None = None,
    targets: Sequence[str] | None = None,
    all_targets: bool | None = None,
    n_images: int | None = None,
    paraphrases: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    attention: bool | None = None,
    query: str | None = None,
    templates: str | None = None,
    generic_prompt: str | None = None,
    batch_size: int | None = None,
    min_per_group: int | None = None,
    n_figures: int | None = None,
    plot_layer: int | None = None,
    plot_heads: Sequence[str] | None = None,
    vlm: VLMAdapter | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the visual-search probe on a study (or grid-world directory) and return the
    summary that ``probe/reports/summary.json`` holds.

    Keyword arguments override the study's ``[probe]`` section (``ProbeConfig``); ``targets``
    adds to its ``target``/``targets``. ``vlm`` reuses an already loaded adapter (its name
    and weights must be those of ``model``).
    """
    from vislens.judge.cache import JudgeCache
    from vislens.probe.reports import write_reports

    overrides: dict[str, Any] = {
        "model": model,
        "all_targets": all_targets,
        "n_images": n_images,
        "paraphrases": list(paraphrases) if paraphrases is not None else None,
        "kinds": list(kinds) if kinds is not None else None,
        "attention": attention,
        "query": query,
        "templates": templates,
        "generic_prompt": generic_prompt,
        "batch_size": batch_size,
        "min_per_group": min_per_group,
        "n_figures": n_figures,
        "plot_layer": plot_layer,
        "plot_heads": list(plot_heads) if plot_heads is not None else None,
    }
    if targets:
        overrides |= {"target": "", "targets": list(targets)}
    paths = resolve_paths(study_or_dir, overrides)
    cfg = paths.config
    tpl = load_templates(cfg.templates)
    world = load_world(paths.annotations)
    wanted = [t for t in [cfg.target, *cfg.targets] if t]
    target_list = resolve_targets(world, wanted, all_targets=cfg.all_targets)
    cases = build_cases(
        world,
        target_list,
        tpl,
        n_images=cfg.n_images,
        paraphrase_ids=cfg.paraphrases,
        kinds=cfg.kinds,
    )
    if not cases:
        raise InputError("no questions to ask: no image fits the targets, kinds and paraphrases")
    scenes = list({c.scene.image_id: c.scene for c in cases}.values())
    check_image_sizes(scenes)
    if vlm is None:
        from vislens.models.vlm.load import load_vlm

        side = world.grid * world.patch
        vlm = load_vlm(paths.model, device=device, dtype=dtype, image_size=(side, side))
    images = _Images()
    check_grid(vlm, images.image(scenes[0]), world)
    cache = JudgeCache(paths.cache)
    try:
        run = ProbeRun(paths, vlm, world, cases, tpl, cache, model_fingerprint(paths.model))
        run.execute(show_progress=show_progress)
        return write_reports(run, show_progress=show_progress)
    finally:
        cache.close()
