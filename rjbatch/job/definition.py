"""Building job classes: the field table, the callback table, the registry entry, and
the refusals a class definition gets (a field named like the job API, an ``async def``).

``Job`` itself lives in ``rjbatch.job``; its parts are ``record`` (values and
persistence), ``lifecycle`` (the state machine and running), ``queries`` and ``display``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, cast

from rjbatch.job import registry
from rjbatch.job.callbacks import Callbacks
from rjbatch.job.fields import Field, computed

if TYPE_CHECKING:
    from rjbatch.job import Job

# Names a field may not take: the job API, on every job class. Every public attribute
# of Job and BatchJob (methods, properties, class settings), the instance attributes
# ``id`` and ``errors``, and the batch fields the library reads on any job (a plain job
# with a ``sub_state`` of "processing" would be claimed as a batch job being processed).
# A field of a class in the MRO is checked by _check_fields instead (a redefinition that
# only changes its default is allowed), as are the attributes of the plugins mixed in.
RESERVED = frozenset({
    # identity, persistence and queries
    "id", "errors", "create", "save", "update", "update_attribute", "reload", "delete", "destroy",
    "delete_all", "destroy_all", "count", "first", "last", "where", "find", "query", "all",
    "order_by", "queued", "running", "completed", "failed", "aborted", "paused", "scheduled",
    "queued_now", "counts_by_state", "requeue_dead_server", "pause_all", "resume_all",
    "is_new_record", "is_persisted", "changed_fields", "to_doc", "as_dict", "status",
    "user_editable_fields", "copy_on_restart_fields",
    # events, state and running
    "start", "complete", "fail", "retry", "pause", "resume", "abort", "requeue", "run_now",
    "may", "perform", "perform_now", "throttled", "validate", "is_valid", "logger", "fire",
    "can", "act", "from_claim", "begin", "work", "retry_pending", "transitions", "is_destroyed",
    "field_names", "field_definition", "singleton_key",
    "duration", "seconds", "display_state", "records_per_second", "remaining_seconds", "is_queued", "is_running", "is_completed", "is_failed",
    "is_aborted", "is_paused", "is_scheduled", "is_expired", "is_pausable",
    # class settings
    "collect_output", "pausable", "throttle_running_jobs", "slice_size",
    "collect_nil_output", "slices_per_claim",
    # batch jobs
    "input", "output", "upload", "download", "upload_query", "upload_mongo_query",
    "upload_integer_range", "upload_integer_range_in_reverse_order", "sliced_input",
    "sliced_output", "input_category", "output_category", "configure_categories",
    "update_category", "statistics_inc", "current_record_number", "sub_state", "record_count",
    "slices_held", "fail_upload",
})
_MUTABLE_KINDS = (dict, list, object, None)


class JobMeta(type):
    """Builds each job class's field table, callback table and registry entry."""

    # what every job class gets (class attributes, declared here for type checkers)
    _fields: dict[str, Field]
    _callbacks: Callbacks
    _mutable_fields: tuple[str, ...]
    _dynamic_fields: tuple[str, ...]
    _type_path: str
    _classes: list[str]
    _perform_chain: bool

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any) -> JobMeta:
        cls = super().__new__(mcls, name, bases, namespace, **kw)
        fields: dict[str, Field] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Field):
                    fields[key] = value
                elif key in fields and isinstance(value, computed):
                    del fields[key]  # worked out on read in this class, no longer stored
                elif key in fields and not key.startswith("__"):
                    if callable(value) and not isinstance(value, type) or isinstance(value, property):
                        raise TypeError(f"{klass.__name__}.{key} shadows the field {key!r}")
                    fields[key] = fields[key].with_default(value)  # a class-level setting
        _check_fields(cls)
        for key, described in fields.items():
            if vars(cls).get(key) is not described:
                type.__setattr__(cls, key, described)
        cls._fields = fields
        cls._callbacks = Callbacks(list(reversed(cls.__mro__)))
        cls._mutable_fields = tuple(k for k, f in fields.items() if f.kind in _MUTABLE_KINDS)
        cls._dynamic_fields = tuple(k for k, f in fields.items() if f.has_dynamic_default)
        cls._type_path = f"{cls.__module__}.{cls.__qualname__}"
        cls._classes = [k.__name__ for k in reversed(cls.__mro__) if isinstance(k, JobMeta)]
        cls._perform_chain = cls._callbacks.has_chain("perform")
        _check_not_async(cls)
        registry.register(cls)
        return cls

    def __setattr__(cls, key: str, value: Any) -> None:
        described = cls.__dict__.get("_fields", {}).get(key)
        if described is not None and not isinstance(value, Field):
            # MyJob.priority = 70: a new default for later instances, as in Rocket Job
            value = described.with_default(value)
            cls._fields[key] = value
        type.__setattr__(cls, key, value)


def _is_library(klass: type) -> bool:
    """A class of rjbatch itself (Job, BatchJob, the plugins, the built-in jobs)."""
    module = klass.__module__ or ""
    return (module == "rjbatch" or module.startswith("rjbatch.")) and module != "rjbatch.unresolved"


def _library_names(cls: type) -> dict[str, tuple[type, Field | None]]:
    """What the rjbatch classes in ``cls``'s MRO define: name -> (owner, its Field, or None
    for a method, property or class setting). The nearest definition wins; a plain value
    given to a field's name is a class setting (a new default), and the name stays a field."""
    found: dict[str, tuple[type, Field | None]] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not _is_library(klass):
            continue
        for key, value in vars(klass).items():
            if key.startswith("__"):
                continue
            if isinstance(value, Field):
                found[key] = (klass, value)
            elif key not in found or found[key][1] is None or isinstance(value, computed):
                found[key] = (klass, None)
    return found


def _same_but_default(mine: Field, theirs: Field) -> bool:
    """Does ``mine`` declare ``theirs`` again, changing at most its default (and description)?"""
    return all(getattr(mine, slot) == getattr(theirs, slot)
               for slot in ("kind", "choices", "copy_on_restart", "user_editable", "required"))


def _check_fields(cls: type) -> None:
    """Refuse a field that would take the place of something the job model uses.

    Every field declared by a class of the user's (the class being defined and any mixin
    of its MRO that is not rjbatch's) is checked: not ``_private``, not a name of the job
    API (RESERVED), not a method, property or setting of rjbatch's classes in the MRO (a
    plugin's too), and not a standard field declared again with another kind or other
    options (``state = field(str)`` would lose the state machine's default and choices;
    ``priority = 70`` is how a class changes a default). The library's own classes may
    redefine their standard fields (BatchJob's ``destroy_on_complete``).
    """
    library: dict[str, tuple[type, Field | None]] | None = None
    for klass in cls.__mro__:
        if klass is object or _is_library(klass):
            continue
        for key, value in vars(klass).items():
            if not isinstance(value, Field) or value.owner is not klass:
                continue  # not declared here: a parent's field (or a new default) copied down
            where = f"{cls.__name__}" if klass is cls else f"{cls.__name__} (through {klass.__name__})"
            if key.startswith("_"):
                raise TypeError(f"{where}: a field cannot be named {key!r}: "
                                "names starting with '_' are the job's internals")
            if library is None:
                library = _library_names(cls)
            owner, standard = library.get(key, (None, None))
            if standard is not None and owner is not None:
                if not _same_but_default(value, standard):
                    raise TypeError(
                        f"{where}: a field cannot be named {key!r}: that is the standard field "
                        f"{_shown(owner)}.{key} ({_options(standard)}), which the job model uses, "
                        f"declared again with other options ({_options(value)}); to give it "
                        f"another default, assign the value instead: {key} = ...")
            elif owner is not None:
                what = _describe(vars(owner).get(key))
                raise TypeError(f"{where}: a field cannot be named {key!r}: that name is "
                                f"{_shown(owner)}.{key}, {what} the job model uses")
            elif key in RESERVED:
                raise TypeError(f"{where}: a field cannot be named {key!r}: "
                                "that name is part of the job API")


def _shown(owner: type) -> str:
    """The class to name in a message: ``Job`` for the parts ``Job`` is made of."""
    return "Job" if owner.__module__.startswith("rjbatch.job.") else owner.__name__


def _options(described: Field) -> str:
    kind = getattr(described.kind, "__name__", described.kind)
    text = f"{kind}, default {described.default!r}"
    for slot in ("choices", "copy_on_restart", "user_editable", "required"):
        if getattr(described, slot):
            text += f", {slot}={getattr(described, slot)!r}"
    return text


def _describe(value: Any) -> str:
    if isinstance(value, property):
        return "a property"
    if isinstance(value, classmethod | staticmethod) or callable(value):
        return "a method"
    return "a class setting"


def _check_not_async(cls: JobMeta) -> None:
    """Refuse an ``async def`` perform, callback or override of a library method.

    Jobs run in plain threads and processes with no event loop: calling an ``async def``
    only makes a coroutine, so the job would "complete" without running its code.
    """
    names = {"perform"} | {name for names in cls._callbacks.by_kind.values() for name in names}
    for klass in cls.__mro__:
        if klass is object or _is_library(klass):
            continue
        for key, value in vars(klass).items():
            function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
                continue
            overrides = any(key in vars(k) for k in cls.__mro__ if k is not object and _is_library(k))
            if key in names or overrides:
                role = "perform" if key == "perform" else (
                    "a callback" if key in names else "an override of a method rjbatch calls")
                raise TypeError(
                    f"{cls.__name__}.{key} is an 'async def' ({role}): jobs run without an event "
                    f"loop, so its coroutine would never be awaited and its code never run; "
                    f"make it a plain 'def' (it may call asyncio.run(...) itself)")


_placeholders: dict[str, type[Job]] = {}


def placeholder(type_path: str, classes: Any = ()) -> type[Job]:
    """A stand-in class for a stored job whose class cannot be imported here.

    It derives from the nearest ancestor that is known (``BatchJob`` for batch jobs), so
    it can be listed, shown, paused, retried, downloaded or destroyed, but not performed.
    """
    if type_path not in _placeholders:
        name = type_path.rpartition(".")[2] or "UnknownJob"
        from rjbatch.job import Job

        base: type[Job] = Job
        if "BatchJob" in classes:
            import rjbatch.batch  # noqa: F401 - a stored batch job loads as one, whatever was imported
        for ancestor in reversed(list(classes)[:-1]):
            try:
                known = registry.by_name(ancestor)
            except registry.AmbiguousJobClass:  # two loaded classes of that name: no base from it
                continue
            if known is not None and known.__module__.startswith("rjbatch."):
                base = known
                break
        cls = JobMeta(name, (base,), {"__module__": "rjbatch.unresolved"})
        registry.forget(cls)  # a stand-in is found by the path it stands for, not its own
        cls._type_path = type_path  # save it back under the name it was stored with
        _placeholders[type_path] = cast("type[Job]", cls)
    return _placeholders[type_path]
