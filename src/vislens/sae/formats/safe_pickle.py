"""A restricted unpickler for training checkpoints that pickle their config objects.

ViT-Prisma's trainer saves ``{"cfg": <VisionModelSAERunnerConfig>, "state_dict": …}``;
``torch.load(weights_only=True)`` refuses the config class, and loading it the ordinary
way would import ViT-Prisma and run whatever the pickle names. This module is a drop-in
``pickle_module`` for ``torch.load`` whose ``find_class`` resolves only a fixed list of
harmless globals (tensor rebuilders, dtypes, devices, builtin containers). Every other
global becomes a fresh :class:`PickledObject` subclass that only *records* the arguments
and state it is given, so nothing from the file is ever imported or called; afterwards
:func:`to_plain` turns such objects into dicts.
"""

from __future__ import annotations

import builtins
import collections
import pickle
from pathlib import Path
from typing import IO, Any

import torch

_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "tuple", "list", "dict", "int", "float", "str", "bytes", "bytearray",
     "complex", "bool", "slice", "range"}
)  # fmt: skip
_SAFE_TORCH_UTILS = frozenset(
    {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"}
)


class PickledObject:
    """Stand-in for a class the checkpoint names but vislens does not trust.

    ``args`` are what the pickle would have called the class with, ``state`` what it would
    have restored into the instance; ``qualname`` is ``module.Name`` as the file spells it.
    """

    qualname = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObject:
        obj = super().__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<pickled {self.qualname}>"

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any


def _stand_in(module: str, name: str) -> type[PickledObject]:
    return type(name, (PickledObject,), {"qualname": f"{module}.{name}", "__module__": __name__})


def _resolve(module: str, name: str) -> Any:
    """The real object for an allow-listed global, else None."""
    if module == "builtins" and name in _SAFE_BUILTINS:
        return getattr(builtins, name)
    if module == "collections" and name == "OrderedDict":
        return collections.OrderedDict
    if module == "torch._utils" and name in _SAFE_TORCH_UTILS:
        return getattr(torch._utils, name)
    if module == "torch":
        obj = getattr(torch, name, None)
        if isinstance(obj, torch.dtype) or obj is torch.device or obj is torch.Size:
            return obj
    return None


class Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals are allow-listed; anything else is a stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        found = _resolve(module, name)
        return found if found is not None else _stand_in(module, name)


def load(file: IO[bytes], **kwargs: Any) -> Any:
    """``pickle.load`` through the restricted :class:`Unpickler` (torch's legacy format path)."""
    return Unpickler(file, **kwargs).load()


def to_plain(obj: Any) -> Any:
    """Plain data from an unpickled value: stand-ins become their state dict (or args)."""
    if isinstance(obj, PickledObject):
        state = obj.state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state = {**(state[0] or {}), **state[1]}  # (dict state, slot state)
        if isinstance(state, dict):
            return {str(k): to_plain(v) for k, v in state.items()}
        if state is not None:
            return to_plain(state)
        return [to_plain(a) for a in obj.args] if len(obj.args) != 1 else to_plain(obj.args[0])
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, torch.dtype):
        return str(obj).removeprefix("torch.")
    if isinstance(obj, torch.device):
        return str(obj)
    return obj


def load_checkpoint(path: Path) -> Any:
    """``torch.load`` of ``path`` through the restricted unpickler, on the CPU."""
    # pickle_module makes torch use our Unpickler (its own wrapper subclasses it and defers
    # every non-storage global to our find_class); weights_only must stay unset for that
    import sys

    return torch.load(path, map_location="cpu", pickle_module=sys.modules[__name__])
