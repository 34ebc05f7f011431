"""docs/formats/toy-model.md names exactly the fields the code writes."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from vislens.models.toy.evaluate import ToyEvalReport
from vislens.models.toy.train import ToyTrainConfig, record_eval, save_toy

DOC = Path(__file__).resolve().parents[1] / "docs" / "formats" / "toy-model.md"


def _section_fields(title: str) -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_train_json_fields_match_the_doc(tmp_path: Path) -> None:
    from vislens.models.toy.build import ToyArch, build_toy_vlm

    arch = ToyArch(
        vision_hidden=16, vision_layers=1, vision_intermediate=32, text_hidden=16, text_layers=1
    )
    cfg = ToyTrainConfig(arch=arch)
    save_toy(build_toy_vlm(arch), tmp_path / "m", cfg, extra={"step": 0, "metrics": {}})
    record_eval(tmp_path / "m", ToyEvalReport(n_images=1, seed=1).to_json())
    written = json.loads((tmp_path / "m" / "train.json").read_text())
    assert set(written) == _section_fields("train.json")
    assert set(written["config"]) == {f.name for f in dataclasses.fields(ToyTrainConfig)}
    files = {p.name for p in (tmp_path / "m").iterdir()}
    documented = set(
        re.findall(r"^\| `([a-z_.]+)`(?:, `([a-z_.]+)`)? \|", DOC.read_text(), flags=re.M)[0]
    )
    assert {"config.json", "model.safetensors", "train.json", "tokenizer.json"} <= files
    assert documented <= files | {""}


def test_mlp_train_json_fields_match_the_doc(tmp_path: Path) -> None:
    from vislens.models.toy.build import ToyArch, build_toy_vlm
    from vislens.models.toy.mlp import ToyMlpConfig

    arch = ToyArch(
        vision_hidden=16, vision_layers=1, vision_intermediate=32, text_hidden=16, text_layers=1
    )
    cfg = ToyMlpConfig(arch=arch, slot_layer=1)
    metrics = dict.fromkeys(
        ["tower_occupied_cell_acc", "text_final_loss", "connector_final_loss", "train_caption_acc"],
        0.0,
    )
    save_toy(build_toy_vlm(arch), tmp_path / "m", cfg, extra={"metrics": metrics})
    written = json.loads((tmp_path / "m" / "train.json").read_text())
    assert set(written) | {"step", "eval"} == _section_fields("train.json")
    assert written["config"]["variant"] == "toy-mlp"
    assert set(written["config"]) == {f.name for f in dataclasses.fields(ToyMlpConfig)}
    text = DOC.read_text(encoding="utf-8")
    assert all(f"`{k}`" in text for k in metrics)


def test_eval_report_fields_match_the_doc() -> None:
    report = ToyEvalReport(
        n_images=3, seed=5, accuracy={"presence": 1.0}, n_questions={"presence": 3}
    )
    assert set(report.to_json()) == _section_fields("Eval report")
