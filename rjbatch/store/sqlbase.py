"""What the SQL stores share: the logic that does not depend on the SQL dialect.

Every value reaches SQL as a parameter; the only names in SQL text are the fixed
table and column names below (``JOB_COLUMNS``, ``SLICE_COLUMNS``, ...), checked against
these lists before use. Document paths are parameters too (see ``sqlfilter.Dialect``).

:class:`SQLStore` holds the methods SQLite and PostgreSQL run alike, parameterised by
the placeholder (``?`` or ``%s``), the transaction context manager (``_transaction``),
the statement runner (``_execute``) and a few small value hooks. Each backend keeps
its own SQL, connections and the methods whose SQL genuinely differs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from rjbatch.errors import SingletonTaken, StoreError
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
SLICE_COLUMNS = ("data", "record_count", "serializer", "state", "processing_record_number")
DIRMON_COLUMNS = {"_id": "id", "name": "name", "pattern": "pattern", "state": "state"}


def read_statements(filename: str, *, skip_comments: bool = False) -> dict[str, str]:
    """The named SQL blocks (``-- name: x``) of a ``.sql`` file beside this module."""
    text = resources.files("rjbatch.store").joinpath(filename).read_text()
    blocks: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"--\s*name:\s*(\w+)", line)
        if match:
            name = match.group(1)
            blocks[name] = ""
        elif name and not (skip_comments and line.lstrip().startswith("--")):
            blocks[name] += line + "\n"
    return blocks


class SQLStore:
    """The dialect-independent part of the SQL implementations of the store protocol."""

    # set by each backend
    _p: str = "?"  # the parameter placeholder
    _no_limit: Any = None  # the LIMIT parameter that means "no limit"
    _integrity_error: type[Exception] = Exception  # a failed insert of a job
    _unique_violation: type[Exception] = Exception  # a second dirmon entry on one pattern
    _save_dirmon_sql: str = ""
    JOBS: Dialect
    SERVERS: Dialect
    DIRMON: Dialect

    # -- backend hooks ------------------------------------------------------------------
    def _execute(self, sql: str, params: Any = ()) -> Any:
        raise NotImplementedError

    def _transaction(self) -> Any:
        raise NotImplementedError

    @staticmethod
    def _assignments(columns: dict[str, Any], rest: Doc) -> tuple[str, list[Any]]:
        raise NotImplementedError

    @staticmethod
    def _dumps(value: Any) -> str:
        raise NotImplementedError

    @staticmethod
    def _row_to_doc(row: Any) -> Doc:
        raise NotImplementedError

    _column_value: Callable[[Any], Any] = staticmethod(encode_value)

    @staticmethod
    def _classes_value(classes: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def _load_doc(value: Any) -> Doc:
        """A row's ``doc`` column as a document."""
        raise NotImplementedError

    @staticmethod
    def _plain(row: Any) -> Doc:
        """A row as a plain dict."""
        raise NotImplementedError

    # -- slices -------------------------------------------------------------------------
    @staticmethod
    def _output_rows(job_id: str, slice_id: int, outputs: dict[str, Doc]) -> list[tuple]:
        return [(job_id, name, slice_id, out["first_record_number"], out["record_count"],
                 out["serializer"], out["data"]) for name, out in outputs.items()]

    def output_slices_for(self, job_id: str, slice_id: int) -> dict[str, Doc]:
        p = self._p
        rows = self._execute(f"SELECT * FROM output_slices WHERE job_id = {p} AND id = {p}",
                             (job_id, slice_id)).fetchall()
        return {row["category"]: self._plain(row) for row in rows}

    def update_input_slice(self, job_id: str, category: str, slice_id: int, changes: Doc) -> bool:
        unknown = set(changes) - set(SLICE_COLUMNS)
        if unknown:
            raise StoreError(f"cannot change slice fields {sorted(unknown)}")
        p = self._p
        parts = ", ".join(f"{name} = {p}" for name in changes)
        return self._execute(
            f"UPDATE input_slices SET {parts} WHERE job_id = {p} AND category = {p} AND id = {p}",
            (*changes.values(), job_id, category, slice_id),
        ).rowcount > 0

    def delete_slices(self, job_id: str, category: str | None = None, kind: str | None = None,
                      from_id: int = 0) -> int:
        p = self._p
        tables = {"input": ["input_slices"], "output": ["output_slices"]}.get(
            kind or "", ["input_slices", "output_slices"])
        condition = f"job_id = {p} AND id >= {p}" + ("" if category is None else f" AND category = {p}")
        params = (job_id, from_id) + (() if category is None else (category,))
        deleted = 0
        with self._transaction() as connection:
            for table in tables:
                deleted += connection.execute(f"DELETE FROM {table} WHERE {condition}", params).rowcount
        return deleted

    # -- dirmon entries -----------------------------------------------------------------
    def save_dirmon_entry(self, doc: Doc) -> None:
        rest = {k: v for k, v in doc.items() if k not in DIRMON_COLUMNS}
        try:
            self._execute(self._save_dirmon_sql,
                          (doc["_id"], doc["name"], doc["pattern"], doc["state"], self._dumps(rest)))
        except self._unique_violation:
            raise StoreError(f"another dirmon entry already watches {doc['pattern']!r}") from None

    def find_dirmon_entries(self, filter: Filter | None = None) -> list[Doc]:
        condition, params = where_clause(filter, self.DIRMON)
        rows = self._execute(f"SELECT * FROM dirmon_entries WHERE {condition} ORDER BY name", params).fetchall()
        docs = []
        for row in rows:
            doc = self._load_doc(row["doc"])
            doc.update(_id=row["id"], name=row["name"], pattern=row["pattern"], state=row["state"])
            docs.append(doc)
        return docs

    def delete_dirmon_entry(self, entry_id: str) -> bool:
        return self._execute(f"DELETE FROM dirmon_entries WHERE id = {self._p}", (entry_id,)).rowcount > 0

    # -- servers ------------------------------------------------------------------------
    def _server_row_to_doc(self, row: Any) -> Doc:
        doc: Doc = self._load_doc(row["doc"])
        doc.update({name: row[name] for name in SERVER_COLUMNS})
        return doc

    def _server_columns(self, doc: Doc) -> tuple[dict[str, Any], Doc]:
        columns = {k: self._column_value(doc[k]) for k in SERVER_COLUMNS if k in doc}
        rest = {k: v for k, v in doc.items() if k not in SERVER_COLUMNS}
        return columns, rest

    def find_server(self, name: str) -> Doc | None:
        row = self._execute(f"SELECT * FROM servers WHERE name = {self._p}", (name,)).fetchone()
        return self._server_row_to_doc(row) if row else None

    def find_servers(self) -> list[Doc]:
        rows = self._execute("SELECT * FROM servers ORDER BY name").fetchall()
        return [self._server_row_to_doc(row) for row in rows]

    def update_server(self, name: str, changes: Doc, where: Filter | None = None) -> bool:
        assignments, params = self._assignments(*self._server_columns(changes))
        condition, condition_params = where_clause(where, self.SERVERS)
        cursor = self._execute(
            f"UPDATE servers SET {assignments} WHERE name = {self._p} AND {condition}",
            params + [name] + condition_params,
        )
        return cursor.rowcount > 0

    def delete_server(self, name: str) -> bool:
        return self._execute(f"DELETE FROM servers WHERE name = {self._p}", (name,)).rowcount > 0

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

    # -- jobs ---------------------------------------------------------------------------
    def insert_job(self, doc: Doc) -> None:
        columns, rest = self._split(doc)
        columns["doc"] = self._dumps(rest)
        names = ", ".join(columns)
        marks = ", ".join(self._insert_mark(name) for name in columns)
        try:
            self._execute(f"INSERT INTO jobs ({names}) VALUES ({marks})", list(columns.values()))
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
                f"UPDATE jobs SET {assignments} WHERE id = {self._p} AND {condition}",
                params + [job_id] + condition_params,
            )
        except self._integrity_error as exc:
            self._raise_taken(exc, {"_id": job_id, **changes})
            raise
        return cursor.rowcount > 0

    @staticmethod
    def _raise_taken(exc: Exception, doc: Doc) -> None:
        """The singleton index refused the job: ``SingletonTaken``."""
        if "singleton" in str(exc):
            raise SingletonTaken(f"job {doc.get('_id')}: another queued, running or paused job of "
                                 f"{doc.get('_singleton') or doc.get('_type') or 'its class'} exists") from None

    def update_jobs(self, filter: Filter, changes: Doc) -> int:
        assignments, params = self._set_clause(changes)
        condition, condition_params = where_clause(filter, self.JOBS)
        return self._execute(f"UPDATE jobs SET {assignments} WHERE {condition}", params + condition_params).rowcount

    def find_job(self, job_id: str) -> Doc | None:
        row = self._execute(f"SELECT * FROM jobs WHERE id = {self._p}", (job_id,)).fetchone()
        return self._row_to_doc(row) if row else None

    def find_jobs(
        self, filter: Filter, order: Order = (), limit: int | None = None, skip: int = 0
    ) -> list[Doc]:
        jobs = self.JOBS
        condition, params = where_clause(filter, jobs)
        ordering, order_params = order_clause(order or [("_id", 1)], jobs)
        sql = f"SELECT * FROM jobs WHERE {condition}{ordering}"
        params += order_params
        if limit is not None or skip:
            sql += f" LIMIT {self._p} OFFSET {self._p}"
            params += [self._no_limit if limit is None else limit, skip]
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

    def delete_job(self, job_id: str) -> bool:
        return self._execute(f"DELETE FROM jobs WHERE id = {self._p}", (job_id,)).rowcount > 0

    def delete_jobs(self, filter: Filter) -> int:
        condition, params = where_clause(filter, self.JOBS)
        return self._execute(f"DELETE FROM jobs WHERE {condition}", params).rowcount
