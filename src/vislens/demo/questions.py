"""A few questions to the toy VLM about one scene, with the true answers from its annotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vislens.data.synthetic import COLORS, SHAPES


def questions_for(objects: list[dict]) -> list[tuple[str, str]]:
    """Presence, absence and named-cell questions, phrased as the toy was trained, with their
    true answers."""
    first = objects[0]
    present = {(o["color"], o["shape"]) for o in objects}
    absent = next((c, s) for c in COLORS for s in SHAPES if (c, s) not in present)
    return [
        (f"is there a {first['color']} {first['shape']}?", "yes"),
        (f"is there a {absent[0]} {absent[1]}?", "no"),
        (f"what color is the shape in row {first['r']}, column {first['c']}?", first["color"]),
        (f"what shape is in row {first['r']}, column {first['c']}?", first["shape"]),
    ]


def ask_toy(world_dir: Path) -> dict[str, Any]:
    """Ask the shipped toy VLM about the world's first image; each answer beside the truth."""
    from vislens.data.sources import ImageRecord, load_image
    from vislens.data.synthetic import read_annotations
    from vislens.models.toy import answer, load_toy_vlm

    vlm = load_toy_vlm()
    ann = read_annotations(world_dir / "annotations.jsonl")[0]
    image = load_image(ImageRecord("img_00001", str(world_dir / ann["image"])))
    rows = []
    for q, truth in questions_for(ann["objects"]):
        a = answer(vlm, image, q)
        rows.append(
            {
                "image": ann["image"],
                "question": q,
                "answer": a,
                "truth": truth,
                "correct": a.strip().lower() == truth.strip().lower(),
            }
        )
    return {"questions": rows}
