"""The job: typed fields, a state machine, callbacks, persistence and queries.

One concept per method group: class construction (``JobMeta``), values and
persistence, events, running (``perform_now`` and the worker's entry point), queries,
and display (``status``).
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from datetime import date, datetime, timedelta
from typing import Any, ClassVar, NoReturn, Self

from bson import ObjectId

from rjbatch import clock, registry
from rjbatch.callbacks import Callbacks
from rjbatch.errors import (
    Errors,
    InvalidTransition,
    JobNotFound,
    RjbatchError,
    SingletonTaken,
    UnknownFieldError,
    ValidationError,
)
from rjbatch.fields import Field, computed, field, plain
from rjbatch.job import states
from rjbatch.job.exception import JobException
from rjbatch.query import Query

INLINE_WORKER = "inline:0:0"
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "critical")

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
    "may", "perform", "perform_now", "throttled", "validate", "is_valid", "logger",
    "duration", "seconds", "is_queued", "is_running", "is_completed", "is_failed",
    "is_aborted", "is_paused", "is_scheduled", "is_expired", "is_pausable",
    # class settings
    "collect_output", "pausable", "throttle_running_jobs", "slice_size",
    "collect_nil_output", "slices_per_claim",
    # batch jobs
    "input", "output", "upload", "download", "upload_query", "upload_mongo_query",
    "upload_integer_range", "upload_integer_range_in_reverse_order", "sliced_input",
    "sliced_output", "input_category", "output_category", "configure_categories",
    "update_category", "statistics_inc", "current_record_number", "sub_state", "record_count",
})
_MUTABLE_KINDS = (dict, list, object, None)
_PLAIN_TYPES = (str, int, bool)


class JobMeta(type):
    """Builds each job class's field table, callback table and registry entry."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kw: Any):
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
            if standard is not None:
                if not _same_but_default(value, standard):
                    raise TypeError(
                        f"{where}: a field cannot be named {key!r}: that is the standard field "
                        f"{owner.__name__}.{key} ({_options(standard)}), which the job model uses, "
                        f"declared again with other options ({_options(value)}); to give it "
                        f"another default, assign the value instead: {key} = ...")
            elif owner is not None:
                what = _describe(vars(owner).get(key))
                raise TypeError(f"{where}: a field cannot be named {key!r}: that name is "
                                f"{owner.__name__}.{key}, {what} the job model uses")
            elif key in RESERVED:
                raise TypeError(f"{where}: a field cannot be named {key!r}: "
                                "that name is part of the job API")


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


def _check_not_async(cls: type) -> None:
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


class Job(metaclass=JobMeta):
    """A durable unit of work. Subclass it and write ``perform``."""

    # -- class-level settings (not stored) ----------------------------------------------
    collect_output: ClassVar[bool] = False
    pausable: ClassVar[bool] = False
    throttle_running_jobs: ClassVar[int | None] = None

    # -- standard fields ----------------------------------------------------------------
    description = field(str, user_editable=True, copy_on_restart=True)
    priority = field(int, 50, user_editable=True, copy_on_restart=True)
    destroy_on_complete = field(bool, True, copy_on_restart=True)
    run_at = field(datetime, user_editable=True)
    expires_at = field(datetime, copy_on_restart=True)
    log_level = field(str, user_editable=True, copy_on_restart=True, choices=LOG_LEVELS)
    throttle_group = field(str, user_editable=True, copy_on_restart=True)
    state = field(str, states.QUEUED, choices=states.STATES)
    created_at = field(datetime, lambda: clock.now())
    started_at = field(datetime)
    completed_at = field(datetime)
    failure_count = field(int, 0)
    worker_name = field(str)
    percent_complete = field(int, 0)
    exception = field(JobException)
    result = field(dict)
    throttled_by = field(str)
    throttled_at = field(datetime)

    _fields: ClassVar[dict[str, Field]]
    _callbacks: ClassVar[Callbacks]
    _mutable_fields: ClassVar[tuple[str, ...]]
    _dynamic_fields: ClassVar[tuple[str, ...]]
    _type_path: ClassVar[str]
    _classes: ClassVar[list[str]]
    _perform_chain: ClassVar[bool]
    #: a Singleton class's key: the store allows one queued, running or paused job per key
    _singleton: ClassVar[str | None] = None

    def __init__(self, **values: Any) -> None:
        self._reset_internals()
        self.id = str(values.pop("id", None) or ObjectId())
        unknown = set(values) - set(self._fields)
        if unknown:
            raise UnknownFieldError(type(self).__name__, unknown)
        fields = self._fields
        for name, described in fields.items():
            if name not in values and not described.has_dynamic_default:
                self._values[name] = described.coerce(described.static_default())
        for name, value in values.items():
            setattr(self, name, value)
        for name in self._dynamic_fields:
            if name not in values:
                setattr(self, name, fields[name].dynamic_default(self))
        self._changed = set(fields)
        self._callbacks.run(self, "after_initialize")

    def _reset_internals(self) -> None:
        self._values: dict[str, Any] = {}
        self._changed: set[str] = set()
        self._snapshot: dict[str, Any] = {}
        self._extra: dict[str, Any] = {}
        self._new = True
        self._destroyed = False
        self.errors = Errors()

    def perform(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define perform()")

    # -- class helpers ------------------------------------------------------------------
    @classmethod
    def _store(cls):
        from rjbatch.config import get_store

        return get_store()

    @classmethod
    def user_editable_fields(cls) -> list[str]:
        """Fields a person may change in Mission Control and in dirmon entries."""
        return [name for name, f in cls._fields.items() if f.user_editable]

    @classmethod
    def copy_on_restart_fields(cls) -> list[str]:
        """Fields the Restart and Cron plugins copy to the next instance."""
        return [name for name, f in cls._fields.items() if f.copy_on_restart]

    @classmethod
    def _class_filter(cls) -> dict[str, Any]:
        return {} if cls is Job else registry.class_filter(cls)

    @classmethod
    def _stored_name(cls, name: str) -> str:
        return "_id" if name == "id" else name

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Job:
        klass = registry.resolve(doc.get("_type", "")) or _placeholder(
            doc.get("_type", "?"), doc.get("_classes", ()))
        job = klass.__new__(klass)
        job._reset_internals()
        job._load(doc)
        klass._callbacks.run(job, "after_initialize")
        return job

    def _load(self, doc: dict[str, Any]) -> None:
        self.id = str(doc["_id"])
        values = {}
        for name, described in self._fields.items():
            if name in doc:
                value = doc[name]
                # the common cases need no conversion: None, and str/int/bool as stored
                if value is None or (type(value) is described.kind and type(value) in _PLAIN_TYPES):
                    values[name] = value
                else:
                    values[name] = described.from_storage(value)
            elif described.has_dynamic_default:
                values[name] = None
            else:
                values[name] = described.coerce(described.static_default())
        self._values = values
        self._extra = {k: v for k, v in doc.items() if k not in self._fields and not k.startswith("_")}
        self._changed = set()
        self._new = False
        self._take_snapshot()

    def _take_snapshot(self) -> None:
        self._snapshot = {name: plain(self._values.get(name)) for name in self._mutable_fields}

    # -- persistence --------------------------------------------------------------------
    @classmethod
    def create(cls, **values: Any) -> Self:
        """Build, validate and enqueue a job; raises ValidationError."""
        job = cls(**values)
        job.save()
        return job

    @property
    def is_new_record(self) -> bool:
        return self._new

    @property
    def is_persisted(self) -> bool:
        return not self._new and not self._destroyed

    def changed_fields(self) -> set[str]:
        changed = set(self._changed)
        for name in self._mutable_fields:
            if name not in changed and plain(self._values.get(name)) != self._snapshot.get(name):
                changed.add(name)
        return changed

    def to_doc(self, names: set[str] | None = None) -> dict[str, Any]:
        """The stored form of the job (or of some of its fields)."""
        fields = self._fields
        selected = fields if names is None else names
        doc = {name: fields[name].to_storage(self._values.get(name)) for name in selected}
        if names is None:
            doc.update({"_id": self.id, "_type": self._type_path, "_classes": self._classes})
            if self._singleton is not None:
                doc["_singleton"] = self._singleton
        return doc

    def save(self, validate: bool = True) -> Self:
        """Validate and store: insert a new job, or write only the changed fields."""
        self._save(validate)
        return self

    def _save(self, validate: bool = True, where: dict[str, Any] | None = None) -> bool:
        if self._destroyed:
            raise RjbatchError(f"{type(self).__name__} {self.id} was destroyed and cannot be saved")
        if validate:
            self._validate_or_raise()
        callbacks = self._callbacks
        callbacks.run(self, "before_save")
        if self._new:
            callbacks.run(self, "before_create")
            try:
                self._store().insert_job(self.to_doc())
            except SingletonTaken:
                self._refuse_singleton()
            self._new = False
            self._changed = set()
            self._take_snapshot()
            callbacks.run(self, "after_create")
        else:
            changed = self.changed_fields()
            if changed or where:
                try:
                    stored = self._store().update_job(self.id, self.to_doc(changed), where)
                except SingletonTaken:
                    self._refuse_singleton()
                if not stored:
                    if where is not None:
                        return False
                    raise JobNotFound(f"{type(self).__name__} {self.id} no longer exists")
                self._changed = set()
                self._take_snapshot()
        callbacks.run(self, "after_save")
        return True

    def _refuse_singleton(self) -> NoReturn:
        """The store's singleton index refused this job (another was saved first)."""
        from rjbatch.plugins.singleton import singleton_message

        raise ValidationError({"state": [singleton_message(type(self).__name__)]}, type(self).__name__)

    def update(self, **values: Any) -> Self:
        """Set fields and save, validating."""
        unknown = set(values) - set(self._fields)
        if unknown:
            raise UnknownFieldError(type(self).__name__, unknown)
        for name, value in values.items():
            setattr(self, name, value)
        return self.save()

    def update_attribute(self, name: str, value: Any) -> Self:
        """Set and store one field, skipping validation."""
        if name not in self._fields:
            raise UnknownFieldError(type(self).__name__, [name])
        setattr(self, name, value)
        if self._new:
            return self.save(validate=False)
        if not self._store().update_job(self.id, self.to_doc({name})):
            raise JobNotFound(f"{type(self).__name__} {self.id} no longer exists")
        self._changed.discard(name)
        self._take_snapshot()
        return self

    def reload(self) -> Self:
        """Re-read from the store. A job gone because it completed reads as completed."""
        doc = self._store().find_job(self.id)
        if doc is None:
            if self.destroy_on_complete and not self._new:
                self._values.update(state=states.COMPLETED, percent_complete=100)
                self._values["completed_at"] = self.completed_at or clock.now()
                self._changed = set()
                return self
            raise JobNotFound(f"{type(self).__name__} {self.id} not found")
        self._load(doc)
        return self

    def delete(self) -> None:
        """Remove from the store without callbacks."""
        if not self._new:
            self._store().delete_job(self.id)
        self._delete_owned()
        self._destroyed = True

    def _delete_owned(self) -> None:
        """Remove what belongs to the job besides its record (a batch job's slices)."""

    @classmethod
    def _plain_destroy(cls) -> bool:
        """No destroy callbacks and nothing owned: deleting the record is all there is."""
        callbacks = cls._callbacks.by_kind
        return (not callbacks["before_destroy"] and not callbacks["after_destroy"]
                and cls._delete_owned is Job._delete_owned)

    def destroy(self) -> None:
        """Remove from the store, running the destroy callbacks."""
        self._callbacks.run(self, "before_destroy")
        self.delete()
        self._callbacks.run(self, "after_destroy")

    # -- validation ---------------------------------------------------------------------
    def validate(self) -> None:
        """Override to add checks: ``self.errors.add("field", "message")``."""

    def is_valid(self) -> bool:
        self.errors = Errors()
        self._callbacks.run(self, "before_validation")
        for name, described in self._fields.items():
            value = self._values.get(name)
            if described.required and (value is None or value == "" or value == [] or value == {}):
                self.errors.add(name, "can't be blank")
            elif described.choices is not None and value is not None and value not in described.choices:
                self.errors.add(name, _choices_message(described.choices))
            if isinstance(value, dict) and _dotted_key(value):
                self.errors.add(name, f"keys may not contain '.' (a dot means nesting): {_dotted_key(value)!r}")
        if self.priority is None or not 1 <= self.priority <= 100:
            self.errors.add("priority", "must be between 1 and 100 (1 is the highest)")
        if self.failure_count is None:
            self.errors.add("failure_count", "can't be blank")
        if self.created_at is None:
            self.errors.add("created_at", "can't be blank")
        self.validate()
        self._callbacks.run(self, "after_validation")
        return not self.errors

    def _validate_or_raise(self) -> None:
        if not self.is_valid():
            raise ValidationError(self.errors, type(self).__name__)

    # -- state --------------------------------------------------------------------------
    is_queued = property(lambda self: self.state == states.QUEUED)
    is_running = property(lambda self: self.state == states.RUNNING)
    is_completed = property(lambda self: self.state == states.COMPLETED)
    is_failed = property(lambda self: self.state == states.FAILED)
    is_aborted = property(lambda self: self.state == states.ABORTED)
    is_paused = property(lambda self: self.state == states.PAUSED)

    @property
    def is_scheduled(self) -> bool:
        """Queued, with a ``run_at`` still in the future."""
        return self.is_queued and self.run_at is not None and self.run_at > clock.now()

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at < clock.now()

    @property
    def is_pausable(self) -> bool:
        return self.state in (states.QUEUED, states.PAUSED) or type(self).pausable

    def _resumes_running(self) -> bool:
        return type(self).pausable and self.started_at is not None

    def may(self, event: str, *args: Any) -> bool:
        """Would this event be allowed now?"""
        return self._target(event, *args) is not None

    def _target(self, event: str, *args: Any) -> str | None:
        target = states.TRANSITIONS[event].get(self.state)
        if target is None:
            return None
        if event == "pause" and self.state == states.RUNNING and not self.is_pausable:
            return None
        if event == "resume" and self._resumes_running():
            return states.RUNNING
        if event == "requeue" and args and args[0] is not None:
            if not states.worker_belongs_to(self.worker_name, args[0]):
                return None
        return target

    def _fire(self, event: str, *args: Any, persist: bool = True, validate: bool = True,
              where: dict[str, Any] | None = None) -> bool:
        """Run one event: guards, befores, the state change, the save, afters.

        On an error before or during the save, the job is left as it was.
        Returns False only when a conditional save (``where``) lost a race.
        """
        target = self._target(event, *args)
        if target is None:
            detail = "" if self.state in states.TRANSITIONS[event] else ""
            raise InvalidTransition(event, self.state, type(self).__name__, detail)
        saved_values, saved_changed = dict(self._values), set(self._changed)
        try:
            self._before_event(event, *args)
            self._callbacks.run(self, f"before_{event}", *args)
            self._values["state"] = target
            self._changed.add("state")
            self._after_transition(event, *args)
            if persist and not self._save(validate, where):
                self.reload()
                return False
        except BaseException:
            self._values, self._changed = saved_values, saved_changed
            raise
        self._callbacks.run(self, f"after_{event}", *args)
        self._after_event(event, *args)
        return True

    def _before_event(self, event: str, *args: Any) -> None:
        """Rocket Job's own before-callbacks, which run before any of the class's."""
        now = clock.now()
        if event == "start":
            self.started_at = now
            if args and args[0]:
                self.worker_name = args[0]
        elif event == "complete":
            self.completed_at = now
            self.worker_name = None
            self.exception = None  # an earlier attempt's failure (Retry) is history, not the state
            if "percent_complete" in self._fields:  # batch jobs count it from their slices
                self.percent_complete = 100
        elif event == "fail":
            error = args[0] if args else None
            worker = args[1] if len(args) > 1 else None
            self.completed_at = now
            self.worker_name = None
            self.failure_count = (self.failure_count or 0) + 1
            if isinstance(error, BaseException):
                self.exception = JobException.from_exception(error, worker)
            elif isinstance(error, JobException):
                self.exception = error
            else:
                self.exception = JobException.from_message(error, worker)
        elif event == "retry":
            self.completed_at = None
            self.exception = None
            self.worker_name = None
        elif event in ("pause", "abort"):
            self.completed_at = now
            self.worker_name = None
        elif event == "resume":
            self.completed_at = None

    def _after_transition(self, event: str, *args: Any) -> None:
        if event == "requeue":
            self.started_at = None
            self.worker_name = None

    def _after_event(self, event: str, *args: Any) -> None:
        """Rocket Job's own after-callbacks, which run after all of the class's."""
        if event == "complete" and self.destroy_on_complete and self.is_persisted:
            if self.__dict__.get("_defer_delete") and self.__dict__.get("_completion_unsaved") \
                    and self._plain_destroy():
                # still stored as running: the worker's next claim deletes it (one lock, not two)
                self._destroyed = True
                return
            self._callbacks.run(self, "before_destroy")
            if not self._store().delete_jobs({"_id": self.id, "state": {"$in": ["running", "completed"]}}):
                self.reload()  # paused or aborted while it ran: keep it
                return
            self._destroyed = True
            self._delete_owned()
            self._callbacks.run(self, "after_destroy")

    def start(self, worker_name: str | None = None) -> None:
        self._fire("start", worker_name)

    def complete(self) -> None:
        self._fire("complete")

    def fail(self, exc_or_message: BaseException | str | None = None, worker_name: str | None = None) -> None:
        self._fire("fail", exc_or_message, worker_name)

    def retry(self) -> None:
        self._fire("retry")

    def pause(self) -> None:
        self._fire("pause")

    def resume(self) -> None:
        self._fire("resume")

    def abort(self) -> None:
        self._fire("abort")

    def requeue(self, worker_name: str | None = None) -> None:
        """Send a running job back to the queue (only if ``worker_name``'s, when given)."""
        self._fire("requeue", worker_name)

    def run_now(self) -> None:
        """A scheduled job runs at the next poll."""
        if self.run_at is not None:
            self.run_at = None
            if not self._new:
                self.update_attribute("run_at", None)

    # -- running ------------------------------------------------------------------------
    @property
    def logger(self) -> logging.LoggerAdapter:
        return logging.LoggerAdapter(
            logging.getLogger(f"rjbatch.job.{type(self).__name__}"), {"job_id": self.id}
        )

    def perform_now(self) -> Any:
        """Run the job here, without a worker, through the same callbacks and events.

        Not saved unless it already was. Returns perform's value; on error the job is
        failed and the exception re-raised.
        """
        self._validate_or_raise()
        if self.may("start"):
            self._fire("start", INLINE_WORKER, persist=self.is_persisted)
        if not self.is_running:
            return None  # a start callback sent it back (a processing window), or failed it
        return self._run(INLINE_WORKER, re_raise=True)

    def _run(self, worker_name: str, re_raise: bool = False) -> Any:
        """Perform a running job and complete it; failures are recorded on the job."""
        if not self.is_running:
            raise InvalidTransition("perform", self.state, type(self).__name__)
        output = None
        fence = self._fence(worker_name)
        try:
            output = self._perform_logged()
            if self.collect_output:
                self.result = output if isinstance(output, dict) else {"result": output}
            if self.may("complete"):
                # a job paused or aborted while it ran keeps that state (Rocket Job wrote
                # over it with "completed"); a job destroyed on completion is not saved
                # first, only deleted if it is still running
                persisted = self.is_persisted
                # with after_complete callbacks the completion is saved first, so they
                # see it stored (a Restart's next instance, a Singleton's check)
                skip_save = self.destroy_on_complete and not self._callbacks.by_kind["after_complete"]
                self.__dict__["_completion_unsaved"] = persisted and skip_save
                if not self._fire("complete", persist=persisted and not skip_save, where=fence):
                    self._log_stale_run(worker_name, "completion")
            elif self.is_persisted and not self._save(where=fence):
                self._log_stale_run(worker_name, "result")
        except Exception as exc:
            self._fail_with(exc, worker_name, where=fence)
            if re_raise:
                raise
        return output

    def _fence(self, worker_name: str | None) -> dict[str, Any] | None:
        """What this run's writes require of the stored job: still running, and held by this
        worker. A run whose job was requeued meanwhile (its worker thought dead) and taken
        by another worker has its late writes refused, so the record holds one run only."""
        if not self.is_persisted:
            return None
        fence: dict[str, Any] = {"state": states.RUNNING}
        if worker_name and self.worker_name == worker_name:
            fence["worker_name"] = worker_name
        return fence

    def _log_stale_run(self, worker_name: str | None, what: str) -> None:
        self.logger.warning("%s of %s refused: it was requeued meanwhile (now %s, held by %s); "
                            "this run's work is dropped", what, worker_name, self.state,
                            self.worker_name or "nobody")

    def _work(self, worker_name: str, context: Any = None) -> bool:
        """A worker's entry point; True when it should look for more work at once."""
        if context is not None and getattr(context, "defer_deletes", False):
            self._defer_delete = True
        self._run(worker_name)
        return True

    def _starts_at_claim(self) -> bool:
        """Does the claim's write (running, worker_name, started_at) make the whole start?

        True for classes with no start callbacks and Rocket Job's plain start: then a
        worker saves one write per job.
        """
        cls = type(self)
        cached = cls.__dict__.get("_plain_start")
        if cached is None:
            cached = (not cls._callbacks.by_kind["before_start"] and not cls._callbacks.by_kind["after_start"]
                      and cls._before_event is Job._before_event and cls._after_transition is Job._after_transition)
            type.__setattr__(cls, "_plain_start", cached)
        return cached

    def throttled(self) -> tuple[str, dict[str, Any]] | None:
        """Whether this job must wait: ``(reason, filter excluding it)`` or None."""
        from rjbatch.job.throttling import first_throttle

        return first_throttle(self)

    def _perform_logged(self) -> Any:
        logger = self.logger
        level = self.log_level
        previous = logger.logger.level
        if level:
            name = {"trace": "DEBUG", "warn": "WARNING", "fatal": "CRITICAL"}.get(level, level.upper())
            logger.logger.setLevel(name)
        started = time.perf_counter()
        try:
            logger.debug("Start perform")
            if self._perform_chain:
                output = self._callbacks.run_chain(self, "perform", self._perform_if_running)
            else:
                output = self.perform()
            logger.info("Completed perform in %.1f ms", (time.perf_counter() - started) * 1000)
            return output
        except Exception:
            logger.error("perform failed after %.1f ms", (time.perf_counter() - started) * 1000,
                         exc_info=True)
            raise
        finally:
            if level:
                logger.logger.setLevel(previous)

    def _perform_if_running(self) -> Any:
        return self.perform() if self.is_running else None

    def _fail_with(self, exc: BaseException, worker_name: str | None,
                   where: dict[str, Any] | None = None) -> None:
        """Record an exception: fail the job if it may fail, else only keep the exception.

        ``where``: the run's fence; a stale run's failure is dropped, not stored.
        """
        if self.is_failed or not self.may("fail"):
            self.exception = JobException.from_exception(exc, worker_name)
        else:
            self._fire("fail", exc, worker_name, persist=False)
        if self.is_persisted and not self._save(validate=False, where=where):
            self.reload()
            self._log_stale_run(worker_name, "failure")

    # -- queries ------------------------------------------------------------------------
    @classmethod
    def query(cls) -> Query[Self]:
        return Query(cls)

    @classmethod
    def where(cls, filter: dict[str, Any] | None = None, /, **equals: Any) -> Query[Self]:
        return Query(cls).where(filter, **equals)

    @classmethod
    def find(cls, job_id: str | ObjectId) -> Self:
        """The job with this id; raises JobNotFound (also for a job of another class)."""
        doc = cls._store().find_job(str(job_id))
        if doc is None or (cls is not Job and not registry.is_kind_of(doc, cls)):
            raise JobNotFound(f"{cls.__name__} {job_id} not found")
        return cls._from_doc(doc)  # type: ignore[return-value]

    @classmethod
    def first(cls) -> Self | None:
        return Query(cls).first()

    @classmethod
    def last(cls) -> Self | None:
        return Query(cls).last()

    @classmethod
    def count(cls) -> int:
        return Query(cls).count()

    @classmethod
    def all(cls) -> list[Self]:
        return Query(cls).all()

    @classmethod
    def delete_all(cls) -> int:
        return Query(cls).delete_all()

    @classmethod
    def destroy_all(cls) -> int:
        return Query(cls).destroy_all()

    @classmethod
    def queued(cls) -> Query[Self]:
        return Query(cls).queued()

    @classmethod
    def running(cls) -> Query[Self]:
        return Query(cls).running()

    @classmethod
    def completed(cls) -> Query[Self]:
        return Query(cls).completed()

    @classmethod
    def failed(cls) -> Query[Self]:
        return Query(cls).failed()

    @classmethod
    def aborted(cls) -> Query[Self]:
        return Query(cls).aborted()

    @classmethod
    def paused(cls) -> Query[Self]:
        return Query(cls).paused()

    @classmethod
    def scheduled(cls) -> Query[Self]:
        return Query(cls).scheduled()

    @classmethod
    def queued_now(cls) -> Query[Self]:
        return Query(cls).queued_now()

    @classmethod
    def counts_by_state(cls) -> dict[str, int]:
        """Jobs per state, plus ``scheduled`` and ``queued_now`` splits of queued."""
        return Query(cls).counts_by_state()

    @classmethod
    def requeue_dead_server(cls, name: str) -> int:
        """Requeue what a dead server (or one dead worker) was running.

        Returns how many jobs and batch slices went back to the queue.
        """
        from rjbatch.batch.sliced import requeue_slices_of

        requeued = requeue_slices_of(cls._store(), name)  # batch work shared by workers
        for job in Job.running().where(worker_name__regex=f"^{re.escape(name)}(:|$)"):
            if job.may("requeue", name):
                shared = getattr(job, "sub_state", None) == "processing"
                job.requeue(name)
                requeued += 0 if shared else 1  # a batch job being processed stays running
        return requeued

    @classmethod
    def pause_all(cls) -> int:
        jobs = list(cls.running()) + list(cls.queued())
        for job in jobs:
            job.pause()
        return len(jobs)

    @classmethod
    def resume_all(cls) -> int:
        jobs = list(cls.paused())
        for job in jobs:
            job.resume()
        return len(jobs)

    # -- display ------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """Run time so far while it runs; once it stopped (completed, failed, aborted,
        paused), the time it ran; 0 before it started (queued, scheduled)."""
        if self.is_running and self.started_at:
            return (clock.now() - self.started_at).total_seconds()
        if self.completed_at and (self.started_at or self.is_completed):
            return max(0.0, (self.completed_at - (self.started_at or self.created_at)).total_seconds())
        return 0.0

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def as_dict(self) -> dict[str, Any]:
        """Every field, as Mission Control shows it, with per-state omissions of Rocket Job."""
        data: dict[str, Any] = {"id": self.id, "class": type(self).__name__}
        data.update({name: self._values.get(name) for name in self._fields})
        data.update(self._extra)
        if not data.get("failure_count"):
            data.pop("failure_count", None)
        state = self.state
        if state == states.QUEUED:
            for name in ("started_at", "completed_at", "result"):
                data.pop(name, None)
        elif state == states.RUNNING:
            data.pop("completed_at", None)
            data.pop("result", None)
        elif state == states.COMPLETED:
            data.pop("percent_complete", None)
        elif state in (states.PAUSED, states.ABORTED, states.FAILED):
            stamp = data.pop("completed_at", None)
            data.pop("result", None)
            data = {f"{state}_at": stamp, **data}
        data["seconds"] = self.seconds
        data["duration"] = seconds_as_duration(self.seconds)
        return {k: v for k, v in data.items() if v is not None}

    def status(self) -> dict[str, Any]:
        """What a person wants to see about the job's progress, as plain strings and numbers."""
        data = self.as_dict()
        data.pop("seconds", None)
        return {k: _display(v) for k, v in data.items()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and type(other) is type(self)

    def __hash__(self) -> int:
        return hash(self.id)


def _choices_message(choices: tuple) -> str:
    numbers = [c for c in choices if isinstance(c, int) and not isinstance(c, bool)]
    if len(numbers) == len(choices) > 5 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"must be between {numbers[0]} and {numbers[-1]}"
    return "must be one of " + ", ".join(map(str, choices))


def _dotted_key(value: Any) -> str | None:
    """A key with a dot: dotted paths mean nesting in every store (a ``$`` is kept: the
    MongoDB store escapes it)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            key = str(key)
            if "." in key:
                return key
            found = _dotted_key(inner)
            if found:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _dotted_key(inner)
            if found:
                return found
    return None


def _display(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, JobException):
        return value.to_dict()
    if isinstance(value, str | int | float | bool | dict | list) or value is None:
        return value
    return str(value)


def seconds_as_duration(seconds: float) -> str:
    """``1d 2h 3m``, ``2h 3m``, ``3m 4s``, ``4.500s``, ``12.5ms`` (always UTC arithmetic)."""
    if seconds >= 86400:
        days, rest = divmod(int(seconds), 86400)
        return f"{days}d {rest // 3600}h {rest % 3600 // 60}m"
    if seconds >= 3600:
        return f"{int(seconds) // 3600}h {int(seconds) % 3600 // 60}m"
    if seconds >= 60:
        return f"{int(seconds) // 60}m {int(seconds) % 60}s"
    if seconds >= 1:
        return f"{seconds:.3f}s"
    ms = seconds * 1000
    return f"{ms:.3f}ms" if ms < 10 else f"{ms:.1f}ms"


_placeholders: dict[str, type[Job]] = {}


def _placeholder(type_path: str, classes: Any = ()) -> type[Job]:
    """A stand-in class for a stored job whose class cannot be imported here.

    It derives from the nearest ancestor that is known (``BatchJob`` for batch jobs), so
    it can be listed, shown, paused, retried, downloaded or destroyed, but not performed.
    """
    if type_path not in _placeholders:
        name = type_path.rpartition(".")[2] or "UnknownJob"
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
        cls._type_path = type_path  # save it back under the name it was stored with
        registry._by_path.pop(f"rjbatch.unresolved.{name}", None)
        registry._by_name[name] = [c for c in registry._by_name.get(name, []) if c is not cls]
        _placeholders[type_path] = cls
    return _placeholders[type_path]
