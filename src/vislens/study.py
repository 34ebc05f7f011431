"""The study directory: one place every stage reads from and writes to.

Layout (see docs/formats/study.md)::

    my-study/
      study.toml          validated config (StudyConfig)
      images.parquet      item_id, source, width, height, split, metadata columns
      activations/        per layer: safetensors shards + manifest.json
      sae/<name>/         SAE checkpoint, sparse codes, top-k, scores, labels
      lens/  probe/  map/  reports/
      judge-cache.sqlite  annotations.sqlite
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import Field, ValidationError

from vislens.config_base import Section
from vislens.data.config import ImagesConfig
from vislens.errors import ConfigError
from vislens.human.config import AnnotationsConfig
from vislens.io import write_text_atomic
from vislens.judge.config import JudgeConfig
from vislens.lens.config import LensConfig
from vislens.models.config import ModelConfig
from vislens.probe.config import ProbeConfig
from vislens.sae.config import SAEConfig
from vislens.store.config import ExtractConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

STUDY_FILE = "study.toml"
SCHEMA_VERSION = 1


class StudyConfig(Section):
    """Everything that was run in a study; written to study.toml."""

    schema_version: int = SCHEMA_VERSION
    """Version of this file's layout; older versions are upgraded when read."""

    name: str = ""
    """A short name for the study."""

    description: str = ""
    """Free text: what the study is for."""

    images: ImagesConfig = Field(default_factory=ImagesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    sae: SAEConfig = Field(default_factory=SAEConfig)
    lens: LensConfig = Field(default_factory=LensConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    annotations: AnnotationsConfig = Field(default_factory=AnnotationsConfig)


def _explain(err: ValidationError, file: Path) -> str:
    """Turn pydantic's errors into lines that name the key and the file."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(
                f"{file}: unknown key '{key}' — check its spelling (see docs/formats/study.md)"
            )
        elif e["type"] == "missing":
            lines.append(f"{file}: missing key '{key}'")
        else:
            lines.append(f"{file}: key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(lines)


def load_config(path: Path) -> StudyConfig:
    """Read and validate a study.toml; any problem is a ConfigError naming the key and file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no study.toml here — create a study with `vislens init DIR`")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    version = raw.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: key 'schema_version' is {version!r}; this vislens reads up to "
            f"{SCHEMA_VERSION} — upgrade vislens"
        )
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_explain(e, path)) from None


def _to_toml_dict(cfg: StudyConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json", exclude_none=True)


class Study:
    """A study directory and its config. Create with ``Study.init``, open with ``Study.open``."""

    def __init__(self, root: Path, config: StudyConfig) -> None:
        self.root = Path(root)
        self.config = config

    # -- creation ---------------------------------------------------------------------
    @classmethod
    def init(
        cls, root: Path, config: StudyConfig | None = None, *, exist_ok: bool = False
    ) -> Study:
        """Create the study directory with its layout and a study.toml."""
        root = Path(root)
        if (root / STUDY_FILE).exists() and not exist_ok:
            raise ConfigError(
                f"{root / STUDY_FILE}: a study already exists here — open it, or pick another directory"
            )
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{root}: exists and is not a directory")
        config = config or StudyConfig(name=root.name)
        if not config.name:
            config = config.model_copy(update={"name": root.name})
        study = cls(root, config)
        for sub in ("activations", "sae", "lens", "probe", "map", "reports"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        study.save()
        return study

    @classmethod
    def open(cls, root: Path) -> Study:
        """Open an existing study; errors name study.toml and the bad key."""
        root = Path(root)
        return cls(root, load_config(root / STUDY_FILE))

    def save(self) -> None:
        """Write study.toml atomically."""
        write_text_atomic(self.config_path, tomli_w.dumps(_to_toml_dict(self.config)))

    # -- paths ------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / STUDY_FILE

    @property
    def images_path(self) -> Path:
        return self.root / "images.parquet"

    @property
    def activations_dir(self) -> Path:
        return self.root / "activations"

    def sae_dir(self, name: str) -> Path:
        return self.root / "sae" / name

    @property
    def lens_dir(self) -> Path:
        return self.root / "lens"

    @property
    def probe_dir(self) -> Path:
        return self.root / "probe"

    @property
    def map_dir(self) -> Path:
        return self.root / "map"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def judge_cache_path(self) -> Path:
        return self.root / "judge-cache.sqlite"

    @property
    def annotations_url(self) -> str:
        """SQLAlchemy URL of the annotation store (study.toml's, else the embedded SQLite file)."""
        url = self.config.annotations.database_url
        return url or f"sqlite:///{(self.root / 'annotations.sqlite').resolve()}"

    def resolve(self, path: str | Path) -> Path:
        """A path from study.toml: absolute as is, relative to the study directory otherwise."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.root / p)
