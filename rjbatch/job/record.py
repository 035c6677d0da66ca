"""A job's record: its typed fields, their values, validation and persistence.

What is stored and how it is read back; the state machine (``lifecycle``), the queries
and the display build on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self

from bson import ObjectId

from rjbatch import clock
from rjbatch.errors import (
    Errors,
    JobNotFound,
    RjbatchError,
    SingletonTaken,
    UnknownFieldError,
    ValidationError,
)
from rjbatch.job import registry, states
from rjbatch.job.callbacks import Callbacks
from rjbatch.job.definition import placeholder
from rjbatch.job.exception import JobException
from rjbatch.job.fields import Field, field, plain

if TYPE_CHECKING:
    from rjbatch.store.protocol import Store

LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "critical")
_PLAIN_TYPES = (str, int, bool)


class JobRecord:
    """The standard fields and what reads, validates and stores them."""

    # -- standard fields ----------------------------------------------------------------
    description = field(str, user_editable=True, copy_on_restart=True)
    priority = field(int, 50, user_editable=True, copy_on_restart=True)
    destroy_on_complete = field(bool, True, copy_on_restart=True)
    run_at = field(datetime, user_editable=True)
    expires_at = field(datetime, copy_on_restart=True)
    log_level = field(str, user_editable=True, copy_on_restart=True, choices=LOG_LEVELS)
    throttle_group = field(str, user_editable=True, copy_on_restart=True)
    state = field(str, states.QUEUED.value, choices=tuple(state.value for state in states.STATES))
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
    singleton_key: ClassVar[str | None] = None

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

    # the instance's internals
    _values: dict[str, Any]  # field values, as set (the stored form is made on save)
    _changed: set[str]  # fields set since the last save (mutable ones are also compared)
    _snapshot: dict[str, Any]  # the mutable fields as last saved, to find changes inside them
    _extra: dict[str, Any]  # stored keys no field of the class declares (shown, kept)
    _new: bool
    _destroyed: bool

    def _reset_internals(self) -> None:
        self._values = {}
        self._changed = set()
        self._snapshot = {}
        self._extra = {}
        self._new = True
        self._destroyed = False
        self.errors = Errors()

    # -- class helpers ------------------------------------------------------------------
    @classmethod
    def _store(cls) -> Store:
        from rjbatch.config import get_store

        return get_store()

    @classmethod
    def field_names(cls) -> list[str]:
        """Every stored field of the class (the standard ones, its plugins' and its own)."""
        return list(cls._fields)

    @classmethod
    def field_definition(cls, name: str) -> Field:
        """How the class declares a field (kind, default, choices...); KeyError if it has none."""
        return cls._fields[name]

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
        return {} if cls._classes == ["Job"] else registry.class_filter(cls)

    @classmethod
    def _stored_name(cls, name: str) -> str:
        return "_id" if name == "id" else name

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Any:
        """The job a stored document describes, as an instance of its own class (a stand-in
        when that class cannot be imported here)."""
        klass = registry.resolve(doc.get("_type", "")) or placeholder(
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

    @property
    def is_destroyed(self) -> bool:
        """Removed from the store (destroyed, or deleted on completion)."""
        return self._destroyed

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
            if self.singleton_key is not None:
                doc["_singleton"] = self.singleton_key
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
                and cls._delete_owned is JobRecord._delete_owned)

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


    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobRecord) and other.id == self.id and type(other) is type(self)

    def __hash__(self) -> int:
        return hash(self.id)


def singleton_message(class_name: str) -> str:
    """Why a second active instance of a ``Singleton`` class is refused."""
    return f"Another instance of {class_name} is already running, queued, or paused"


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
