"""The PostgreSQL store: many machines' workers on one database.

Jobs keep their hot fields in real columns (timestamps as ``timestamptz``) and every
other field in a ``jsonb`` document; slices are ``bytea`` in two small tables (input
slices are deleted as they complete). The job claim is one ``UPDATE ... RETURNING``
whose candidate is locked with ``FOR UPDATE SKIP LOCKED``, so concurrent workers never
wait for each other or take the same job. Idle workers ``LISTEN`` for a notification
that triggers send when work may have appeared.

A connection belongs to one process and one thread, opened on first use, never an
inherited one: a forked child's copies of its parent's connections are disconnected
from the socket at fork time, so nothing the child does (or its garbage collector)
can end the parent's sessions. The statements live in ``postgres.sql`` beside this
file, and those it shares with SQLite in ``sqlbase.sql``; the schema is versioned in ``rjbatch_schema`` and migrated under an advisory
lock, so processes starting together do not race.

Everything lives in a PostgreSQL schema of the store's own (``rjbatch``, or
``?schema=name`` in the URL), set as each connection's ``search_path``, so the store can
share a database with an application that has its own ``jobs``; tables an older rjbatch
made in ``public`` are moved there on first use. Values and document paths are always
bound parameters; the schema name, the one identifier that comes from outside, is
checked against a strict pattern and quoted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote

try:
    import psycopg
except ImportError as error:  # the optional extra; rjbatch.store.open_store names the URL
    raise ImportError(f"it needs psycopg ({error}): pip install 'rjbatch[postgresql]'") from error
from psycopg import sql
from psycopg.rows import dict_row

from rjbatch.errors import StoreConnectionLost, StoreError
from rjbatch.job.fields import to_utc
from rjbatch.store import sqlfilter
from rjbatch.store.protocol import Doc, Filter
from rjbatch.store.sqlbase import (
    DATETIMES,
    DIRMON_COLUMNS,
    JOB_COLUMNS,
    SERVER_COLUMNS,
    SQLStore,
    datetime_shapes,
    read_statements,
)
from rjbatch.store.sqlfilter import Dialect, encode_value, where_clause

SCHEMA_VERSION = 2
_MIGRATION_LOCK = 0x726A6261746368  # "rjbatch": the advisory lock migrations run under

# The store keeps everything in a schema of its own (``?schema=`` in the URL), so it can
# share a database with an application that has its own ``jobs``.
DEFAULT_SCHEMA = "rjbatch"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # no quoting needed, no case folding
TABLES = ("jobs", "input_slices", "output_slices", "servers", "dirmon_entries")
VERSION_TABLE = "rjbatch_schema"
FUNCTIONS = ("rjbatch_increment(jsonb, text[], numeric)", "rjbatch_notify()")
# columns only rjbatch's jobs table has: with the version table beside it, how an older
# rjbatch's tables are told from an application's own
_JOB_COLUMNS = {"id": "text", "classes": "text[]", "doc": "jsonb", "sub_state": "text"}

log = logging.getLogger("rjbatch.store.postgres")

Row = dict[str, Any]
Connection = psycopg.Connection[Row]  # connections read rows as dicts (dict_row)
Cursor = psycopg.Cursor[Row]


def _one(cursor: Cursor) -> Row:
    """The row of a statement that always returns one (an aggregate, a catalog lookup)."""
    row = cursor.fetchone()
    if row is None:
        raise StoreError("PostgreSQL returned no row where one was expected")
    return row


# a JSON \u0000 escape (not an escaped backslash followed by "u0000")
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def dumps(value: Any) -> str:
    """JSON text for ``jsonb``, which cannot hold NUL: a NUL in a value becomes U+FFFD.

    A NUL in a key is refused instead (:class:`StoreError` naming it): replacing it
    could make two keys one, and a key is an address, not a message to keep readable.
    """
    text = sqlfilter.dumps(value)
    if "\\u0000" not in text:
        return text
    key = _key_with_nul(value)
    if key is not None:
        raise StoreError(f"PostgreSQL cannot store the NUL character in a key: {key!r}")
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text)


def _key_with_nul(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key holding a NUL, if any."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return name
            if (found := _key_with_nul(item, name)) is not None:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            if (found := _key_with_nul(item, path)) is not None:
                return found
    return None


def path_parts(name: str) -> list[str]:
    """A dotted name as the ``text[]`` parameter of ``#>``, ``#>>`` and ``jsonb_set``."""
    if "\x00" in name:
        raise StoreError(f"PostgreSQL cannot store the NUL character in a key: {name!r}")
    return name.split(".")


def _doc_path(name: str) -> tuple[str, str, Any]:
    # JSON null reads as SQL NULL, as SQLite's json_extract gives it
    return ("nullif(doc #> %s::text[], 'null'::jsonb)", "(doc #>> %s::text[])", path_parts(name))


def column_value(value: Any) -> Any:
    """A parameter compared with a real column: datetimes stay typed for ``timestamptz``."""
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and "\x00" in value:
        raise StoreError(f"PostgreSQL text cannot hold the NUL character: {value!r}")
    return encode_value(value)


def _dialect(columns: dict[str, str]) -> Dialect:
    return Dialect(
        columns=columns, doc_path=_doc_path, placeholder="%s",
        json_param=lambda p: f"{p}::jsonb", doc_param=lambda p: f"{p}::jsonb", json_text=dumps,
        regex=lambda expr, p: f"{expr} ~ {p}",
        class_match=lambda p: f"{p} = ANY(classes)", class_param=str,
        column_value=column_value, nulls_first=True,
    )


JOBS = _dialect(JOB_COLUMNS)
SERVERS = _dialect({c: c for c in SERVER_COLUMNS})
DIRMON = _dialect(DIRMON_COLUMNS)


# every statement this store runs: the shared ones (with psycopg's %s), then postgres.sql's
# own (read once)
SQL = {**read_statements("sqlbase.sql", placeholder="%s"), **read_statements("postgres.sql")}


def _assignments(columns: dict[str, Any], rest: Doc) -> tuple[str, list[Any]]:
    """``SET`` text for real columns, and a merge into ``doc`` for every other field.

    The entries these fields need in the record of where the document holds datetimes
    (``sqlbase.DATETIMES``) are merged into it.
    """
    parts = [f"{column} = %s" for column in columns]
    params = list(columns.values())
    entries = datetime_shapes(rest)
    if entries:
        parts.append("doc = jsonb_set(doc || %s::jsonb, %s::text[],"
                     " coalesce(jsonb_extract_path(doc, %s), jsonb_build_object()) || %s::jsonb)")
        params += [dumps(rest), [DATETIMES], DATETIMES, dumps(entries)]
    elif rest:
        parts.append("doc = doc || %s::jsonb")
        params.append(dumps(rest))
    return ", ".join(parts), params


def split_url(url: str) -> tuple[str, str]:
    """``(the URL libpq is given, the schema)``: ``?schema=name`` is this store's, not libpq's.

    The schema name becomes an identifier in ``CREATE SCHEMA`` and ``search_path``, so it
    is held to lowercase letters, digits and underscores rather than quoted.
    """
    base, _, rest = url.partition("?")
    query, hash_mark, fragment = rest.partition("#")
    kept, schemas = [], []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        if unquote(key) == "schema":
            schemas.append(unquote(value))
        elif part:
            kept.append(part)
    dsn = base + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    if len(schemas) > 1:
        raise StoreError(f"more than one schema in {safe_url(url)}: {schemas}")
    schema = schemas[0] if schemas else DEFAULT_SCHEMA
    if not _SCHEMA_NAME.fullmatch(schema) or schema.startswith("pg_") or schema == "information_schema":
        raise StoreError(
            f"invalid PostgreSQL schema name {schema!r} in {safe_url(url)}: use 1 to 63 "
            "lowercase letters, digits and underscores, not starting with a digit or pg_")
    return dsn, schema


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def reason(exc: BaseException) -> str:
    """A driver error as one line: libpq's messages span lines (a hint on the second)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line) or type(exc).__name__


class ConnectionLost(StoreConnectionLost, psycopg.OperationalError):
    """The server went away during a call (still a ``psycopg.OperationalError`` for code
    that catches the driver's errors)."""


# -- connections and fork ---------------------------------------------------------------
# Every connection this process opened, so a forked child can cut its copies loose.
_connections: weakref.WeakSet[Connection] = weakref.WeakSet()
_inherited: list[Connection] = []  # a child keeps its parent's, cut loose, forever


def _cut_inherited_connections() -> None:
    """In a forked child: point the parent's sockets at /dev/null, never to be used.

    Closing or even garbage-collecting a copied connection would send the server a
    terminate message on the socket the parent still uses.
    """
    if not _connections:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for connection in list(_connections):
            with contextlib.suppress(Exception):
                os.dup2(devnull, connection.pgconn.socket)
            _inherited.append(connection)
    finally:
        os.close(devnull)
    _connections.clear()


os.register_at_fork(after_in_child=_cut_inherited_connections)


class _Session:
    """One thread's connection, and the notifications it has seen."""

    __slots__ = ("connection", "pid", "backend_pid", "seen", "waited")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.pid = os.getpid()
        self.backend_pid = connection.info.backend_pid
        self.seen = 0  # notifications from other sessions
        self.waited = 0  # ``seen`` when wait_for_change last returned

    def on_notify(self, notify: psycopg.Notify) -> None:
        if notify.pid != self.backend_pid:
            self.seen += 1


def _same(value: Any) -> Any:
    return value


class PostgresStore(SQLStore):
    """The PostgreSQL implementation of :class:`rjbatch.store.protocol.Store`."""

    _p = "%s"
    _no_limit = None
    _integrity_error = psycopg.errors.IntegrityError
    _unique_violation = psycopg.errors.UniqueViolation
    SQL = SQL
    JOBS = JOBS
    SERVERS = SERVERS
    DIRMON = DIRMON
    _assignments = staticmethod(_assignments)
    _dumps = staticmethod(dumps)
    _column_value = staticmethod(column_value)
    _load_doc = staticmethod(_same)  # psycopg reads jsonb as a dict
    _load_json = staticmethod(_same)

    @staticmethod
    def _classes_value(classes: Any) -> Any:
        return list(classes)  # a text[] column

    @staticmethod
    def _class_names(value: Any) -> list[str]:
        return list(value)

    def _insert_mark(self, column: str) -> str:
        return "%s::jsonb" if column == "doc" else "%s"

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.url = url
        self._dsn, self.schema = split_url(url)
        self.connect_timeout = connect_timeout
        self.stop_poll_seconds = 0.01  # how often wait_for_change looks at stop()
        self._local = threading.local()
        self._sessions: list[_Session] = []
        self._lock = threading.Lock()
        self._migrated = False
        self._session()  # fail now, naming the server, if it cannot be used

    # -- connections --------------------------------------------------------------------
    def _session(self) -> _Session:
        session = getattr(self._local, "session", None)
        if session is None or session.pid != os.getpid() or session.connection.closed:
            session = self._local.session = self._open()
        return session

    def _connection(self) -> Connection:
        return self._session().connection

    def _open(self) -> _Session:
        try:
            connection = psycopg.connect(
                self._dsn, autocommit=True, row_factory=dict_row,
                connect_timeout=max(1, round(self.connect_timeout)),
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {safe_url(self.url)}: {reason(exc)}") from None
        _connections.add(connection)
        try:
            with self._guard(connection, "cannot use PostgreSQL at"):
                connection.execute(SQL["use_utc"])
                # where an older rjbatch kept its tables: the connection's own search_path
                legacy = None if self._migrated else self._legacy_schema(connection)
                self._use_schema(connection)
                self._migrate(connection, legacy)
                connection.execute(SQL["listen"])
        except BaseException:
            connection.close()
            raise
        session = _Session(connection)
        connection.add_notify_handler(session.on_notify)
        with self._lock:
            self._sessions = [s for s in self._sessions if not s.connection.closed]
            self._sessions.append(session)
        return session

    @contextlib.contextmanager
    def _guard(self, connection: Connection, failed: str | None = None) -> Iterator[None]:
        """Driver errors as store errors naming the server: a broken connection (the server
        restarted or went away) is ``ConnectionLost``; with ``failed`` (setting a new
        connection up), any other driver error is a ``StoreError`` that starts with it."""
        try:
            yield
        except psycopg.Error as exc:
            if isinstance(exc, StoreError):
                raise
            if connection.broken:
                raise ConnectionLost(
                    f"lost the connection to PostgreSQL at {safe_url(self.url)}: {reason(exc)}") from exc
            if failed is None:
                raise
            raise StoreError(f"{failed} {safe_url(self.url)}: {reason(exc)}") from exc

    def schema_version(self) -> int:
        """The schema version recorded in the database (0: none yet)."""
        connection = self._connection()
        with self._guard(connection):
            return self._recorded_version(connection)

    @staticmethod
    def _recorded_version(connection: Connection) -> int:
        if not _one(connection.execute(SQL["has_version_table"]))["present"]:
            return 0
        return int(_one(connection.execute(SQL["schema_version"]))["version"])

    def _use_schema(self, connection: Connection) -> None:
        """Only this store's schema on the path: every unqualified name in the SQL is its."""
        connection.execute(SQL["set_search_path"], [f'"{self.schema}"'])

    @staticmethod
    def _legacy_schema(connection: Connection) -> str | None:
        """The schema where ``rjbatch_schema`` resolves on the connection's search_path.

        That is where rjbatch before the schema of its own created its tables (usually
        ``public``); None when there is none.
        """
        row = connection.execute(SQL["schema_of_table"], [VERSION_TABLE]).fetchone()
        return str(row["nspname"]) if row else None

    def _migrate(self, connection: Connection, legacy: str | None = None) -> None:
        if self._migrated:
            return
        current = self._recorded_version(connection)
        if current < SCHEMA_VERSION:
            with connection.transaction():
                # one process migrates; the others wait here, then find nothing to do
                connection.execute(SQL["lock_migrations"], [_MIGRATION_LOCK])
                self._create_schema(connection)
                current = self._recorded_version(connection)
                if current == 0 and legacy is not None and legacy != self.schema:
                    self._move_tables(connection, legacy)
                    current = self._recorded_version(connection)
                if current == 0:
                    self._refuse_foreign_tables(connection)
                connection.execute(SQL["create_version_table"])
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    connection.execute(SQL[f"schema_{version}"])  # several statements
                    connection.execute(SQL["record_version"], [version])
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database {safe_url(self.url)} has schema version {current}; this rjbatch "
                f"knows {SCHEMA_VERSION}: upgrade rjbatch"
            )
        self._migrated = True

    def _create_schema(self, connection: Connection) -> None:
        """``CREATE SCHEMA`` unless it exists (so a schema made by an administrator
        needs no CREATE privilege on the database)."""
        if connection.execute(SQL["schema_exists"], [self.schema]).fetchone():
            return
        try:
            with connection.transaction():
                connection.execute(sql.SQL(SQL["create_schema"]).format(schema=sql.Identifier(self.schema)))
        except psycopg.errors.InsufficientPrivilege:
            raise StoreError(
                f"cannot create schema {self.schema!r} in {safe_url(self.url)}: permission denied"
                f" (create it for this user: CREATE SCHEMA {self.schema} AUTHORIZATION <user>)"
            ) from None
        self._use_schema(connection)  # the path named a schema that did not exist yet

    def _tables_in(self, connection: Connection, schema: str) -> set[str]:
        rows = connection.execute(SQL["tables_in_schema"], [schema, [*TABLES, VERSION_TABLE]]).fetchall()
        return {row["relname"] for row in rows}

    def _refuse_foreign_tables(self, connection: Connection) -> None:
        """A schema with a ``jobs`` (...) that rjbatch did not create is not taken over."""
        foreign = self._tables_in(connection, self.schema) - {VERSION_TABLE}
        if foreign:
            raise StoreError(
                f"schema {self.schema!r} of {safe_url(self.url)} already has tables rjbatch did not "
                f"create ({', '.join(sorted(foreign))}): name another with ?schema=")

    def _move_tables(self, connection: Connection, legacy: str) -> None:
        """Move an older rjbatch's tables and functions from ``legacy`` into this schema.

        They are recognised by the version table beside them and by the jobs table's
        own columns; anything else is left alone with an error saying why.
        """
        found = self._tables_in(connection, legacy)
        rows = connection.execute(SQL["jobs_columns_in_schema"], [legacy]).fetchall()
        columns = {row["attname"]: row["type"] for row in rows}
        if set(TABLES) - found or any(columns.get(name) != kind for name, kind in _JOB_COLUMNS.items()):
            raise StoreError(
                f"schema {legacy!r} of {safe_url(self.url)} has {VERSION_TABLE} but not the tables "
                f"of an older rjbatch beside it (found: {', '.join(sorted(found))}); move them into "
                f"schema {self.schema!r} or drop {legacy}.{VERSION_TABLE} by hand")
        self._refuse_foreign_tables(connection)
        source, target = sql.Identifier(legacy), sql.Identifier(self.schema)
        for table in (*TABLES, VERSION_TABLE):
            connection.execute(sql.SQL(SQL["move_table"]).format(
                source=source, table=sql.Identifier(table), target=target))
        for function in FUNCTIONS:
            name, _, arguments = function.partition("(")
            exists = _one(connection.execute(SQL["function_exists"],
                                             ['"' + legacy.replace('"', '""') + '".' + function]))["present"]
            if exists:  # arguments: a constant of this module (FUNCTIONS), not a value
                connection.execute(sql.SQL(SQL["move_function"]).format(
                    source=source, function=sql.Identifier(name), arguments=sql.SQL(arguments.rstrip(")")),
                    target=target))
        log.warning("moved rjbatch's tables and functions from schema %r to schema %r of %s",
                    legacy, self.schema, safe_url(self.url))

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        connection = self._connection()
        with self._guard(connection):
            return connection.execute(sql, params)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        connection = self._connection()
        with self._guard(connection), connection.transaction():
            yield connection

    def vacuum(self) -> str:
        """VACUUM (ANALYZE) rjbatch's tables: space of removed rows reused, statistics fresh."""
        for table in TABLES:  # fixed names; VACUUM takes no parameters
            self._execute(SQL["vacuum"].format(table=table))
        return f"{safe_url(self.url)}: vacuumed {', '.join(TABLES)}"

    def close(self) -> None:
        """Close this process's connections of this store, in every thread."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            if session.pid == os.getpid():
                with contextlib.suppress(Exception):
                    session.connection.close()
        self._local = threading.local()

    # -- wake-ups -----------------------------------------------------------------------
    def _drain(self, session: _Session, timeout: float) -> None:
        """Read notifications that arrive within ``timeout`` seconds (0: only those here)."""
        pgconn = session.connection.pgconn
        try:
            self._count_notifies(session)  # any that libpq has read already
            readable, _, _ = select.select([pgconn.socket], [], [], max(0.0, timeout))
            if readable:
                pgconn.consume_input()
                self._count_notifies(session)
        except (psycopg.Error, OSError):
            session.connection.close()  # the server went away: the next call reconnects
            session.seen += 1  # and the caller should look again

    @staticmethod
    def _count_notifies(session: _Session) -> None:
        while (notify := session.connection.pgconn.notifies()) is not None:
            if notify.be_pid != session.backend_pid:
                session.seen += 1

    def data_version(self) -> int:
        """How many notifications of other sessions' writes this thread has seen.

        A round trip first: a notification committed before this call is delivered
        ahead of the reply.
        """
        session = self._session()
        with self._guard(session.connection):
            session.connection.execute(SQL["round_trip"])
        self._drain(session, 0)
        return session.seen

    def wait_for_change(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Wait for a notification from another session (one seen since the last wait counts)."""
        session = self._session()
        deadline = time.monotonic() + timeout
        while session.seen == session.waited:
            if stop is not None and stop():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._drain(session, min(remaining, self.stop_poll_seconds) if stop else remaining)
            if session.connection.closed:
                break
        session.waited = session.seen
        return True

    # -- jobs ---------------------------------------------------------------------------
    def increment_job(self, job_id: str, increments: dict[str, float]) -> bool:
        """Add to numbers inside the document, atomically (``{"statistics.rows": 5}``)."""
        if not increments:
            return True
        expression, params = "doc", []
        for name, amount in increments.items():
            expression = f"rjbatch_increment({expression}, %s::text[], %s::numeric)"
            params += [path_parts(name), str(amount)]  # the innermost call comes first
        sql = SQL["increment_job"].format(increments=expression)
        return self._execute(sql, [*params, job_id]).rowcount > 0

    def claim_job(self, worker_name: str, now: dt.datetime, filter: Filter | None = None,
                  finished: Sequence[str] = ()) -> Doc | None:
        condition, params = where_clause(filter, JOBS)
        sql = SQL["claim_job"].format(filter=condition)
        stamp = to_utc(now)
        done = list(finished)  # deleted by the same statement that claims
        row = self._execute(sql, [done, worker_name, stamp, *params, done, stamp, *params, stamp, *params,
                                  worker_name, stamp]).fetchone()
        if row is None:
            return None
        from_queue = row.pop("claimed_from_queue")
        doc = self._row_to_doc(row)
        doc["_claimed_from"] = "queued" if from_queue else "running"
        return doc

    # -- slices -------------------------------------------------------------------------
    def insert_slices(self, job_id: str, category: str, slices: Sequence[Doc]) -> None:
        if not slices:
            return
        # one COPY: one statement, so all or nothing
        connection = self._connection()
        with self._guard(connection), connection.cursor() as cursor, \
                cursor.copy(SQL["copy_input_slices"]) as copy:
            copy.set_types(["text", "text", "int4", "int8", "int4", "text", "bytea", "text"])
            for s in slices:
                copy.write_row((job_id, category, s["id"], s["first_record_number"], s["record_count"],
                                s["serializer"], s["data"], s.get("state", "queued")))

    def next_slice_id(self, job_id: str, category: str) -> int:
        row = _one(self._execute(SQL["next_slice_id"], (job_id, category, job_id, category)))
        return int(row["greatest"] or 0) + 1

    def claim_slices(
        self, job_id: str, category: str, worker_name: str, now: dt.datetime, limit: int
    ) -> list[Doc]:
        rows = self._execute(
            SQL["claim_slices"],
            (worker_name, to_utc(now), job_id, category, limit),
        ).fetchall()
        return sorted((self._slice(row) for row in rows), key=lambda s: s["id"])

    def release_slices(self, job_id: str, category: str, ids: Sequence[int]) -> None:
        if ids:
            self._execute(SQL["release_slices"], (job_id, category, list(ids)))

    def complete_slices(self, job_id: str, category: str, done: Sequence[tuple[int, dict[str, Doc]]],
                        worker_name: str | None = None) -> list[int]:
        if not done:
            return []
        # one row per (category, id): the last write of a slice wins, as it would in order
        outputs = {row[1:3]: row for slice_id, written in done
                   for row in self._output_rows(job_id, slice_id, written)}
        columns = list(zip(*outputs.values(), strict=True)) if outputs else [()] * 7
        ids = [slice_id for slice_id, _ in done]
        completed = {row["id"] if isinstance(row, dict) else row[0] for row in self._execute(
            SQL["complete_slices"],
            (job_id, category, ids, worker_name, worker_name, job_id, *(list(column) for column in columns[1:]),
             worker_name),
        ).fetchall()}
        return [i for i in ids if i not in completed]

    def requeue_running_slices(self, worker_or_server: str) -> int:
        return self._execute(SQL["requeue_running_slices"],
                             (worker_or_server, worker_or_server + ":")).rowcount

    def requeue_job_slices(self, job_id: str, category: str, worker_or_server: str) -> int:
        return self._execute(SQL["requeue_job_slices"],
                             (job_id, category, worker_or_server, worker_or_server + ":")).rowcount
