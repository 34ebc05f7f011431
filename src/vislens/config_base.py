"""Base class for every config section: unknown keys are errors, fields carry docstrings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A validated, strict config section.

    Unknown keys are rejected (a typo must not be silently ignored), and each field's
    docstring (``use_attribute_docstrings``) becomes its description, which the CLI shows
    as help.
    """

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
    )
