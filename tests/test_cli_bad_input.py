"""Every CLI command on its typical bad inputs: exit status 2, one line on stderr naming
the file / record / value, no traceback, and nothing written.

Commands run in-process through ``vislens.cli.main`` (the console script's entry point),
in a fresh folder that is also the working directory, so a stray ``./judge-cache.sqlite``
counts as a file written. Adding a case is one line in ``CASES``: an id, the arguments
(``{name}`` placeholders are the files ``world`` makes), and a text the error must contain.
The lens, probe, sae and workbench commands have suites of their own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from helpers_human import make_study, write_export
from vislens import cli

# fmt: off
CASES: list[tuple[str, list[str], str]] = [
    # data
    ("init-layers", ["init", "{tmp}/new", "--layers", "a,b"], "--layers 'a,b'"),
    ("init-tokens", ["init", "{tmp}/new", "--tokens", "weird"], "--tokens 'weird'"),
    ("init-images", ["init", "{tmp}/new", "--images", "{missing}"], "{missing}"),
    ("init-exists", ["init", "{study}"], "a study already exists"),
    ("synth-nonempty", ["synth", "grid", "{study}", "--n", "2"], "{study}"),
    ("extract-not-study", ["extract", "{nostudy}"], "no study.toml"),
    # judge
    ("classify-truncated", ["judge", "classify", "{truncated}", "-m", "toy"], "not valid JSON"),
    ("classify-not-list", ["judge", "classify", "{notlist}", "-m", "toy"], "key 'not'"),
    ("classify-missing", ["judge", "classify", "{missing}", "-m", "toy"], "no such file"),
    ("classify-bad-index", ["judge", "classify", "{badindex}", "-m", "toy"], "index 'x1'"),
    ("judge-ll-truncated", ["judge", "latentlens", "{truncated}", "-m", "toy"], "not valid JSON"),
    ("judge-ll-no-rows", ["judge", "latentlens", "{notlist}", "-m", "toy"], "{notlist}"),
    ("images-no-column", ["judge", "images", "{csv}", "-m", "toy"], "no column 'file_name'"),
    ("images-empty-csv", ["judge", "images", "{emptycsv}", "-m", "toy"], "not a readable CSV"),
    ("judge-cache-missing", ["judge", "cache", "{missing}"], "no judge cache"),
    ("label-not-study", ["label", "{nostudy}", "--sae", "s", "-m", "toy"], "no study.toml"),
    # human
    ("tasks-not-study", ["human", "tasks", "{nostudy}"], "no study.toml"),
    ("binary-not-list", ["human", "task", "binary", "{study}", "{notlist}"], "key 'not'"),
    ("binary-truncated", ["human", "task", "binary", "{study}", "{truncated}"], "not valid JSON"),
    ("patch-row-30", ["human", "task", "patch", "{study}", "{row30}"], "'patch_row' is 30"),
    ("patch-no-image", ["human", "task", "patch", "{study}", "{noimage}"], "nowhere.png"),
    ("patch-truncated", ["human", "task", "patch", "{study}", "{truncated}"], "not valid JSON"),
    ("rating-no-images", ["human", "task", "rating", "{study}", "{cards}"], "'images'"),
    ("annotator-not-study", ["human", "annotator", "add", "{nostudy}", "x"], "no study.toml"),
    ("import-labels", ["human", "import", "labels", "{study}", "{notlist}", "--annotator", "b"], "key 'not'"),
    ("import-evals-word", ["human", "import", "evaluations", "{study}", "ll", "{badeval}"], "'green'"),
    ("import-judge-task", ["human", "import", "judge", "{study}", "nope", "{llm}", "--judge", "g"], "'nope'"),
    ("export-labels-ghost", ["human", "export", "labels", "{study}", "bin", "--annotator", "ghost"], "'ghost'"),
    ("export-labels-task", ["human", "export", "labels", "{study}", "nope"], "'nope'"),
    ("export-instances", ["human", "export", "instances", "{study}", "nope", "-o", "{tmp}/o.json"], "'nope'"),
    ("export-evaluations", ["human", "export", "evaluations", "{study}", "nope", "-o", "{tmp}/o"], "'nope'"),
    ("export-judge-ghost", ["human", "export", "judge", "{study}", "ll", "--judge", "ghost", "-o", "{tmp}/o.json"], "'ghost'"),
    ("export-events", ["human", "export", "events", "{study}", "nope", "-o", "{tmp}/o.csv"], "'nope'"),
    # agree
    ("agree-labels-missing", ["agree", "labels", "{missing}", "{labels}"], "no such file"),
    ("agree-labels-bad", ["agree", "labels", "{labels}", "{notlist}"], "key 'not'"),
    ("agree-ll-eval", ["agree", "latentlens", "{data}", "{badeval}", "--llm", "{llm}"], "'green'"),
    ("agree-ll-threshold", ["agree", "latentlens", "{data}", "{eval}", "--llm", "{llm}", "--threshold", "1.5"], "--threshold"),
    ("agree-task-unknown", ["agree", "task", "{study}", "nope"], "'nope'"),
    ("agree-task-judge", ["agree", "task", "{study}", "ll", "--judge", "ghost"], "'ghost'"),
    ("agree-task-raters", ["agree", "task", "{study}", "bin", "--raters-a", "alice", "--raters-b", "zed"], "zed"),
]
# fmt: on

# SQLite keeps -wal/-shm/-journal files beside a database it has opened; they are the
# database's own, not output.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _instances(grid_row: int = 2, image: str = "https://example.org/0.jpg") -> list[dict]:
    return [
        {
            "id": f"m_{i:05d}_patch0",
            "instance_id": f"{i:05d}_patch0",
            "model": "m",
            "image_url": image if i == 0 else f"https://example.org/{i}.jpg",
            "patch_row": grid_row if i == 0 else 1,
            "patch_col": 1,
            "grid": 10,
            "candidates": [["a red umbrella", " red"], ["blue sky", " sky"]],
        }
        for i in range(3)
    ]


def _evaluation(word: str = "a red umbrella") -> dict:
    return {
        "userId": "alice",
        "sessionId": "s1",
        "results": [
            {
                "instanceId": f"m_{i:05d}_patch0",
                "selectedWords": [{"word": word, "relation": "concrete"}],
                "noneSelected": False,
                "timestamp": "2025-11-13T15:10:00.000Z",
            }
            for i in range(3)
        ],
    }


@pytest.fixture
def world(tmp_path: Path) -> dict[str, str]:
    """A study with a labelled binary task ``bin`` and a patch task ``ll`` (answers and
    judge ``gpt``), plus the good and bad files the cases name."""
    from vislens.human.session import TaskSession
    from vislens.human.tasks import create_binary_task, create_patch_task
    from vislens.human.transfer import import_evaluations, import_llm_results
    from vislens.store.annotations import AnnotationStore

    def write(name: str, content: object) -> str:
        p = tmp_path / name
        p.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(p)

    study = make_study(tmp_path / "study")
    store = AnnotationStore.for_study(study)
    export = write_export(tmp_path / "export.json", 6)
    create_binary_task(store, export, n=4, name="bin")
    session = TaskSession(store, "bin")
    alice = store.add_annotator("alice")
    session.act(alice, "label", session.item(position=0), "related")
    files = {
        "tmp": str(tmp_path),
        "study": str(study.root),
        "nostudy": str((tmp_path / "empty").resolve()),
        "missing": str(tmp_path / "missing.json"),
        "truncated": write("truncated.json", '[{"index": "1", "description": "bold te'),
        "notlist": write("notlist.json", {"not": "a list"}),
        "badindex": write("badindex.json", [{"index": "x1", "description": "d"}]),
        "csv": write("meta.csv", "name,label\na.png,cat\n"),
        "emptycsv": write("empty.csv", ""),
        "data": write("data.json", _instances()),
        "row30": write("row30.json", _instances(grid_row=30)),
        "noimage": write("noimage.json", _instances(image="nowhere.png")),
        "cards": write("cards.json", [{"feature_id": "f1", "label": "x", "images": []}]),
        "eval": write("evaluation_alice_s1.json", _evaluation()),
        "badeval": write("evaluation_bob_s1.json", _evaluation(word="green")),
        "llm": write(
            "llm.json",
            {"results": [{"instance_id": "00000_patch0", "gpt_response": {"interpretable": True}}]},
        ),
        "labels": write("labels.json", [{"_row_id": 0, "feature_index": 0, "label": "related"}]),
    }
    (tmp_path / "empty").mkdir()
    create_patch_task(store, Path(files["data"]), name="ll")
    import_evaluations(store, "ll", [Path(files["eval"])])
    import_llm_results(store, "ll", Path(files["llm"]), judge="gpt")
    store.close()
    return files


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (but SQLite's companions) with its content hash."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(SQLITE_COMPANIONS)
    }


@pytest.mark.parametrize(("argv", "expect"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(
    world: dict[str, str],
    argv: list[str],
    expect: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(world["tmp"])
    monkeypatch.chdir(root)
    monkeypatch.setenv("VISLENS_NO_PROGRESS", "1")
    args = [a.format(**world) for a in argv]
    before = _snapshot(root)
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, (out, err)
    assert err.strip() and err.strip().count("\n") == 0, err
    assert "Traceback" not in err + out
    assert expect.format(**world) in err, err
    assert _snapshot(root) == before


def test_every_case_names_a_command_that_exists() -> None:
    # a renamed command would turn its cases into usage errors, which also exit 2
    import typer.main

    group = typer.main.get_command(cli.app)
    for case_id, argv, _ in CASES:
        cmd = group
        for word in argv:
            sub = getattr(cmd, "commands", {}).get(word)
            if sub is None:
                break
            cmd = sub
        assert not hasattr(cmd, "commands"), f"{case_id}: {argv[:3]} is not a command"
