"""`vislens demo DIR`: the main job, end to end, on the embedded toy world.

1. generate a synthetic grid world (seed 004 layout) under DIR/world;
2. create a study DIR/study whose model is the shipped toy VLM's vision tower;
3. extract its activations (resumable: run the demo again and it picks up where it stopped);
4. ask the toy VLM a few questions about one image and check them against ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer


@dataclass(frozen=True)
class DemoQA:
    question: str
    answer: str
    truth: str

    @property
    def correct(self) -> bool:
        return self.answer.strip().lower() == self.truth.strip().lower()


def _questions(objects: list[dict]) -> list[tuple[str, str]]:
    """Presence, absence and named-cell questions, phrased as the toy was trained, with their
    true answers."""
    first = objects[0]
    present = {(o["color"], o["shape"]) for o in objects}
    absent = next(
        (c, s)
        for c in ("red", "green", "blue", "yellow", "purple", "orange")
        for s in ("circle", "square", "triangle", "diamond", "cross")
        if (c, s) not in present
    )
    return [
        (f"is there a {first['color']} {first['shape']}?", "yes"),
        (f"is there a {absent[0]} {absent[1]}?", "no"),
        (f"what color is the shape in row {first['r']}, column {first['c']}?", first["color"]),
        (f"what shape is in row {first['r']}, column {first['c']}?", first["shape"]),
    ]


def run_demo(out_dir: Path, *, n_images: int = 200, seed: int = 0) -> dict[str, object]:
    """Run the demo into ``out_dir``; returns a summary (also written to study/reports/demo.json)."""
    from vislens.data.setup import init_study
    from vislens.data.sources import load_image
    from vislens.data.synthetic import generate_grid_world, read_annotations
    from vislens.io import write_json_atomic
    from vislens.models.toy import answer, load_toy_vlm
    from vislens.store.extract import extract
    from vislens.study import STUDY_FILE, Study

    out_dir = Path(out_dir)
    world = out_dir / "world"
    if not (world / "annotations.jsonl").exists():
        generate_grid_world(world, n_images, seed=seed)
    study_dir = out_dir / "study"
    if (study_dir / STUDY_FILE).exists():
        study = Study.open(study_dir)
    else:
        study = init_study(
            study_dir, images=str(world), model="toy", layers=[1, -1], tokens="all", name="demo"
        )
    result = extract(study)

    vlm = load_toy_vlm()
    ann = read_annotations(world / "annotations.jsonl")[0]
    from vislens.data.sources import ImageRecord

    image = load_image(ImageRecord("img_00001", str(world / ann["image"])))
    qas = [DemoQA(q, answer(vlm, image, q), truth) for q, truth in _questions(ann["objects"])]
    summary: dict[str, object] = {
        "study": str(study.root),
        "activations": str(study.activations_dir),
        "n_images": result.n_items,
        "images_per_s": round(result.images_per_s, 1) if result.n_items_written else None,
        "questions": [
            {
                "image": ann["image"],
                "question": qa.question,
                "answer": qa.answer,
                "truth": qa.truth,
                "correct": qa.correct,
            }
            for qa in qas
        ],
    }
    write_json_atomic(study.reports_dir / "demo.json", summary)
    return summary


def demo_command(
    out_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to put the world and the study.")
    ] = Path("demo-study"),
    n: Annotated[int, typer.Option("--n", help="Images in the synthetic world.")] = 200,
    seed: Annotated[int, typer.Option(help="World seed.")] = 0,
) -> None:
    """Run the main job on the toy world: synth images, extract activations, ask the toy VLM."""
    summary = run_demo(out_dir, n_images=n, seed=seed)
    ips = summary["images_per_s"]
    typer.echo(
        f"activations of {summary['n_images']} images -> {summary['activations']}"
        + (f" ({ips} images/s)" if ips else " (already extracted)")
    )
    for qa in summary["questions"]:  # type: ignore[attr-defined]
        mark = "ok " if qa["correct"] else "NO "
        typer.echo(f"  {mark} {qa['question']:<48} -> {qa['answer']!r} (truth: {qa['truth']})")
    typer.echo(f"summary: {Path(str(summary['study'])) / 'reports' / 'demo.json'}")


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command("demo")(demo_command)
