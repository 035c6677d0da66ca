"""Job classes by import path and by class name, to rebuild stored jobs.

A stored job names its class by import path (``_type``: ``reports.daily.ReportJob``),
which is unambiguous. A class name alone (``--job ReportJob``) is unambiguous only while
one loaded class has it: when classes of two modules share it, a lookup by that name
raises :class:`AmbiguousJobClass` naming both, rather than taking either.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from rjbatch.errors import RjbatchError

if TYPE_CHECKING:
    from rjbatch.job import Job
    from rjbatch.job.definition import JobMeta

log = logging.getLogger("rjbatch.job.registry")

_by_path: dict[str, type[Job]] = {}
_by_name: dict[str, list[type[Job]]] = {}

#: the module name rjbatch gives a job file imported by path (``--jobs jobs/report.py``)
FILE_MODULE_PREFIX = "rjbatch_jobs_"


class AmbiguousJobClass(RjbatchError, LookupError):
    """A class name that more than one loaded job class has (in different modules)."""

    def __init__(self, name: str, classes: Sequence[JobMeta]) -> None:
        self.name = name
        self.paths = sorted(c._type_path for c in classes)
        spelled = " or ".join(_colon_name(c) for c in sorted(classes, key=lambda c: c._type_path))
        super().__init__(f"job class name {name!r} is ambiguous: {len(self.paths)} loaded classes have it "
                         f"({', '.join(self.paths)}); name one as module:Class ({spelled})")


def _colon_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register(cls: JobMeta) -> None:
    _by_path[cls._type_path] = cast("type[Job]", cls)
    same = _by_name.setdefault(cls.__name__, [])
    same[:] = [c for c in same if c._type_path != cls._type_path] + [cast("type[Job]", cls)]


def forget(cls: JobMeta) -> None:
    """Unregister a class (a stand-in for a stored class that cannot be imported here)."""
    if _by_path.get(cls._type_path) is cls:
        del _by_path[cls._type_path]
    _by_name[cls.__name__] = [c for c in _by_name.get(cls.__name__, []) if c is not cls]


def resolve(path: str) -> type[Job] | None:
    """The class a stored job names: by import path, importing its module if need be,
    then by class name (a class loaded from a ``--jobs`` file under another module name).

    Never raises: when several loaded classes have the name and none is the module
    named, None (the job is shown, and refused, as a class not loaded here), so a stored
    job never runs as a namesake from another module.
    """
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
    try:
        found = _one_named(name, module)
    except AmbiguousJobClass as exc:
        log.warning("stored class %s is not loaded, and the class name is ambiguous here: %s", path, exc)
        return None
    if found is None and _load_configured_jobs():
        return resolve(path)
    return found


_configured_loaded = False


def _load_configured_jobs() -> bool:
    """Import the configured job modules (``configure(jobs=...)``, ``RJBATCH_JOBS``,
    ``[tool.rjbatch] jobs``, a ``jobs/`` folder) the first time a stored job names a
    class that is not loaded: a script need not import them first. True if it tried."""
    global _configured_loaded
    if _configured_loaded:
        return False
    _configured_loaded = True
    from rjbatch import config
    from rjbatch.errors import ConfigurationError

    try:
        return bool(config.load_jobs())
    except ConfigurationError as exc:
        log.warning("could not import the configured job modules: %s", exc)
        return False


def by_name(name: str) -> type[Job] | None:
    """A class from a name given on a command line: ``ReverseJob``, ``module:Class`` or
    ``module.Class``; None when no loaded class has it.

    Raises :class:`AmbiguousJobClass` when a bare class name belongs to classes of more
    than one module.
    """
    if ":" in name:
        module, _, qualname = name.partition(":")
        try:
            target: Any = importlib.import_module(module)
        except ImportError:
            return None
        for part in qualname.split("."):
            target = getattr(target, part, None)
        return target if isinstance(target, type) else None
    if name in _by_path:
        return _by_path[name]
    module, _, bare = name.rpartition(".")
    return _one_named(bare, module)


def _one_named(name: str, module: str = "") -> type[Job] | None:
    """The loaded class with this class name (in ``module``, when given and several have it)."""
    candidates = _by_name.get(name, [])
    if len(candidates) > 1 and module:
        in_module = [c for c in candidates if same_module(c.__module__, module)]
        candidates = in_module or candidates
    if len(candidates) > 1:
        raise AmbiguousJobClass(name, candidates)
    return candidates[0] if candidates else None


def same_module(loaded: str, wanted: str) -> bool:
    """Is the module ``loaded`` the one named ``wanted``, possibly imported under another
    name (``report`` imported from a ``--jobs`` file as ``rjbatch_jobs_app_jobs_report``,
    or as a package's ``app.jobs.report``), either way round?"""
    if loaded == wanted or loaded.endswith("." + wanted) or wanted.endswith("." + loaded):
        return True
    return any(one.startswith(FILE_MODULE_PREFIX) and one.endswith("_" + other.replace(".", "_"))
               for one, other in ((loaded, wanted), (wanted, loaded)))


def namesakes(cls: type) -> list[type[Job]]:
    """The other loaded job classes with ``cls``'s class name (different modules)."""
    return [c for c in _by_name.get(cls.__name__, []) if c is not cls]


def class_filter(cls: type) -> dict[str, Any]:
    """A store filter for the jobs of ``cls`` and its subclasses, by class name (the
    ``_classes`` every stored job carries), excluding the jobs of loaded classes of
    another module with the same name, and of their loaded subclasses, by import path.

    Jobs of classes not loaded in this process are told apart by name only: a job of an
    unloaded ``b.ReportJob`` (or of a subclass of it) matches ``a.ReportJob``'s filter.
    """
    base: dict[str, Any] = {"_class": cls.__name__}
    others = namesakes(cls)
    if not others:
        return base
    foreign = sorted({k._type_path for k in all_classes() for other in others
                      if issubclass(k, other) and not issubclass(k, cls)})
    return {**base, "_type": {"$nin": foreign}}


def is_kind_of(doc: dict[str, Any], cls: type) -> bool:
    """Would :func:`class_filter` match this stored job (``Job.find`` on a subclass)?"""
    if cls.__name__ not in doc.get("_classes", ()):
        return False
    stored = _by_path.get(doc.get("_type", ""))
    if stored is not None:
        return issubclass(stored, cls)
    return not any(doc.get("_type") == k._type_path for k in namesakes(cls))


def all_classes() -> list[type[Job]]:
    return list(_by_path.values())
