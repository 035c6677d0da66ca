"""What the SQL stores share: the logic that does not depend on the SQL dialect.

Every value reaches SQL as a parameter; the only names in SQL text are the fixed
table and column names below (``JOB_COLUMNS``, ``SLICE_COLUMNS``, ...), checked against
these lists before use. Document paths are parameters too (see ``sqlfilter.Dialect``).

:class:`SQLStore` holds the methods SQLite and PostgreSQL run alike, parameterised by
the placeholder (``?`` or ``%s``), the transaction context manager (``_transaction``),
the statement runner (``_execute``) and a few small value hooks. Each backend keeps
its connections and the methods whose SQL genuinely differs.

Every fixed statement is a named block of a ``.sql`` file, read once at import: the
shared ones in ``sqlbase.sql`` (written with ``?``), each backend's own in
``sqlite.sql`` or ``postgres.sql``; code names them (``self.SQL["find_job"]``). What
code still writes is the SQL that depends on the call: filters and sort keys
(``sqlfilter``), ``SET`` lists and increment expressions, pasted into the files'
``{filter}``/``{assignments}``/... slots.

Both backends give datetimes back as datetimes: timestamp columns are read as aware
UTC, and a document column records where its JSON holds datetimes (``DATETIMES``), so
those come back too, nested ones included.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from importlib import resources
from typing import Any

from rjbatch.errors import SingletonTaken, StoreError
from rjbatch.job.fields import parse_datetime, to_utc
from rjbatch.store.protocol import Doc, Filter, Order, check_field_names
from rjbatch.store.sqlfilter import Dialect, encode_value, order_clause, where_clause

JOB_COLUMNS = {
    "_id": "id", "_type": "type", "state": "state", "sub_state": "sub_state",
    "priority": "priority", "run_at": "run_at", "expires_at": "expires_at",
    "created_at": "created_at", "started_at": "started_at",
    "completed_at": "completed_at", "worker_name": "worker_name", "_singleton": "singleton",
}
COLUMN_FIELDS = {column: name for name, column in JOB_COLUMNS.items()}
SERVER_COLUMNS = ("name", "state", "max_workers", "started_at", "heartbeat_at")
# the timestamp columns of each table: read back as aware UTC datetimes
JOB_TIME_COLUMNS = ("run_at", "expires_at", "created_at", "started_at", "completed_at")
SERVER_TIME_COLUMNS = ("started_at", "heartbeat_at")
SLICE_TIME_COLUMNS = ("started_at",)
SLICE_COLUMNS = ("data", "record_count", "serializer", "state", "processing_record_number")
DIRMON_COLUMNS = {"_id": "id", "name": "name", "pattern": "pattern", "state": "state"}


def read_statements(filename: str, *, placeholder: str = "?") -> dict[str, str]:
    """The named SQL blocks (``-- name: x``) of a ``.sql`` file beside this module.

    Whole-line comments are left out; ``placeholder`` replaces the ``?`` parameters of
    a file written for SQLite (the shared ``sqlbase.sql``) with another backend's.
    """
    text = resources.files("rjbatch.store").joinpath(filename).read_text()
    blocks: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"--\s*name:\s*(\w+)", line)
        if match:
            name = match.group(1)
            blocks[name] = ""
        elif name and not line.lstrip().startswith("--"):
            blocks[name] += line + "\n"
    blocks = {key: block.strip() + "\n" for key, block in blocks.items()}
    if placeholder != "?":
        blocks = {key: block.replace("?", placeholder) for key, block in blocks.items()}
    return blocks


# -- datetimes inside JSON documents -------------------------------------------------------
# JSON has no datetime, so a document column keeps a datetime as its ISO text (what filters
# and sorts compare). Where a document held datetimes is recorded beside them, under this
# key, so a read gives back datetimes, not text: ``{"throttled_at": 1, "failed_at_list":
# {"0": 1, "1": 1}}`` (1: this value; an object: these keys or list indexes inside it;
# null: nothing). No field of a record can have this name (names starting with "_" are
# not stored as fields).
#
# Only text in the stored form (STORED_DATETIME) at a recorded place is read as a datetime,
# so an entry left from an earlier value of a field harms nothing, unless the new value
# holds such text: an update writes the entries of the fields it sets that hold datetimes
# or such text (null for the latter), and leaves the others alone (no extra work on the
# common update of numbers and states).
DATETIMES = "_datetimes"
STORED_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")  # format_datetime's


_SCALARS = frozenset({int, float, bool, type(None)})


def _shape(value: Any) -> tuple[Any, bool]:
    """Where ``value`` holds datetimes (1: it is one; a dict of keys or list indexes to
    their shapes; None: nowhere), and whether it holds text that reads as one."""
    kind = type(value)
    if kind in _SCALARS:  # the common fields first: no datetime, no text
        return None, False
    if kind is str:  # only format_datetime's 24 characters can read as one
        return None, len(value) == 24 and STORED_DATETIME.fullmatch(value) is not None
    if isinstance(value, datetime):
        return 1, False
    if isinstance(value, str):
        return None, STORED_DATETIME.fullmatch(value) is not None
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None, False
    shape: dict[str, Any] = {}
    lookalike = False
    for key, item in items:
        inner, text = _shape(item)
        if inner is not None:
            shape[str(key)] = inner
        lookalike = lookalike or text
    return shape or None, lookalike


def datetime_shapes(fields: Doc) -> dict[str, Any]:
    """The entries an update writes: the shape of each field holding datetimes, and null
    for each field holding text that reads as one (an older entry must not apply to it)."""
    entries: dict[str, Any] = {}
    for name, value in fields.items():
        shape, lookalike = _shape(value)
        if shape is not None or lookalike:
            entries[name] = shape
    return entries


def with_datetimes(fields: Doc) -> Doc:
    """A document as stored whole: its fields, and where they hold datetimes (if they do)."""
    shapes = {name: shape for name, shape in datetime_shapes(fields).items() if shape is not None}
    return {**fields, DATETIMES: shapes} if shapes else fields


def _restore(value: Any, shape: Any) -> Any:
    if shape == 1:
        if isinstance(value, str) and STORED_DATETIME.fullmatch(value):
            return parse_datetime(value)
        return value
    if isinstance(shape, dict):
        if isinstance(value, dict):
            for key, inner in shape.items():
                if key in value:
                    value[key] = _restore(value[key], inner)
        elif isinstance(value, list):
            for key, inner in shape.items():
                index = int(key)
                if index < len(value):
                    value[index] = _restore(value[index], inner)
    return value


def restore_datetimes(doc: Doc) -> Doc:
    """A stored document with its datetimes back (and the record of where they were gone)."""
    shapes = doc.pop(DATETIMES, None)
    if shapes:
        _restore(doc, shapes)
    return doc


def column_datetime(value: Any) -> datetime | None:
    """A timestamp column's value (text in SQLite, a datetime in PostgreSQL) as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return parse_datetime(value)
    return to_utc(value)


SHARED_SQL = read_statements("sqlbase.sql")


class SQLStore:
    """The dialect-independent part of the SQL implementations of the store protocol.

    Its statements are ``SQL`` (``sqlbase.sql``'s, then the backend's own ``.sql`` file's,
    which win on a shared name), each backend loading them once at import.
    """

    # set by each backend
    SQL: dict[str, str] = SHARED_SQL  # the named statements, read once at import
    _p: str = "?"  # the parameter placeholder
    _no_limit: Any = None  # the LIMIT parameter that means "no limit"
    _integrity_error: type[Exception] = Exception  # a failed insert of a job
    _unique_violation: type[Exception] = Exception  # a second dirmon entry on one pattern
    JOBS: Dialect
    SERVERS: Dialect
    DIRMON: Dialect

    # -- backend hooks ------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """A transaction on this thread's connection (the connection, to run statements on)."""
        raise NotImplementedError

    @staticmethod
    def _assignments(columns: dict[str, Any], rest: Doc) -> tuple[str, list[Any]]:
        """``SET`` text and parameters for real columns and document fields."""
        raise NotImplementedError

    @staticmethod
    def _dumps(value: Any) -> str:
        """JSON text the backend's document column takes."""
        raise NotImplementedError

    @staticmethod
    def _column_value(value: Any) -> Any:
        """A parameter compared with or written to a real column."""
        return encode_value(value)

    @staticmethod
    def _classes_value(classes: Any) -> Any:
        """The ``classes`` column's value for a job's class names."""
        raise NotImplementedError

    @staticmethod
    def _load_doc(value: Any) -> Doc:
        """A row's ``doc`` column as a document."""
        raise NotImplementedError

    @staticmethod
    def _load_json(value: Any) -> Any:
        """A JSON column's value (an input slice's ``exception``) as Python values."""
        raise NotImplementedError

    def _doc_text(self, fields: Doc) -> str:
        """A document column's text: the fields, and where they hold datetimes."""
        return self._dumps(with_datetimes(fields))

    def _document(self, value: Any) -> Doc:
        """A row's ``doc`` column as a document, its datetimes restored."""
        return restore_datetimes(self._load_doc(value))

    # -- slices -------------------------------------------------------------------------
    @staticmethod
    def _output_rows(job_id: str, slice_id: int, outputs: dict[str, Doc]) -> list[tuple[Any, ...]]:
        return [(job_id, name, slice_id, out["first_record_number"], out["record_count"],
                 out["serializer"], out["data"]) for name, out in outputs.items()]

    def _slice(self, row: Any) -> Doc:
        """An input slice row as a slice: ``exception`` a dict, ``started_at`` a datetime."""
        piece = dict(row)
        if piece.get("exception"):
            piece["exception"] = self._load_json(piece["exception"])
        piece["started_at"] = column_datetime(piece.get("started_at"))
        return piece

    def output_slices_for(self, job_id: str, slice_id: int) -> dict[str, Doc]:
        rows = self._execute(self.SQL["output_slices_for"], (job_id, slice_id)).fetchall()
        return {row["category"]: dict(row) for row in rows}

    def update_input_slice(self, job_id: str, category: str, slice_id: int, changes: Doc) -> bool:
        unknown = set(changes) - set(SLICE_COLUMNS)
        if unknown:
            raise StoreError(f"cannot change slice fields {sorted(unknown)}")
        if not changes:  # no UPDATE with nothing to set: does the slice exist?
            return any(s["id"] == slice_id
                       for s in self.read_input_slices(job_id, category, after_id=slice_id - 1, limit=1))
        p = self._p
        parts = ", ".join(f"{name} = {p}" for name in changes)  # names: SLICE_COLUMNS only
        return self._execute(
            self.SQL["update_input_slice"].format(assignments=parts),
            (*changes.values(), job_id, category, slice_id),
        ).rowcount > 0

    def delete_slices(self, job_id: str, category: str | None = None, kind: str | None = None,
                      from_id: int = 0) -> int:
        tables = {"input": ["input_slices"], "output": ["output_slices"]}.get(
            kind or "", ["input_slices", "output_slices"])
        params: tuple[Any, ...] = (job_id, from_id)
        if category is None:
            sql = self.SQL["delete_slices"]
        else:
            sql, params = self.SQL["delete_category_slices"], (*params, category)
        deleted = 0
        with self._transaction() as connection:
            for table in tables:
                deleted += connection.execute(sql.format(table=table), params).rowcount
        return int(deleted)

    def fail_slice(
        self, job_id: str, category: str, slice_id: int, processing_record_number: int,
        exception: Doc, outputs: dict[str, Doc], worker_name: str | None = None,
    ) -> bool:
        sql = self.SQL
        with self._transaction() as connection:
            failed = connection.execute(sql["fail_input_slice"], self._fail_params(
                job_id, category, slice_id, processing_record_number, exception, worker_name)).rowcount
            rows = self._output_rows(job_id, slice_id, outputs) if failed else []
            if rows:
                with contextlib.closing(connection.cursor()) as cursor:
                    cursor.executemany(sql["upsert_output_slice"], rows)
        return bool(failed)

    def _fail_params(self, job_id: str, category: str, slice_id: int, processing_record_number: int,
                     exception: Doc, worker_name: str | None) -> list[Any]:
        """The parameters of ``fail_input_slice`` (the fence, ``worker_name``, written twice)."""
        return [processing_record_number, self._dumps(exception), job_id, category, slice_id,
                worker_name, worker_name]

    def retry_failed_slices(self, job_id: str, category: str) -> int:
        return int(self._execute(self.SQL["retry_failed_slices"], (job_id, category)).rowcount)

    def count_slices(self, job_id: str, category: str) -> dict[str, tuple[int, int]]:
        rows = self._execute(self.SQL["count_slices"], (job_id, category)).fetchall()
        return {row["state"]: (row["slices"], int(row["records"])) for row in rows}

    def count_output_slices(self, job_id: str, category: str) -> tuple[int, int]:
        row = self._execute(self.SQL["count_output_slices"], (job_id, category)).fetchone()
        return row["slices"], int(row["records"])

    def read_input_slices(
        self, job_id: str, category: str, state: str | None = None, after_id: int = 0,
        limit: int = 100,
    ) -> list[Doc]:
        if state:
            rows = self._execute(self.SQL["read_input_slices_in_state"],
                                 (job_id, category, after_id, state, limit)).fetchall()
        else:
            rows = self._execute(self.SQL["read_input_slices"], (job_id, category, after_id, limit)).fetchall()
        return [self._slice(row) for row in rows]

    def read_output_slices(
        self, job_id: str, category: str, after_id: int = 0, limit: int = 100
    ) -> list[Doc]:
        rows = self._execute(self.SQL["read_output_slices"], (job_id, category, after_id, limit)).fetchall()
        return [dict(row) for row in rows]

    # -- dirmon entries -----------------------------------------------------------------
    def save_dirmon_entry(self, doc: Doc) -> None:
        rest = {k: v for k, v in doc.items() if k not in DIRMON_COLUMNS}
        try:
            self._execute(self.SQL["save_dirmon_entry"],
                          (doc["_id"], doc["name"], doc["pattern"], doc["state"], self._doc_text(rest)))
        except self._unique_violation:
            raise StoreError(f"another dirmon entry already watches {doc['pattern']!r}") from None

    def find_dirmon_entries(self, filter: Filter | None = None) -> list[Doc]:
        condition, params = where_clause(filter, self.DIRMON)
        rows = self._execute(self.SQL["find_dirmon_entries"].format(filter=condition), params).fetchall()
        docs = []
        for row in rows:
            doc = self._document(row["doc"])
            doc.update(_id=row["id"], name=row["name"], pattern=row["pattern"], state=row["state"])
            docs.append(doc)
        return docs

    def delete_dirmon_entry(self, entry_id: str) -> bool:
        return bool(self._execute(self.SQL["delete_dirmon_entry"], (entry_id,)).rowcount > 0)

    # -- servers ------------------------------------------------------------------------
    def _server_row_to_doc(self, row: Any) -> Doc:
        doc: Doc = self._document(row["doc"])
        doc.update({name: row[name] for name in SERVER_COLUMNS})
        for name in SERVER_TIME_COLUMNS:
            doc[name] = column_datetime(doc[name])
        return doc

    def _server_columns(self, doc: Doc) -> tuple[dict[str, Any], Doc]:
        columns = {k: self._column_value(doc[k]) for k in SERVER_COLUMNS if k in doc}
        rest = {k: v for k, v in doc.items() if k not in SERVER_COLUMNS}
        return columns, rest

    def save_server(self, doc: Doc) -> None:
        columns, rest = self._server_columns(doc)
        self._execute(self.SQL["save_server"],
                      [columns.get(name) for name in SERVER_COLUMNS] + [self._doc_text(rest)])

    def find_server(self, name: str) -> Doc | None:
        row = self._execute(self.SQL["find_server"], (name,)).fetchone()
        return self._server_row_to_doc(row) if row else None

    def find_servers(self) -> list[Doc]:
        rows = self._execute(self.SQL["find_servers"]).fetchall()
        return [self._server_row_to_doc(row) for row in rows]

    def update_server(self, name: str, changes: Doc, where: Filter | None = None) -> bool:
        if not changes:
            return self.find_server(name) is not None
        assignments, params = self._assignments(*self._server_columns(changes))
        condition, condition_params = where_clause(where, self.SERVERS)
        cursor = self._execute(
            self.SQL["update_server"].format(assignments=assignments, filter=condition),
            params + [name] + condition_params,
        )
        return bool(cursor.rowcount > 0)

    def delete_server(self, name: str) -> bool:
        return bool(self._execute(self.SQL["delete_server"], (name,)).rowcount > 0)

    # -- documents <-> rows -------------------------------------------------------------
    def _split(self, doc: Doc) -> tuple[dict[str, Any], Doc]:
        check_field_names(doc)
        columns: dict[str, Any] = {}
        rest: Doc = {}
        for name, value in doc.items():
            if name in JOB_COLUMNS:
                columns[JOB_COLUMNS[name]] = self._column_value(value)
            elif name == "_classes":
                columns["classes"] = self._classes_value(value)
            elif not name.startswith("_"):
                rest[name] = value
        return columns, rest

    def _set_clause(self, changes: Doc) -> tuple[str, list[Any]]:
        return self._assignments(*self._split(changes))

    def _insert_mark(self, column: str) -> str:
        """The placeholder for one column of an inserted job."""
        return self._p

    def _row_to_doc(self, row: Any) -> Doc:
        """A jobs row as a job document: columns as fields, timestamps as datetimes."""
        doc = self._document(row["doc"])
        for column, name in COLUMN_FIELDS.items():
            doc[name] = row[column]
        for name in JOB_TIME_COLUMNS:
            doc[name] = column_datetime(doc[name])
        doc["_classes"] = self._class_names(row["classes"])
        return doc

    @staticmethod
    def _class_names(value: Any) -> list[str]:
        """The ``classes`` column's value as class names."""
        raise NotImplementedError

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, doc: Doc) -> None:
        columns, rest = self._split(doc)
        columns["doc"] = self._doc_text(rest)
        names = ", ".join(columns)  # JOB_COLUMNS' columns, classes and doc only
        marks = ", ".join(self._insert_mark(name) for name in columns)
        try:
            self._execute(self.SQL["insert_job"].format(columns=names, marks=marks), list(columns.values()))
        except self._integrity_error as exc:
            self._raise_taken(exc, doc)
            raise StoreError(f"cannot insert job {doc.get('_id')}: {exc}") from None

    def update_job(self, job_id: str, changes: Doc, where: Filter | None = None) -> bool:
        if not changes:
            return self.find_job(job_id) is not None
        assignments, params = self._set_clause(changes)
        condition, condition_params = where_clause(where, self.JOBS)
        try:
            cursor = self._execute(
                self.SQL["update_job"].format(assignments=assignments, filter=condition),
                params + [job_id] + condition_params,
            )
        except self._integrity_error as exc:
            self._raise_taken(exc, {"_id": job_id, **changes})
            raise
        return bool(cursor.rowcount > 0)

    @staticmethod
    def _raise_taken(exc: Exception, doc: Doc) -> None:
        """The singleton index refused the job: ``SingletonTaken``."""
        if "singleton" in str(exc):
            raise SingletonTaken(f"job {doc.get('_id')}: another queued, running or paused job of "
                                 f"{doc.get('_singleton') or doc.get('_type') or 'its class'} exists") from None

    def update_jobs(self, filter: Filter, changes: Doc) -> int:
        assignments, params = self._set_clause(changes)
        condition, condition_params = where_clause(filter, self.JOBS)
        sql = self.SQL["update_jobs"].format(assignments=assignments, filter=condition)
        return int(self._execute(sql, params + condition_params).rowcount)

    def find_job(self, job_id: str) -> Doc | None:
        row = self._execute(self.SQL["find_job"], (job_id,)).fetchone()
        return self._row_to_doc(row) if row else None

    def find_jobs(
        self, filter: Filter, order: Order = (), limit: int | None = None, skip: int = 0
    ) -> list[Doc]:
        jobs = self.JOBS
        condition, params = where_clause(filter, jobs)
        ordering, order_params = order_clause(order or [("_id", 1)], jobs)
        params += order_params
        if limit is not None or skip:
            sql = self.SQL["find_jobs_page"].format(filter=condition, order=ordering)
            params += [self._no_limit if limit is None else limit, skip]
        else:
            sql = self.SQL["find_jobs"].format(filter=condition, order=ordering)
        return [self._row_to_doc(row) for row in self._execute(sql, params).fetchall()]

    def iter_jobs(self, filter: Filter, order: Order = (), batch_size: int = 500) -> Iterator[Doc]:
        skip = 0
        order = list(order or []) + [("_id", 1)]
        while True:
            docs = self.find_jobs(filter, order, limit=batch_size, skip=skip)
            yield from docs
            if len(docs) < batch_size:
                return
            skip += batch_size

    def count_jobs(self, filter: Filter) -> int:
        condition, params = where_clause(filter, self.JOBS)
        return int(self._execute(self.SQL["count_jobs"].format(filter=condition), params).fetchone()["n"])

    def count_jobs_by(self, field: str, filter: Filter) -> dict[Any, int]:
        params: list[Any] = []
        expr = self.JOBS.expr(field, params)
        condition, condition_params = where_clause(filter, self.JOBS)
        rows = self._execute(self.SQL["count_jobs_by"].format(field=expr, filter=condition),
                             params + condition_params).fetchall()
        return {row["value"]: row["n"] for row in rows}

    def next_run_at(self, now: datetime) -> datetime | None:
        row = self._execute(self.SQL["next_run_at"], (self._column_value(now),)).fetchone()
        return column_datetime(row["run_at"]) if row else None

    def delete_job(self, job_id: str) -> bool:
        return bool(self._execute(self.SQL["delete_job"], (job_id,)).rowcount > 0)

    def delete_jobs(self, filter: Filter) -> int:
        condition, params = where_clause(filter, self.JOBS)
        return int(self._execute(self.SQL["delete_jobs"].format(filter=condition), params).rowcount)
