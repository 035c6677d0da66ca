"""Exceptions raised by rjbatch's public API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class RjbatchError(Exception):
    """Base class of every error rjbatch raises on purpose."""


class ConfigurationError(RjbatchError):
    """The database URL, the job modules or a setting cannot be used."""


class StoreError(RjbatchError):
    """The store cannot be opened or used (unreadable file, unknown scheme, ...)."""


class SingletonTaken(StoreError):
    """Another queued, running or paused job has the same singleton key (the store's
    unique index refused this one: two processes creating a Singleton at once)."""


class JobNotFound(RjbatchError, LookupError):
    """No job with that id exists (for the class that was asked)."""


class InvalidTransition(RjbatchError):
    """An event was fired from a state that does not allow it; nothing was changed."""

    def __init__(self, event: str, state: str, job_class: str = "", detail: str = "") -> None:
        self.event = event
        self.state = state
        where = f" for {job_class}" if job_class else ""
        extra = f": {detail}" if detail else ""
        super().__init__(f"cannot {event} a job in state {state!r}{where}{extra}")


class Errors(dict):
    """Validation messages by field name: ``{"priority": ["must be between 1 and 100"]}``."""

    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def full_messages(self) -> list[str]:
        return [f"{name} {message}" for name, messages in self.items() for message in messages]


class ValidationError(RjbatchError, ValueError):
    """A job (or a value given to one of its fields) is invalid. Names the fields at fault."""

    def __init__(self, errors: Mapping[str, Iterable[str]] | str, model: str = "") -> None:
        if isinstance(errors, str):
            errors = {"base": [errors]}
        self.errors = Errors({name: list(messages) for name, messages in errors.items()})
        prefix = f"{model}: " if model else ""
        super().__init__(prefix + "validation failed: " + "; ".join(self.errors.full_messages()))


class UnknownFieldError(ValidationError, TypeError):
    """A keyword given to a job's constructor names no field: never dropped silently."""

    def __init__(self, model: str, names: Iterable[str]) -> None:
        names = sorted(names)
        super().__init__({name: ["is not a field of " + model] for name in names}, model)


class StoreConnectionLost(StoreError):
    """The connection to the store's server broke during a call: the server restarted or
    went away, or the network failed. The message names the server (its URL without the
    password); the store connects again on its next call."""
