"""study.toml: creation, round trip, and errors that name the key and the file."""

from __future__ import annotations

import pytest

from vislens.errors import ConfigError
from vislens.study import Study, StudyConfig


def test_init_creates_layout_and_round_trips(tmp_path):
    cfg = StudyConfig(name="s1")
    cfg.extract.layers = [7, 8, 11]
    cfg.extract.tokens = "cls"
    study = Study.init(tmp_path / "s", cfg)
    for sub in ("activations", "sae", "lens", "probe", "map", "reports"):
        assert (study.root / sub).is_dir()
    again = Study.open(tmp_path / "s")
    assert again.config == study.config
    assert again.config.extract.layers == [7, 8, 11]


def test_init_refuses_existing_study(tmp_path):
    Study.init(tmp_path / "s")
    with pytest.raises(ConfigError, match="already exists"):
        Study.init(tmp_path / "s")


def test_unknown_key_names_key_and_file(tmp_path):
    study = Study.init(tmp_path / "s")
    text = study.config_path.read_text().replace("[extract]\n", "[extract]\nlayerz = [1]\n")
    study.config_path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Study.open(study.root)
    assert "extract.layerz" in str(err.value)
    assert "study.toml" in str(err.value)


def test_wrong_type_names_key(tmp_path):
    study = Study.init(tmp_path / "s")
    text = study.config_path.read_text().replace("batch_size = 32", 'batch_size = "many"')
    study.config_path.write_text(text)
    with pytest.raises(ConfigError, match=r"extract\.batch_size"):
        Study.open(study.root)


def test_bad_literal_and_unknown_section(tmp_path):
    study = Study.init(tmp_path / "s")
    study.config_path.write_text(
        study.config_path.read_text().replace('tokens = "all"', 'tokens = "some"')
    )
    with pytest.raises(ConfigError, match=r"extract\.tokens"):
        Study.open(study.root)
    study.config_path.write_text('name = "x"\n[extrakt]\nlayers = [1]\n')
    with pytest.raises(ConfigError, match="extrakt"):
        Study.open(study.root)


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="vislens init"):
        Study.open(tmp_path)
    (tmp_path / "study.toml").write_text("name = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Study.open(tmp_path)


def test_newer_schema_is_refused(tmp_path):
    (tmp_path / "study.toml").write_text("schema_version = 99\n")
    with pytest.raises(ConfigError, match="upgrade vislens"):
        Study.open(tmp_path)


def test_every_section_field_has_a_description():
    """Each field's docstring becomes its help text; none may be missing."""
    missing = []
    for section_name, section in StudyConfig.model_fields.items():
        cls = section.annotation
        if isinstance(cls, type) and hasattr(cls, "model_fields"):
            for name, field in cls.model_fields.items():
                if not field.description:
                    missing.append(f"{section_name}.{name}")
    assert missing == []


def test_format_doc_names_every_key():
    """docs/formats/study.md and StudyConfig name the same foundation keys."""
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "formats" / "study.md").read_text()
    keys = ["schema_version", "name", "description"]
    for section in ("images", "model", "extract"):
        keys += list(StudyConfig.model_fields[section].annotation.model_fields)  # type: ignore[union-attr]
    assert [k for k in keys if f"`{k}`" not in doc] == []
