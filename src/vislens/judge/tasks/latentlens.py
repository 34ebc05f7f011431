"""The LatentLens judge (seed 000): do a patch's nearest words describe that patch?

For each instance (an image, a patch row/column, and its top-k neighbour words from
``vislens lens`` or LatentLens' ``human_study_similarities_*.json``) the judge sees the image
resized and padded to 512 x 512 with a red box on the 3 x 3 cells around the patch, a crop
of the box, and the candidate words — subword tokens expanded to the full word of their
source caption. It answers {interpretable, concrete_words, abstract_words, global_words,
reasoning}. Output: LatentLens' ``human_study_llm_results.json`` layout
``{total_instances, evaluated, results: [...]}``, the answer under ``gpt_response`` (the key
LatentLens' correlation scripts read, whatever model judged).
"""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image, ImageDraw
from pydantic import BaseModel, Field

from vislens.errors import InputError
from vislens.io import write_json_atomic
from vislens.judge.cache import JudgeCache
from vislens.judge.client import JudgeClient
from vislens.judge.config import JudgeConfig
from vislens.judge.messages import ChatRequest, user_message
from vislens.judge.runner import Failure, JudgeJob, RunSummary, judge_all
from vislens.judge.tasks.common import write_summary
from vislens.judge.templates import load_template

TASK = "latentlens"
CANVAS = 512
RESULT_KEYS = (
    "instance_id", "model", "image_url", "patch_row", "patch_col", "patch_type",
    "bbox", "candidates", "gpt_response", "caption",
)  # fmt: skip
ANSWER_KEYS = ("interpretable", "concrete_words", "abstract_words", "global_words", "reasoning")

_WORD = re.compile(r"[\w'’-]+")


class LatentLensAnswer(BaseModel):
    """The judge's verdict on one patch."""

    interpretable: bool
    concrete_words: list[str] = Field(default_factory=list)
    abstract_words: list[str] = Field(default_factory=list)
    global_words: list[str] = Field(default_factory=list)
    reasoning: str = ""


def full_word(token: str, caption: str | None, position: int | None = None) -> str:
    """The whole caption word a subword ``token`` belongs to (``"autom"`` → ``"automobile"``).

    The token's text is looked up in its caption (case-insensitively); when it occurs more
    than once, the occurrence whose word number is nearest ``position`` wins (token and word
    positions differ, so this is only a tie-break). Without a caption, the token stripped.
    """
    tok = token.strip()
    if not caption or not tok:
        return tok
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(caption)]
    hits = [(i, w) for i, (s, e, w) in enumerate(words) if tok.lower() in w.lower()]
    if not hits:
        return tok
    if token[:1].isspace():  # a word-initial token: prefer words that start with it
        hits = [h for h in hits if h[1].lower().startswith(tok.lower())] or hits
    if position is not None and len(hits) > 1:
        hits.sort(key=lambda h: abs(h[0] - position))
    return hits[0][1]


def candidate_words(instance: dict[str, Any]) -> list[str]:
    """The instance's candidate words, expanded and de-duplicated in rank order."""
    raw: list[str] = []
    if isinstance(instance.get("neighbors"), list):
        for n in sorted(instance["neighbors"], key=lambda n: n.get("rank", 0)):
            raw.append(
                full_word(str(n.get("token_str", "")), n.get("source_caption"), n.get("position"))
            )
    elif isinstance(instance.get("candidates"), list):
        for c in instance["candidates"]:
            if isinstance(c, list | tuple) and len(c) == 2:  # [sentence, token] pairs
                raw.append(full_word(str(c[1]), str(c[0])))
            else:
                raw.append(str(c).strip())
    seen: set[str] = set()
    out = []
    for w in raw:
        if w and w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


def load_instances(path: Path) -> list[dict[str, Any]]:
    """Instances from ``{"instances": [...]}`` (seed 000) or a bare list (LatentLens data.json)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file — pass a LatentLens instances JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    items = data.get("instances") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise InputError(f"{path}: expected a list of instances or a dict with an 'instances' list")
    for i, inst in enumerate(items):
        if not isinstance(inst, dict):
            raise InputError(f"{path}: instance {i} is a {type(inst).__name__}; expected an object")
        for key in ("patch_row", "patch_col"):
            if not isinstance(inst.get(key), int):
                raise InputError(
                    f"{path}: instance {i} ({instance_id(inst, i)}) has no integer '{key}'"
                )
        if not candidate_words(inst):
            raise InputError(
                f"{path}: instance {i} ({instance_id(inst, i)}) has no 'neighbors' or 'candidates'"
            )
    return items


def instance_id(inst: dict[str, Any], i: int) -> str:
    return str(inst.get("instance_id") or inst.get("id") or f"instance_{i}")


def find_image(inst: dict[str, Any], base_dir: Path, image_dir: Path | None) -> Path | None:
    """A local file for the instance: ``image_path``, a file URL/path, or a match in ``image_dir``."""
    if inst.get("image_path"):
        p = Path(str(inst["image_path"]))
        return p if p.is_absolute() else base_dir / p
    url = str(inst.get("image_url") or "")
    parsed = urlparse(url)
    if url and parsed.scheme in ("", "file") and Path(parsed.path).is_file():
        return Path(parsed.path)
    if image_dir is not None:
        names = [Path(parsed.path).name] if url else []
        if inst.get("image_idx") is not None:
            names += [f"{inst['image_idx']}{ext}" for ext in (".png", ".jpg", ".jpeg")]
        for name in names:
            if name and (image_dir / name).is_file():
                return image_dir / name
    return None


def resize_and_pad(image: Image.Image, size: int = CANVAS) -> Image.Image:
    """``image`` scaled to fit ``size`` x ``size`` (aspect kept) and padded black at the bottom/right."""
    image = image.convert("RGB")
    scale = size / max(image.size)
    resized = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    )
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    canvas.paste(resized, (0, 0))
    return canvas


def patch_box(
    row: int, col: int, grid: int, size: int = CANVAS, span: int = 3
) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` of the ``span`` x ``span`` cells centred on (row, col), kept inside."""
    cell = size / grid
    half = span // 2
    r0 = min(max(row - half, 0), max(grid - span, 0))
    c0 = min(max(col - half, 0), max(grid - span, 0))
    return (
        round(c0 * cell),
        round(r0 * cell),
        round((c0 + span) * cell),
        round((r0 + span) * cell),
    )


def render_views(
    image: Image.Image, row: int, col: int, grid: int
) -> tuple[Image.Image, Image.Image, list[int]]:
    """(image with the red box, crop of the box, the box) as the judge sees them."""
    canvas = resize_and_pad(image)
    box = patch_box(row, col, grid)
    crop = canvas.crop(box)
    boxed = canvas.copy()
    ImageDraw.Draw(boxed).rectangle(box, outline=(255, 0, 0), width=3)
    return boxed, crop, list(box)


def _request(
    model: str,
    params: dict[str, Any],
    system: str,
    user: str,
    img_path: Path,
    row: int,
    col: int,
    grid: int,
) -> ChatRequest:
    """The request for one instance, built when its turn comes (the two views are images)."""
    with Image.open(img_path) as im:
        boxed, crop, _ = render_views(im, row, col, grid)
    messages = [{"role": "system", "content": system}, user_message(user, [boxed, crop])]
    return ChatRequest(model, messages, dict(params))


def judge_latentlens(
    instances_path: Path,
    *,
    client: JudgeClient,
    grid: int = 24,
    image_dir: Path | None = None,
    cfg: JudgeConfig | None = None,
    cache: JudgeCache | None = None,
    out_path: Path | None = None,
    limit: int | None = None,
) -> tuple[dict[str, Any], RunSummary]:
    """Judge every instance; write ``human_study_llm_results.json`` (and its summary) if ``out_path``."""
    from vislens.judge.backends import request_params, run_settings

    cfg = cfg or JudgeConfig(model=client.model)
    instances_path = Path(instances_path)
    items = load_instances(instances_path)[:limit]
    tpl = load_template(TASK)
    params = request_params(cfg)
    base: list[tuple[dict[str, Any], int | None]] = []  # record, index of its job
    jobs: list[JudgeJob[LatentLensAnswer]] = []
    missing: list[Failure] = []
    for i, inst in enumerate(items):
        iid = instance_id(inst, i)
        words = candidate_words(inst)
        rec: dict[str, Any] = {
            "instance_id": iid,
            "candidates": words,
            "patch_row": inst["patch_row"],
            "patch_col": inst["patch_col"],
        }
        img_path = find_image(inst, instances_path.parent, image_dir)
        if img_path is None or not img_path.is_file():
            rec["error"] = "image not found locally (set image_path, or pass --image-dir)"
            missing.append(Failure(item_id=iid, status="error", reason=rec["error"]))
            base.append((rec, None))
            continue
        box = list(patch_box(inst["patch_row"], inst["patch_col"], grid))
        rec.update(
            model=inst.get("model"),
            image_url=inst.get("image_url"),
            patch_type=inst.get("patch_type", "unknown"),
            bbox=box,
            caption=inst.get("caption", ""),
        )
        if inst.get("layer") is not None:
            rec["layer"] = inst["layer"]
        system, user = tpl.render(
            caption=rec["caption"], candidates=json.dumps(words, ensure_ascii=False)
        )

        base.append((rec, len(jobs)))
        build = partial(
            _request,
            client.model,
            params,
            system,
            user,
            img_path,
            inst["patch_row"],
            inst["patch_col"],
            grid,
        )
        jobs.append(JudgeJob(iid, build, LatentLensAnswer))

    settings = run_settings(cfg, task=TASK, template=tpl.id, progress="judging patches")
    outcomes, summary = judge_all(client, jobs, cache=cache, settings=settings)
    results = []
    for rec, j in base:
        if j is not None:
            o = outcomes[j]
            if o.value is not None:
                rec["gpt_response"] = o.value.model_dump()
            else:
                rec["error"] = f"{o.status}: {o.reason}"
        results.append(rec)
    summary.n_items += len(missing)
    summary.n_errors += len(missing)
    summary.failures.extend(missing)
    doc = {"total_instances": len(items), "evaluated": len(results), "results": results}
    if out_path is not None:
        write_json_atomic(out_path, doc)
        write_summary(out_path, summary)
    return doc, summary
