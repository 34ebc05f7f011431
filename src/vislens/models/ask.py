"""Answer a prompt about an image with a VLM named by a study, a directory, a hub id or ``toy``."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from vislens.errors import InputError


def model_from_target(target: str | Path) -> str:
    """The VLM a target names: a study directory's configured model, else the target itself."""
    path = Path(target)
    if (path / "study.toml").is_file():
        from vislens.study import Study

        name = Study.open(path).config.model.name_or_path
        if not name:
            raise InputError(
                f"{path / 'study.toml'}: [model] name_or_path is empty; set it to a VLM"
            )
        return name
    return str(target)


def load_image(image_path: Path) -> Image.Image:
    """An RGB image from a file, with a clear error when it is missing or not an image."""
    image_path = Path(image_path)
    if not image_path.is_file():
        raise InputError(f"{image_path}: image file not found")
    try:
        with Image.open(image_path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{image_path}: not a readable image ({e})") from None


def ask_vlm(
    target: str | Path,
    image_path: Path,
    prompt: str,
    *,
    max_new_tokens: int = 48,
    device: str = "cpu",
) -> str:
    """Load the VLM ``target`` names and return its greedy answer."""
    from vislens.models.vlm.load import load_vlm

    image = load_image(image_path)
    vlm = load_vlm(model_from_target(target), device=device)
    return vlm.answer(image, prompt, max_new_tokens=max_new_tokens)
