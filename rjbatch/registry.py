"""Job classes by import path and by class name, to rebuild stored jobs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rjbatch.job import Job

_by_path: dict[str, type[Job]] = {}
_by_name: dict[str, list[type[Job]]] = {}


def register(cls: type[Job]) -> None:
    _by_path[cls._type_path] = cls
    same = _by_name.setdefault(cls.__name__, [])
    same[:] = [c for c in same if c._type_path != cls._type_path] + [cls]


def resolve(path: str) -> type[Job] | None:
    """The class a stored job names: by import path, importing its module if need be,
    then by class name (a class loaded from a ``--jobs`` folder under another module)."""
    if path in _by_path:
        return _by_path[path]
    module, _, name = path.rpartition(".")
    if module and module != "__main__":
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - an unimportable module means: look by name
            pass
        if path in _by_path:
            return _by_path[path]
    return by_name(name)


def by_name(name: str) -> type[Job] | None:
    """A class from a name given on a command line: ``ReverseJob`` or ``module:Class``."""
    if ":" in name:
        module, _, qualname = name.partition(":")
        try:
            target = importlib.import_module(module)
        except ImportError:
            return None
        for part in qualname.split("."):
            target = getattr(target, part, None)
        return target if isinstance(target, type) else None
    if name in _by_path:
        return _by_path[name]
    candidates = _by_name.get(name.rpartition(".")[2], [])
    return candidates[-1] if candidates else None


def all_classes() -> list[type[Job]]:
    return list(_by_path.values())
