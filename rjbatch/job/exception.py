"""The record of an exception kept on a failed job, slice or dirmon entry."""

from __future__ import annotations

import builtins
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any


def class_name_of(exc: BaseException) -> str:
    """``ValueError`` for built-ins, ``package.module.ClassName`` otherwise."""
    kind = type(exc)
    if kind.__module__ == "builtins" and getattr(builtins, kind.__name__, None) is kind:
        return kind.__name__
    return f"{kind.__module__}.{kind.__qualname__}"


def backtrace_of(exc: BaseException) -> list[str]:
    """One ``file:line in function`` string per frame, innermost last; [] if never raised."""
    if exc.__traceback__ is None:
        return []
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)]


@dataclass
class JobException:
    """What went wrong: the exception's class, message and backtrace, and who ran it."""

    class_name: str
    message: str | None = None
    backtrace: list[str] = field(default_factory=list)
    worker_name: str | None = None
    record_number: int | None = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, worker_name: str | None = None, record_number: int | None = None
    ) -> JobException:
        return cls(class_name_of(exc), str(exc), backtrace_of(exc), worker_name, record_number)

    @classmethod
    def from_message(cls, message: str | None, worker_name: str | None = None) -> JobException:
        return cls("rjbatch.JobException", message, [], worker_name)

    @classmethod
    def coerce(cls, value: Any) -> JobException:
        """Field coercion: from a stored dict, an exception, or a message."""
        if isinstance(value, JobException):
            return value
        if isinstance(value, dict):
            return cls(class_name=str(value.get("class_name") or ""), message=value.get("message"),
                       backtrace=list(value.get("backtrace") or []), worker_name=value.get("worker_name"),
                       record_number=value.get("record_number"))
        if isinstance(value, BaseException):
            return cls.from_exception(value)
        if isinstance(value, str):
            return cls.from_message(value)
        raise ValueError(f"expected an exception record, got {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["record_number"] is None:
            del data["record_number"]
        return data

    def __str__(self) -> str:
        return f"{self.class_name}: {self.message}"
