"""Transaction: each perform (or each slice of a batch job) in one database transaction.

The job names the connection: ``transaction_connection()`` returns a DB-API connection,
an SQLAlchemy ``Connection``, ``Session`` or ``Engine``. An exception rolls the work
back; the job (or slice) then fails as usual.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rjbatch.job.callbacks import around_perform, around_slice
from rjbatch.plugins.base import JobMixin


@contextlib.contextmanager
def transaction(connection: Any) -> Iterator[Any]:
    """Commit on success, roll back on error, for the connection kinds Python has."""
    if hasattr(connection, "begin") and hasattr(connection, "dispose"):  # SQLAlchemy Engine
        with connection.begin() as conn:
            yield conn
        return
    if hasattr(connection, "begin") and not hasattr(connection, "cursor"):  # Connection or Session
        if getattr(connection, "in_transaction", lambda: False)():
            with connection.begin_nested():
                yield connection
        else:
            with connection.begin():
                yield connection
        return
    try:  # DB-API 2.0
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


class Transaction(JobMixin):
    """Mixin: define ``transaction_connection()``; ``self.transaction`` is the open one."""

    def transaction_connection(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define transaction_connection()")

    def _in_transaction(self, proceed: Callable[[], Any]) -> None:
        with transaction(self.transaction_connection()) as connection:
            self.transaction = connection
            try:
                proceed()
            finally:
                self.transaction = None

    @around_perform
    def _transaction_per_perform(self, proceed: Callable[[], Any]) -> None:
        if "input_categories" in self.field_names():  # a batch job: one transaction per slice
            proceed()
        else:
            self._in_transaction(proceed)

    @around_slice
    def _transaction_per_slice(self, proceed: Callable[[], Any]) -> None:
        self._in_transaction(proceed)
