"""One exception family for mistakes a user can fix.

Every ``VislensError`` message says what failed, names the file / record / key, and says
what to do. The CLI prints it as one line and exits with status 2; library callers can
catch it. Bugs in vislens itself are not ``VislensError`` and keep their traceback.
"""

from __future__ import annotations


class VislensError(Exception):
    """A problem with the user's input, configuration or environment."""


class ConfigError(VislensError):
    """A study.toml (or other config) that is missing, malformed, or has wrong keys."""


class InputError(VislensError):
    """An input file or record that cannot be used (missing image, bad manifest row, ...)."""


class ModelError(VislensError):
    """A model that cannot be loaded or does not fit the request (unknown id, layer out of range)."""
