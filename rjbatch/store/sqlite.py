"""The embedded store: one SQLite file, safe for many processes.

WAL journal, a busy timeout, ``BEGIN IMMEDIATE`` for every read-then-write, the job
claim as one ``UPDATE ... RETURNING``. Connections belong to one process and one
thread: a forked child or another thread opens its own on first use, never an
inherited one. The statements live in ``sqlite.sql`` beside this file, and those it
shares with PostgreSQL in ``sqlbase.sql``. Timestamps are ISO 8601 text (UTC,
milliseconds, sortable as text) in the file and aware UTC datetimes out of the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from rjbatch.errors import StoreError
from rjbatch.job.fields import format_datetime
from rjbatch.store.protocol import Doc, Filter
from rjbatch.store.sqlbase import (
    DATETIMES,
    DIRMON_COLUMNS,
    JOB_COLUMNS,
    SERVER_COLUMNS,
    SHARED_SQL,
    SQLStore,
    datetime_shapes,
    read_statements,
)
from rjbatch.store.sqlfilter import Dialect, dumps, where_clause
from rjbatch.store.waiting import wait_for_new_version

_SCHEMA_VERSIONS = ("schema_1", "schema_2", "schema_3", "schema_4", "schema_5")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")  # the PRAGMA's only words

# Characters a JSON escape writes differently: SQLite before 3.45 (Python's own is
# often 3.40) matches a path label with them against a key as escaped text, but creates
# a missing key from the label unescaped, so a path cannot name such a key reliably.
_ESCAPED_IN_JSON = re.compile(r'[\x00-\x1f"\\]')


def _plain_path(parts: Sequence[str]) -> bool:
    """Whether SQLite's own JSON path can name every key of this path exactly."""
    return not any(_ESCAPED_IN_JSON.search(part) for part in parts)


def json_path(parts: Sequence[str]) -> str:
    """Keys as a JSON path (``$."statistics"."O'Brien"``), a parameter of ``json_extract``.

    Only for keys :func:`_plain_path` accepts: inside a quoted label nothing but ``"``
    and escapes is special, so quotes, ``$``, ``%`` and unicode need no escaping there.
    """
    return "$" + "".join(f'."{part}"' for part in parts)


def _doc_path(name: str) -> tuple[str, str, Any]:
    """How a filter or sort reads a dotted name from ``doc``: SQLite's ``json_extract``
    when its path can name the keys, otherwise this store's :func:`_extract`. Regexes
    read through :func:`_extract` always: ``json_extract`` ends a string at a NUL, and
    a regex runs in Python per row anyway."""
    parts = name.split(".")
    if _plain_path(parts):
        return "json_extract(doc, ?)", "rjbatch_extract(doc, ?)", json_path(parts)
    return _exact_path(name)


def _exact_path(name: str) -> tuple[str, str, Any]:
    """A dotted name read by :func:`_extract`: any key, and strings whole past a NUL."""
    return "rjbatch_extract(doc, ?)", "rjbatch_extract(doc, ?)", json.dumps(name.split("."))


JOBS = Dialect(columns=JOB_COLUMNS, doc_path=_doc_path, exact_path=_exact_path)
SERVERS = Dialect(columns={c: c for c in SERVER_COLUMNS}, doc_path=_doc_path, exact_path=_exact_path)
DIRMON = Dialect(columns=DIRMON_COLUMNS, doc_path=_doc_path, exact_path=_exact_path)


def _assignments(columns: dict[str, Any], rest: Doc) -> tuple[str, list[Any]]:
    """``SET`` text for real columns, and ``json_set`` on ``doc`` for every other field.

    The same ``json_set`` writes the entries of the record of where the document holds
    datetimes (``sqlbase.DATETIMES``) that these fields need: one parse of the document.
    """
    parts = [f"{column} = ?" for column in columns]
    params = list(columns.values())
    if not rest:
        return ", ".join(parts), params
    entries = datetime_shapes(rest)
    if _plain_path(list(rest)):
        parts.append("doc = json_set(doc" + ", ?, json(?)" * (len(rest) + len(entries)) + ")")
        for name, value in rest.items():
            params += [json_path([name]), dumps(value)]
        for name, shape in entries.items():
            params += [json_path([DATETIMES, name]), dumps(shape)]
    else:
        parts.append("doc = rjbatch_set(doc, ?, ?)")
        params += [dumps(rest), dumps(entries)]
    return ", ".join(parts), params


# -- the JSON functions SQLite's own cannot be (keys with quotes, backslashes, controls)
_LABEL = re.compile(r'\."([^"]*)"')


def _extract(doc: str | None, path: str) -> Any:
    """``json_extract(doc, path)`` for any keys: ``path`` is a JSON list of them, or a
    path :func:`json_path` wrote.

    Returns what ``json_extract`` returns: SQL values for scalars (booleans as 1 and 0),
    JSON text for objects and arrays, NULL for null or missing; but strings whole.
    """
    parts = json.loads(path) if path.startswith("[") else _LABEL.findall(path)
    node: Any = json.loads(doc) if doc else None
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict | list):
        return dumps(node)
    if isinstance(node, bool):
        return int(node)
    return node


def _set(doc: str, changes: str, entries: str) -> str:
    """Top-level fields set from a JSON object (``json_set`` for any field name), and
    their entries in the record of where the document holds datetimes."""
    stored = json.loads(doc)
    stored.update(json.loads(changes))
    written = json.loads(entries)
    if written:
        stored[DATETIMES] = {**(stored.get(DATETIMES) or {}), **written}
    return dumps(stored)


def _increment(doc: str, increments: str) -> str:
    """``[[keys, amount], ...]`` added as the ``json_set`` increments do: missing objects
    are created, a missing or non-number leaf counts as 0, a non-object on the way
    leaves that increment out."""
    stored = json.loads(doc)
    for parts, amount in json.loads(increments):
        node = stored
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                break
        else:
            leaf = node.get(parts[-1])
            number = leaf if isinstance(leaf, int | float) and not isinstance(leaf, bool) else 0
            node[parts[-1]] = number + amount
    return dumps(stored)


# every statement this store runs: the shared ones, then sqlite.sql's own (read once)
SQL = {**SHARED_SQL, **read_statements("sqlite.sql")}


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _regexp(pattern: str, value: Any) -> bool:
    return value is not None and _compiled(pattern).search(str(value)) is not None


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite:///:memory:``."""
    if not url.startswith("sqlite://"):
        raise StoreError(f"not an SQLite URL: {url}")
    path = url[len("sqlite://"):]
    if path.startswith("/"):
        path = path[1:]
    path = path.split("?", 1)[0]
    if not path:
        raise StoreError(f"no file in SQLite URL {url!r} (try sqlite:///rjbatch.db)")
    return path


def _join_classes(classes: Sequence[str]) -> str:
    return "|" + "|".join(classes) + "|"


class SQLiteStore(SQLStore):
    """The SQLite implementation of :class:`rjbatch.store.protocol.Store`."""

    _p = "?"
    _no_limit = -1
    _integrity_error = sqlite3.IntegrityError
    _unique_violation = sqlite3.IntegrityError
    SQL = SQL
    JOBS = JOBS
    SERVERS = SERVERS
    DIRMON = DIRMON
    _assignments = staticmethod(_assignments)
    _dumps = staticmethod(dumps)
    _classes_value = staticmethod(_join_classes)

    @staticmethod
    def _load_doc(value: Any) -> Doc:
        doc: Doc = json.loads(value)
        return doc

    @staticmethod
    def _load_json(value: Any) -> Any:
        return json.loads(value)

    def __init__(self, url: str, *, busy_timeout: float = 30.0, synchronous: str = "NORMAL") -> None:
        if str(synchronous).upper() not in _SYNCHRONOUS:
            raise StoreError(f"unknown SQLite synchronous mode {synchronous!r} ({', '.join(_SYNCHRONOUS)})")
        self.url = url
        self.path = path_from_url(url)
        self.memory = self.path == ":memory:"
        self.busy_timeout = busy_timeout
        self.synchronous = str(synchronous).upper()  # one of _SYNCHRONOUS: safe in the PRAGMA
        self.change_poll_seconds = 0.002
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None  # :memory: has one connection
        self._lock = threading.RLock()
        self._migrated = False
        self._connection()  # fail now, with the path, if the file cannot be used

    # -- connections --------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        if self.memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.connection = self._open()
            local.pid = os.getpid()
        return local.connection

    def _open(self) -> sqlite3.Connection:
        if not self.memory:
            target = Path(self.path)
            directory = target.resolve().parent
            if not directory.is_dir():
                raise StoreError(f"cannot open database {self.path}: folder {directory} does not exist")
            if target.is_dir():
                raise StoreError(f"cannot open database {self.path}: it is a folder, not a database file")
        try:
            # busy_timeout 0: SQLite's own handler sleeps at least 1 ms per collision;
            # _retry waits tens of microseconds instead (see _busy_retry)
            connection = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False,
            )
            if not self.memory:
                self._busy_retry(lambda: connection.execute(SQL["use_wal"]))
            # the PRAGMA takes no parameter; self.synchronous is one of _SYNCHRONOUS
            connection.execute(SQL["set_synchronous"].format(mode=self.synchronous))
            connection.create_function("regexp", 2, _regexp, deterministic=True)
            connection.create_function("rjbatch_extract", 2, _extract, deterministic=True)
            connection.create_function("rjbatch_set", 3, _set, deterministic=True)
            connection.create_function("rjbatch_increment", 2, _increment, deterministic=True)
            connection.row_factory = sqlite3.Row
            self._migrate(connection)
        except sqlite3.DatabaseError as exc:
            hint = ""
            if "unable to open" in str(exc) or "readonly" in str(exc):
                hint = " (check that the file and its folder are readable and writable)"
            raise StoreError(f"cannot use database {self.path}: {exc}{hint}") from None
        return connection

    def _migrate(self, connection: sqlite3.Connection) -> None:
        if self._migrated and not self.memory:
            return
        current = connection.execute(SQL["schema_version"]).fetchone()[0]
        if current < len(_SCHEMA_VERSIONS):
            self._busy_retry(lambda: connection.execute(SQL["begin_write"]))
            try:
                current = connection.execute(SQL["schema_version"]).fetchone()[0]
                for version in range(current, len(_SCHEMA_VERSIONS)):
                    # one statement at a time: executescript would COMMIT first
                    for statement in SQL[_SCHEMA_VERSIONS[version]].split(";\n"):
                        if statement.strip():
                            connection.execute(statement)
                # the PRAGMA takes no parameter: the version is this module's own number
                connection.execute(SQL["set_schema_version"].format(version=len(_SCHEMA_VERSIONS)))
                connection.execute(SQL["commit"])
            except BaseException:
                connection.execute(SQL["rollback"])
                raise
        elif current > len(_SCHEMA_VERSIONS):
            raise StoreError(
                f"database {self.path} has schema version {current}; this rjbatch knows "
                f"{len(_SCHEMA_VERSIONS)}: upgrade rjbatch"
            )
        self._migrated = True

    def _busy_retry(self, action: Callable[[], Any]) -> Any:
        """Run ``action``, retrying while another process holds the write lock.

        Waits start at 20 µs and double up to 2 ms, with jitter, until ``busy_timeout``.
        """
        delay = 0.00002
        deadline = 0.0
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                message = str(exc)
                if "locked" not in message and "busy" not in message:
                    raise
                now = time.monotonic()
                deadline = deadline or now + self.busy_timeout
                if now > deadline:
                    raise StoreError(
                        f"database {self.path} stayed locked for {self.busy_timeout:.0f} s: {exc}"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.002)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front (no deadlock on upgrade)."""
        with self._lock:
            connection = self._connection()
            self._busy_retry(lambda: connection.execute(SQL["begin_write"]))
            try:
                yield connection
            except BaseException:
                connection.execute(SQL["rollback"])
                raise
            connection.execute(SQL["commit"])

    _transaction = _write

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            connection = self._connection()
            return self._busy_retry(lambda: connection.execute(sql, params))

    def vacuum(self) -> str:
        """Give the space of removed jobs and slices back to the file system (SQLite keeps
        freed pages for reuse, so the file never shrinks by itself)."""
        if self.memory:
            return "in memory: nothing to give back"
        before = os.path.getsize(self.path)
        self._busy_retry(lambda: self._connection().execute(SQL["vacuum"]))
        self._connection().execute(SQL["truncate_wal"])
        after = os.path.getsize(self.path)
        return f"{self.path}: {before / 1e6:,.1f} MB -> {after / 1e6:,.1f} MB"

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        connection = getattr(self._local, "connection", None)
        if connection is not None and getattr(self._local, "pid", None) == os.getpid():
            connection.close()
        self._local = threading.local()

    def data_version(self) -> int:
        return int(self._execute(SQL["data_version"]).fetchone()[0])

    def wait_for_change(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Poll ``PRAGMA data_version`` (microseconds each) every few milliseconds.

        A commit made since this thread's last wait ended counts too: work added between
        a worker's last look and this wait wakes it at once instead of being missed.
        """
        return wait_for_new_version(self._local, self.data_version, timeout, stop,
                                    self.change_poll_seconds)

    # -- slices -------------------------------------------------------------------------
    def insert_slices(self, job_id: str, category: str, slices: Sequence[Doc]) -> None:
        if not slices:
            return
        rows = [(job_id, category, s["id"], s["first_record_number"], s["record_count"],
                 s["serializer"], s["data"], s.get("state", "queued")) for s in slices]
        with self._write() as connection:
            connection.executemany(SQL["insert_input_slice"], rows)

    def next_slice_id(self, job_id: str, category: str) -> int:
        row = self._execute(SQL["next_slice_id"], (job_id, category, job_id, category)).fetchone()
        return int(row[0] or 0) + 1

    def claim_slices(
        self, job_id: str, category: str, worker_name: str, now: datetime, limit: int
    ) -> list[Doc]:
        rows = self._execute(
            SQL["claim_slices"],
            (worker_name, format_datetime(now), job_id, category, job_id, category, limit),
        ).fetchall()
        return sorted((self._slice(row) for row in rows), key=lambda s: s["id"])

    def release_slices(self, job_id: str, category: str, ids: Sequence[int]) -> None:
        if ids:
            marks = ", ".join("?" for _ in ids)
            self._execute(SQL["release_slices"].format(ids=marks), (job_id, category, *ids))

    def complete_slices(self, job_id: str, category: str, done: Sequence[tuple[int, dict[str, Doc]]],
                        worker_name: str | None = None) -> list[int]:
        if not done:
            return []
        with self._write() as connection:
            if worker_name is None:
                connection.executemany(SQL["delete_input_slice"], [(job_id, category, i) for i, _ in done])
                kept = list(done)
            else:  # fenced: only the slices this worker still holds
                marks = ", ".join("?" for _ in done)
                taken = {row[0] for row in connection.execute(
                    SQL["delete_held_input_slices"].format(ids=marks),
                    [job_id, category, *(i for i, _ in done), worker_name])}
                kept = [(i, outputs) for i, outputs in done if i in taken]
            upserts = [row for slice_id, outputs in kept for row in self._output_rows(job_id, slice_id, outputs)]
            if upserts:
                connection.executemany(SQL["upsert_output_slice"], upserts)
        kept_ids = {i for i, _ in kept}
        return [i for i, _ in done if i not in kept_ids]

    def requeue_running_slices(self, worker_or_server: str) -> int:
        prefix = worker_or_server + ":"
        return int(self._execute(SQL["requeue_running_slices"],
                                 (worker_or_server, len(prefix), prefix)).rowcount)

    def requeue_job_slices(self, job_id: str, category: str, worker_or_server: str) -> int:
        prefix = worker_or_server + ":"
        return int(self._execute(SQL["requeue_job_slices"],
                                 (job_id, category, worker_or_server, len(prefix), prefix)).rowcount)

    # -- documents <-> rows -------------------------------------------------------------
    @staticmethod
    def _class_names(value: Any) -> list[str]:
        return [name for name in value.split("|") if name]

    # -- jobs -------------------------------------------------------------------------
    def increment_job(self, job_id: str, increments: dict[str, float]) -> bool:
        """Add to numbers inside the document, atomically (``{"statistics.rows": 5}``)."""
        if not increments:
            return True
        keys = {name: name.split(".") for name in increments}
        if not _plain_path([part for parts in keys.values() for part in parts]):
            pairs = [[keys[name], amount] for name, amount in increments.items()]
            return bool(self._execute(SQL["increment_job_any_keys"], [json.dumps(pairs), job_id]).rowcount > 0)
        parts, params = [], []
        for name, amount in increments.items():
            path = json_path(keys[name])
            parts.append("?, coalesce(json_extract(doc, ?), 0) + ?")
            params += [path, path, amount]
        sql = SQL["increment_job"].format(increments=", ".join(parts))
        return bool(self._execute(sql, [*params, job_id]).rowcount > 0)

    def claim_job(self, worker_name: str, now: datetime, filter: Filter | None = None,
                  finished: Sequence[str] = ()) -> Doc | None:
        condition, params = where_clause(filter, JOBS)
        sql = SQL["claim_job"].format(filter=condition)
        stamp = format_datetime(now)
        claim = [worker_name, stamp, stamp, *params, stamp, *params]
        if finished:
            # the worker's last jobs leave and its next one is taken under one lock
            marks = ", ".join("?" for _ in finished)
            with self._write() as connection:
                connection.execute(SQL["delete_finished_jobs"].format(ids=marks), [*finished, worker_name])
                row = connection.execute(sql, claim).fetchone()
        else:
            row = self._execute(sql, claim).fetchone()
        if row is None:
            return None
        doc = self._row_to_doc(row)
        doc["_claimed_from"] = "running" if doc.get("sub_state") == "processing" else "queued"
        return doc
