"""The MongoDB store: Rocket Job's own layout, through pymongo.

Collections in the URL's database (``mongodb://host/rjbatch``; ``rjbatch`` when the URL
names none):

* ``jobs``: every job class in one collection; ``_id`` an ObjectId, ``_type`` and
  ``_classes`` in each document; ``{state: 1, priority: 1, _id: 1}`` serves the claim.
* ``inputs.<job_id>[.<category>]`` and ``outputs.<job_id>[.<category>]``: one pair per
  batch job and category (no suffix for ``main``), slice ``_id`` = the slice id, so an
  output slice reuses its input slice's id; ``{state: 1, _id: 1}`` on inputs.
* ``servers`` (unique ``name``), ``dirmon_entries`` (unique ``pattern``).
* ``changes``: one counter document that every write which may add work bumps; it is
  ``data_version``, and idle workers wait on it (a change stream where the server has
  them, polling otherwise).

MongoDB makes each statement atomic per document; the verbs are ordered so that none
needs a multi-document transaction (nor, therefore, a replica set): output slices are
upserted by slice id before their input slice is deleted, so a slice processed twice
has its output replaced, not added again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal, NoReturn, overload

import pymongo
from bson import ObjectId
from bson.regex import Regex
from pymongo import ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from rjbatch.errors import SingletonTaken, StoreConnectionLost, StoreError
from rjbatch.job.fields import to_utc
from rjbatch.store.protocol import Doc, Filter, Order, check_field_names
from rjbatch.store.sqlfilter import FilterError
from rjbatch.store.waiting import wait_for_new_version

log = logging.getLogger("rjbatch.store.mongo")

DEFAULT_DATABASE = "rjbatch"
JOBS, SERVERS, DIRMON, CHANGES = "jobs", "servers", "dirmon_entries", "changes"
_WORK = "work"  # the _id of the change counter document

# mongomock runs find-and-modify as a find, then an update by _id: not atomic between
# threads. On mongomock every call of every MongoStore in the process takes this lock,
# which gives the atomicity a real server gives each statement.
_MONGOMOCK_LOCK = threading.RLock()

_SLICE_DEFAULTS = {
    "state": "queued", "worker_name": None, "started_at": None, "failure_count": 0,
    "processing_record_number": None, "exception": None,
}
_OUTPUT_SLICE_FIELDS = ("first_record_number", "record_count", "serializer", "data")
_UPDATABLE_SLICE_FIELDS = {"data", "record_count", "serializer", "state", "processing_record_number"}
_INLINE_FLAGS = re.compile(r"^\(\?([aiLmsux]+)\)")


# -- keys -----------------------------------------------------------------------------
# MongoDB reads a key starting with "$" as an operator (or a positional path), and BSON
# keys cannot hold NUL. A stored key that starts with "$" or with this escape gets the
# escape put in front, and loses it on the way out: reversible, so every key round-trips
# exactly, and no key from data becomes an operator. NUL in a key is refused.
KEY_ESCAPE = "\uff04"  # FULLWIDTH DOLLAR SIGN


def _key(key: Any) -> str:
    """A key (a field name or one segment of a path) as stored."""
    key = str(key)
    if "\x00" in key:
        raise StoreError(f"MongoDB cannot store the NUL character in a key: {key!r}")
    return KEY_ESCAPE + key if key[:1] in ("$", KEY_ESCAPE) else key


def _unkey(key: str) -> str:
    return key[1:] if key[:1] == KEY_ESCAPE else key


def _path(name: str) -> str:
    """A dotted name as a stored path: a dot means nesting; each segment is a key."""
    if "\x00" in name:
        raise StoreError(f"MongoDB cannot store the NUL character in a key: {name!r}")
    if "$" not in name and KEY_ESCAPE not in name:
        return name
    return ".".join(_key(part) for part in name.split("."))


def _decode(value: Any) -> Any:
    """A stored value with its keys as they were given (the escape taken off), and its
    datetimes aware UTC (a client made without ``tz_aware`` reads them naive)."""
    if isinstance(value, dict):
        return {_unkey(key): _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


# -- values ---------------------------------------------------------------------------
def _oid(value: Any) -> Any:
    """The stored form of an id: an ObjectId for 24 hex digits, anything else as is."""
    if isinstance(value, str) and ObjectId.is_valid(value):
        return ObjectId(value)
    return value


def _encode(value: Any) -> Any:
    """A value as BSON keeps it so that it compares the way the SQL stores compare it."""
    if value is None or isinstance(value, str | bool | int | float | bytes):
        return value
    if isinstance(value, dt.datetime):
        return to_utc(value)
    if isinstance(value, dict):
        return {_key(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value  # ObjectId, Regex, ...: BSON knows them


def _encode_id_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_oid(v) for v in value]
    return _oid(value)


def _job_doc(doc: Doc) -> Doc:
    """A job document as stored: ObjectId ``_id``, no transient ``_`` keys."""
    check_field_names(doc)
    stored = {"_id": _oid(doc["_id"])}
    for name, value in doc.items():
        if name in ("_type", "_classes", "_singleton") or not name.startswith("_"):
            stored[_key(name)] = _encode(value)
    return stored


def _job_changes(changes: Doc) -> Doc:
    check_field_names(changes)
    return {_key(name): _encode(value) for name, value in changes.items()
            if name in ("_type", "_classes") or not name.startswith("_")}


def _fields(doc: Doc) -> Doc:
    """A server's or dirmon entry's fields as stored (keys escaped, values encoded)."""
    return {_key(name): _encode(value) for name, value in doc.items() if name != "_id"}


@overload
def _from_stored(doc: Doc) -> Doc: ...


@overload
def _from_stored(doc: Doc | None) -> Doc | None: ...


def _from_stored(doc: Doc | None) -> Doc | None:
    """A stored document as the store gives it: keys unescaped, datetimes aware UTC and
    ``_id`` a string."""
    if doc is None:
        return None
    doc = _decode(doc)
    if "_id" in doc and isinstance(doc["_id"], ObjectId):
        doc["_id"] = str(doc["_id"])
    return doc


# -- filters --------------------------------------------------------------------------
def translate(filter: Filter | None) -> Doc:
    """The store's filter language as a MongoDB query (mostly the same words)."""
    if not filter:
        return {}
    parts: list[Doc] = []
    for key, value in filter.items():
        if key in ("$or", "$and"):
            subs = [translate(sub) for sub in value]
            if key == "$or":
                # an empty $or matches nothing; MongoDB refuses an empty list
                parts.append({"$or": subs} if subs else {"_id": {"$in": []}})
            else:
                parts.extend(s for s in subs if s)
            continue
        if key.startswith("$"):
            raise FilterError(f"unsupported filter operator {key}")
        name = "_classes" if key == "_class" else _path(key)
        is_id = name == "_id"
        if isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            conditions: Doc = {}
            extra: list[Doc] = []
            for op, arg in value.items():
                for field_name, condition in _operator(name, op, arg, is_id).items():
                    if field_name == name and isinstance(condition, dict) and not (
                            set(condition) & set(conditions)):
                        conditions.update(condition)
                    else:
                        extra.append({field_name: condition})
            if conditions:
                parts.append({name: conditions})
            parts.extend(extra)
        else:
            parts.append({name: _encode_id_value(value) if is_id else _encode(value)})
    return _combine(parts)


def _combine(parts: list[Doc]) -> Doc:
    merged: Doc = {}
    rest: list[Doc] = []
    for part in parts:
        if any(key in merged for key in part):
            rest.append(part)
        else:
            merged.update(part)
    if rest:
        return {"$and": [merged, *rest]}
    return merged


def _operator(name: str, op: str, arg: Any, is_id: bool) -> Doc:
    """One ``{field: {operator: value}}`` (or an equivalent query) for one store operator."""
    value = (_encode_id_value(arg) if is_id else _encode(arg))
    if op in ("$eq", "$ne", "$lt", "$lte", "$gt", "$gte"):
        return {name: {op: value}}
    if op in ("$in", "$nin"):
        return {name: {op: list(value)}}
    if op == "$exists":
        # the store language treats a null value as absent (SQL's IS NULL)
        return {name: {"$ne": None}} if arg else {name: {"$eq": None}}
    if op == "$regex":
        pattern, options = _regex(arg)
        return {name: {"$regex": pattern, "$options": options} if options else {"$regex": pattern}}
    if op == "$not":
        if isinstance(arg, dict) and set(arg) == {"$regex"}:
            arg = arg["$regex"]
        elif not hasattr(arg, "pattern"):
            raise FilterError(f"$not takes a $regex, got {arg!r}")
        pattern, options = _regex(arg)
        if "\x00" in pattern:  # a BSON regex is a C string
            raise FilterError(f"a $not $regex cannot hold the NUL character: {pattern!r}")
        return {name: {"$not": Regex(pattern, options)}}
    raise FilterError(f"unsupported filter operator {op}")


def _regex(arg: Any) -> tuple[str, str]:
    """A pattern and MongoDB options; leading inline flags such as ``(?i)`` become options."""
    options = ""
    if isinstance(arg, re.Pattern | Regex):  # bson's Regex keeps re's flag bits
        pattern = arg.pattern
        for flag, letter in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"),
                             (re.VERBOSE, "x")):
            if arg.flags & flag:
                options += letter
    else:
        pattern = str(arg)
    while match := _INLINE_FLAGS.match(pattern):
        options += "".join(letter for letter in match.group(1) if letter in "imsx")
        pattern = pattern[match.end():]
    return pattern, "".join(sorted(set(options)))


def _sort(order: Order, tiebreak: bool = True) -> list[tuple[str, int]]:
    sort = [(_path(name), pymongo.DESCENDING if direction < 0 else pymongo.ASCENDING)
            for name, direction in order]
    if tiebreak and not any(name == "_id" for name, _ in sort):
        sort.append(("_id", pymongo.ASCENDING))
    return sort


def _worker_match(worker_or_server: str) -> Doc:
    """A worker by its name, or every worker of a server (``server:...``)."""
    prefix = "^" + re.escape(worker_or_server + ":")
    return {"$or": [{"worker_name": worker_or_server}, {"worker_name": {"$regex": prefix}}]}


def _safe(url: str) -> str:
    """A URL fit for a message: without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _reason(exc: BaseException) -> str:
    """A driver error as one short line: a server selection timeout without the topology
    description pymongo appends (a screenful, for debugging)."""
    text = str(exc)
    if isinstance(exc, ServerSelectionTimeoutError):
        text, _, rest = text.partition(", Timeout: ")
        text = re.sub(r" \(configured timeouts: [^)]*\)", "", text)
        waited = re.match(r"[\d.]+s", rest)
        if waited:
            text += f" (no answer within {waited.group()})"
    return " ".join(text.split()) or type(exc).__name__


def _sets_number(url: str, name: str) -> bool:
    """Whether the URL's query sets this option to a number (option names ignore case)."""
    for part in re.split("[&;]", url.partition("?")[2]):
        key, _, value = part.partition("=")
        if key.lower() == name.lower():
            try:
                float(value)
            except ValueError:
                return False
            return True
    return False


class ConnectionLost(StoreConnectionLost, ConnectionFailure):
    """The server cannot be reached, or went away during a call (still a pymongo
    ``ConnectionFailure`` for code that catches the driver's errors)."""


class _ConnectionErrors:
    """The guard of every call to a real server: pymongo's ``ConnectionFailure`` (server
    selection timed out, the connection broke) becomes ``ConnectionLost`` naming the URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> Literal[False]:
        if isinstance(exc, ConnectionFailure) and not isinstance(exc, StoreError):
            what = "cannot reach" if isinstance(exc, ServerSelectionTimeoutError) else "lost the connection to"
            raise ConnectionLost(f"{what} MongoDB at {_safe(self.url)}: {_reason(exc)}") from exc
        return False


def _is_mongomock(client: Any) -> bool:
    return type(client).__module__.split(".", 1)[0] == "mongomock"


class MongoStore:
    """The MongoDB implementation of :class:`rjbatch.store.protocol.Store`.

    ``client``: an already open client (a ``mongomock.MongoClient`` in tests); the store
    then never closes it. Otherwise the store opens its own ``pymongo.MongoClient``, one
    per process (a forked child opens a new one). ``wakeups``: ``"auto"`` (a change
    stream when the server is a replica set or mongos, polling otherwise),
    ``"changestream"`` or ``"poll"``.
    """

    def __init__(self, url: str, *, client: Any = None, wakeups: str = "auto",
                 server_selection_timeout: float = 10.0) -> None:
        if wakeups not in ("auto", "changestream", "poll"):
            raise StoreError(f"unknown wake-up method {wakeups!r} (auto, changestream, poll)")
        self.url = url
        self.wakeups = wakeups
        self.change_poll_seconds = 0.02
        self.server_selection_timeout = server_selection_timeout
        self._own_client = client is None
        self._client = client
        self._pid = os.getpid()
        self._local = threading.local()
        self._prepared: set[str] = set()
        self._streams_supported: bool | None = None
        self._guard: Any = contextlib.nullcontext()
        self._connect()
        self._prepare()  # fail now, with the URL, if the server cannot be used

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> None:
        if self._own_client:
            try:
                # looked up at call time, so mongomock.patch() can stand in for a server
                options: dict[str, Any] = {"tz_aware": True}
                if not _sets_number(self.url, "serverSelectionTimeoutMS"):  # the URL's wins
                    options["serverSelectionTimeoutMS"] = int(self.server_selection_timeout * 1000)
                self._client = pymongo.MongoClient(self.url, **options)
            except (PyMongoError, ValueError) as exc:
                raise StoreError(f"cannot use MongoDB at {_safe(self.url)}: {_reason(exc)}") from None
        self._mock = _is_mongomock(self._client)
        self._guard = _MONGOMOCK_LOCK if self._mock else _ConnectionErrors(self.url)
        self._db = self._client.get_default_database(default=DEFAULT_DATABASE)
        self._pid = os.getpid()
        self._local = threading.local()

    @property
    def db(self) -> Any:
        """The database; a forked child (or a closed store) opens its own client first."""
        if self._own_client and (self._client is None or self._pid != os.getpid()):
            self._prepared = set()
            self._connect()  # pymongo clients must not cross a fork
        return self._db

    def _prepare(self) -> None:
        """Indexes and the change counter (idempotent; every process may run it)."""
        db = self.db
        try:
            with self._guard:
                jobs = db[JOBS]
                # MongoDB's default index names, the ones Rocket Job's own indexes have
                jobs.create_index([("state", 1), ("priority", 1), ("_id", 1)])  # the claim
                jobs.create_index([("completed_at", 1)])
                jobs.create_index([("state", 1), ("run_at", 1)])  # next_run_at
                db[SERVERS].create_index([("name", 1)], unique=True)
                db[DIRMON].create_index([("pattern", 1)], unique=True)
                try:  # Singleton jobs: one active job per key, enforced by the index itself
                    jobs.create_index([("_singleton", 1)], unique=True, name="jobs_singleton",
                                      partialFilterExpression={"_singleton": {"$type": "string"},
                                                               "state": {"$in": list(_SINGLETON_STATES)}})
                except OperationFailure as exc:  # a MongoDB before 6.0 ($in in partial indexes)
                    log.warning("no singleton index (%s): Singleton jobs are checked, not enforced", exc)
                with contextlib.suppress(DuplicateKeyError):
                    db[CHANGES].update_one({"_id": _WORK}, {"$setOnInsert": {"version": 0}},
                                           upsert=True)
        except PyMongoError as exc:
            cause = (exc.__cause__ or exc) if isinstance(exc, ConnectionLost) else exc  # the driver's own
            raise StoreError(f"cannot use MongoDB at {_safe(self.url)}: {_reason(cause)}") from None

    def vacuum(self) -> str:
        """MongoDB's storage engine reuses freed space itself: nothing to do."""
        return f"{_safe(self.url)}: MongoDB reuses freed space itself (nothing to do)"

    def close(self) -> None:
        stream = getattr(self._local, "stream", None)
        if stream is not None:
            with contextlib.suppress(PyMongoError):
                stream.close()
            self._local.stream = None
        if self._own_client and self._client is not None:
            if self._pid == os.getpid():
                self._client.close()
            self._client = None

    def _touch(self) -> None:
        """Bump the change counter: something another worker may want to claim changed."""
        self.db[CHANGES].update_one({"_id": _WORK}, {"$inc": {"version": 1}}, upsert=True)

    # -- wake-ups -----------------------------------------------------------------------
    def data_version(self) -> int:
        """The change counter (a change stream, where used, starts listening here too)."""
        if self._use_change_stream():
            try:
                self._stream()
            except (PyMongoError, NotImplementedError) as exc:
                self._no_change_streams(exc)
        with self._guard:
            doc = self.db[CHANGES].find_one({"_id": _WORK})
        return int(doc["version"]) if doc else 0

    def wait_for_change(self, timeout: float, stop: Callable[[], bool] | None = None) -> bool:
        """Wait on the change counter: a change stream when the server has them, else polling."""
        if self._use_change_stream():
            try:
                return self._wait_on_stream(timeout, stop)
            except (PyMongoError, NotImplementedError) as exc:
                self._no_change_streams(exc)
        return self._poll(timeout, stop)

    def _no_change_streams(self, exc: Exception) -> None:
        log.warning("change stream unavailable (%s); polling for changes instead", exc)
        self._streams_supported = False
        self._local.stream = None

    def _use_change_stream(self) -> bool:
        if self.wakeups == "poll":
            return False
        if self._streams_supported is None:
            if self.wakeups == "changestream":
                self._streams_supported = True
            elif _is_mongomock(self._client):
                self._streams_supported = False  # mongomock has no change streams
            else:
                self._streams_supported = self._is_replicated()
        return self._streams_supported

    def _is_replicated(self) -> bool:
        """A replica set or a mongos: where change streams exist."""
        for command in ("hello", "isMaster"):  # hello: MongoDB 4.4.2 and later
            try:
                reply = self.db.client.admin.command(command)
            except OperationFailure:
                continue
            except PyMongoError:
                return False
            return bool(reply.get("setName")) or reply.get("msg") == "isdbgrid"
        return False

    def _poll(self, timeout: float, stop: Callable[[], bool] | None) -> bool:
        """A change made since this thread's last wait ended counts too (none is missed)."""
        return wait_for_new_version(self._local, self.data_version, timeout, stop,
                                    self.change_poll_seconds, clamp_sleep=True)

    def _stream(self) -> Any:
        """This thread's change stream on the counter, opened once and kept open: a bump
        made while the worker was busy waits in it, so no wake-up is lost between waits."""
        stream = getattr(self._local, "stream", None)
        if stream is None or getattr(self._local, "stream_pid", None) != os.getpid():
            changes = self.db[CHANGES]
            if not hasattr(type(changes), "watch"):
                raise NotImplementedError(f"{type(changes).__module__} has no change streams")
            stream = changes.watch(
                [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}}],
                max_await_time_ms=200,
            )
            self._local.stream = stream
            self._local.stream_pid = os.getpid()
        return stream

    def _wait_on_stream(self, timeout: float, stop: Callable[[], bool] | None) -> bool:
        stream = self._stream()
        deadline = time.monotonic() + timeout
        while True:
            if stop is not None and stop():
                return False
            if stream.try_next() is not None:  # waits up to max_await_time_ms
                # events that piled up while the worker was busy wake the next waits at
                # once: a spare look for work each, never a missed one
                return True
            if time.monotonic() >= deadline:
                return False

    # -- jobs -------------------------------------------------------------------------
    def insert_job(self, doc: Doc) -> None:
        try:
            with self._guard:
                self.db[JOBS].insert_one(_job_doc(doc))
                self._touch()
        except DuplicateKeyError as exc:
            if not self.db[JOBS].count_documents({"_id": _oid(doc["_id"])}, limit=1):
                _raise_taken(doc)  # not its id: the only other unique index is the singleton's
            raise StoreError(f"cannot insert job {doc.get('_id')}: {exc}") from None

    def update_job(self, job_id: str, changes: Doc, where: Filter | None = None) -> bool:
        query = _combine([{"_id": _oid(job_id)}, translate(where)])
        with self._guard:
            if not changes:
                return self.db[JOBS].count_documents(query, limit=1) > 0
            try:
                result = self.db[JOBS].update_one(query, {"$set": _job_changes(changes)})
            except DuplicateKeyError:  # an update cannot clash on the id: the singleton index
                _raise_taken({"_id": job_id, **changes})
            if result.matched_count:
                self._touch()
        return result.matched_count > 0

    def update_jobs(self, filter: Filter, changes: Doc) -> int:
        if not changes:
            return self.count_jobs(filter)
        with self._guard:
            result = self.db[JOBS].update_many(translate(filter), {"$set": _job_changes(changes)})
            if result.matched_count:
                self._touch()
        return result.matched_count

    def increment_job(self, job_id: str, increments: dict[str, float]) -> bool:
        """``$inc`` at dotted paths; a null on the way is made ``{}`` or ``0`` first.

        The common case is one statement: it requires no null on the paths, and only when
        it matches nothing (a null there, or no such job) are the nulls repaired.
        """
        if not increments:
            return True
        increments = {_path(name): amount for name, amount in increments.items()}
        key = {"_id": _oid(job_id)}
        paths = {".".join(parts[:depth]) for parts in (p.split(".") for p in increments)
                 for depth in range(1, len(parts) + 1)}
        no_nulls = [{"$or": [{path: {"$exists": False}}, {path: {"$ne": None}}]}
                    for path in sorted(paths)]
        jobs = self.db[JOBS]
        with self._guard:
            if self._mock and any("$" in path for path in paths):
                return self._increment_on_mongomock(key, increments, paths)
            if jobs.update_one({"$and": [key, *no_nulls]}, {"$inc": dict(increments)}).matched_count:
                return True
            if not jobs.count_documents(key, limit=1):
                return False
            for path in sorted(paths, key=lambda p: p.count(".")):  # parents first
                empty: int | Doc = 0 if path in increments else {}
                jobs.update_one({**key, path: {"$eq": None, "$exists": True}}, {"$set": {path: empty}})
            return jobs.update_one(key, {"$inc": dict(increments)}).matched_count > 0

    def _increment_on_mongomock(self, key: Doc, increments: dict[str, float], paths: set[str]) -> bool:
        """One path per update, parents first: mongomock reads any "$" in an update path
        (our escaped keys have one) as a positional operator, which loses its place
        between the keys of one update and fails on a missing parent. A server does
        neither; this runs only on mongomock, under its lock, so it stays atomic."""
        jobs = self.db[JOBS]
        if not jobs.count_documents(key, limit=1):
            return False
        for path in sorted(paths, key=lambda p: p.count(".")):
            if path in increments:
                jobs.update_one({**key, path: {"$eq": None, "$exists": True}}, {"$set": {path: 0}})
                jobs.update_one(key, {"$inc": {path: increments[path]}})
            else:
                jobs.update_one({**key, path: {"$eq": None}}, {"$set": {path: {}}})
        return True

    def find_job(self, job_id: str) -> Doc | None:
        with self._guard:
            return _from_stored(self.db[JOBS].find_one({"_id": _oid(job_id)}))

    def find_jobs(
        self, filter: Filter, order: Order = (), limit: int | None = None, skip: int = 0
    ) -> list[Doc]:
        if limit == 0:
            return []
        with self._guard:
            cursor = self.db[JOBS].find(translate(filter)).sort(_sort(order))
            if skip:
                cursor = cursor.skip(skip)
            if limit is not None:
                cursor = cursor.limit(limit)
            return [_from_stored(doc) for doc in cursor]

    def iter_jobs(self, filter: Filter, order: Order = (), batch_size: int = 500) -> Iterator[Doc]:
        """Pages of ``batch_size``: by ``_id`` range when the order is by id, else by skip."""
        query = translate(filter)
        by_id = all(name == "_id" for name, _ in order)
        if by_id:
            descending = bool(order) and order[0][1] < 0
            last = None
            while True:
                page_query = query
                if last is not None:
                    page_query = _combine([query, {"_id": {"$lt" if descending else "$gt": last}}])
                with self._guard:
                    docs = list(self.db[JOBS].find(page_query)
                                .sort([("_id", -1 if descending else 1)]).limit(batch_size))
                if not docs:
                    return
                last = docs[-1]["_id"]
                yield from (_from_stored(doc) for doc in docs)
                if len(docs) < batch_size:
                    return
        skip = 0
        while True:
            docs = self.find_jobs(filter, order, limit=batch_size, skip=skip)
            yield from docs
            if len(docs) < batch_size:
                return
            skip += batch_size

    def count_jobs(self, filter: Filter) -> int:
        with self._guard:
            return self.db[JOBS].count_documents(translate(filter))

    def count_jobs_by(self, field: str, filter: Filter) -> dict[Any, int]:
        pipeline = [{"$match": translate(filter)},
                    {"$group": {"_id": f"${_path(field)}", "count": {"$sum": 1}}}]
        with self._guard:
            rows = list(self.db[JOBS].aggregate(pipeline))
        return {row["_id"]: row["count"] for row in rows}

    def delete_job(self, job_id: str) -> bool:
        with self._guard:
            deleted = self.db[JOBS].delete_one({"_id": _oid(job_id)}).deleted_count
            if deleted:
                self._touch()
        return deleted > 0

    def delete_jobs(self, filter: Filter) -> int:
        with self._guard:
            deleted = self.db[JOBS].delete_many(translate(filter)).deleted_count
            if deleted:
                self._touch()
        return deleted

    def next_run_at(self, now: dt.datetime) -> dt.datetime | None:
        with self._guard:
            doc = self.db[JOBS].find_one({"state": "queued", "run_at": {"$gt": to_utc(now)}},
                                         {"run_at": 1}, sort=[("run_at", 1)])
        return _decode(doc["run_at"]) if doc else None

    def claim_job(self, worker_name: str, now: dt.datetime, filter: Filter | None = None,
                  finished: Sequence[str] = ()) -> Doc | None:
        """One ``find_one_and_update``, sorted by priority then ``_id`` (Rocket Job's claim).

        The query is an ``$or`` of queued jobs and batch jobs in ``processing``; MongoDB
        serves each branch from the ``{state, priority, _id}`` index and merges the two
        sorted streams. ``started_at`` is set by a second, conditional update when the job
        was queued (a joined batch job keeps its own).
        """
        now = to_utc(now)
        due = {"$or": [{"run_at": None}, {"run_at": {"$lte": now}}]}
        extra = translate(filter)
        branches = [{"state": "queued"}, {"state": "running", "sub_state": "processing"}]
        query = {"$or": [{"$and": [branch, due, *([extra] if extra else [])]} for branch in branches]}
        jobs = self.db[JOBS]
        with self._guard:
            if finished:
                # this worker's finished jobs leave before its next one is taken
                if jobs.delete_many({"_id": {"$in": [_oid(i) for i in finished]},
                                     "state": "running", "worker_name": worker_name}).deleted_count:
                    self._touch()
            before = jobs.find_one_and_update(
                query, {"$set": {"state": "running", "worker_name": worker_name}},
                sort=[("priority", 1), ("_id", 1)], return_document=ReturnDocument.BEFORE,
            )
            if before is None:
                return None
            object_id = before["_id"]
            doc = _from_stored(before)
            claimed_from = doc["state"]
            doc.update(state="running", worker_name=worker_name, _claimed_from=claimed_from)
            if claimed_from == "queued":
                jobs.update_one({"_id": object_id, "state": "running", "worker_name": worker_name},
                                {"$set": {"started_at": now}})
                doc["started_at"] = now
        return doc

    # -- slices -------------------------------------------------------------------------
    @staticmethod
    def _name(kind: str, job_id: str, category: str) -> str:
        """A slice collection's name; MongoDB refuses ``$`` and NUL in one, so they are
        refused here, naming the part, rather than by the server mid-upload."""
        for what, part in (("job id", job_id), ("slice category", category)):
            if not part or "$" in part or "\x00" in part:
                raise StoreError(f"invalid {what} {part!r} for MongoDB collection names "
                                 "(not empty, no '$', no NUL character)")
        return f"{kind}.{job_id}" if category == "main" else f"{kind}.{job_id}.{category}"

    def _inputs(self, job_id: str, category: str, prepare: bool = False) -> Any:
        name = self._name("inputs", job_id, category)
        if prepare and name not in self._prepared:
            # created before the first slice goes in, as Rocket Job does
            self.db[name].create_index([("state", 1), ("_id", 1)])
            self._prepared.add(name)
        return self.db[name]

    def _outputs(self, job_id: str, category: str) -> Any:
        return self.db[self._name("outputs", job_id, category)]

    def _collections(self, kind: str, job_id: str | None = None) -> list[tuple[str, str]]:
        """``(collection name, category)`` of a job's (or every job's) slice collections."""
        if job_id is None:
            pattern = f"^{kind}\\."
        else:
            pattern = f"^{re.escape(kind)}\\.{re.escape(job_id)}(\\.|$)"
        names = self.db.list_collection_names(filter={"name": {"$regex": pattern}})
        found = []
        for name in sorted(names):
            parts = name.split(".", 2)
            if len(parts) < 2 or (job_id is not None and parts[1] != job_id):
                continue
            found.append((name, parts[2] if len(parts) == 3 else "main"))
        return found

    @staticmethod
    def _input_slice(doc: Doc, job_id: str, category: str) -> Doc:
        out: Doc = {"job_id": job_id, "category": category}
        out.update(_SLICE_DEFAULTS)
        for name, value in doc.items():
            out["id" if name == "_id" else name] = value
        if out["exception"]:
            out["exception"] = _decode(out["exception"])
        out["started_at"] = _decode(out["started_at"])
        return out

    @staticmethod
    def _output_slice(doc: Doc, job_id: str, category: str) -> Doc:
        return {"job_id": job_id, "category": category, "id": doc["_id"],
                **{name: doc.get(name) for name in _OUTPUT_SLICE_FIELDS}}

    @staticmethod
    def _output_doc(slice_id: int, out: Doc) -> Doc:
        return {"_id": slice_id, **{name: _encode(out[name]) for name in _OUTPUT_SLICE_FIELDS}}

    def insert_slices(self, job_id: str, category: str, slices: Sequence[Doc]) -> None:
        if not slices:
            return
        docs = []
        for piece in slices:
            doc = {"_id": piece["id"], "state": piece.get("state", "queued"),
                   "first_record_number": piece["first_record_number"],
                   "record_count": piece["record_count"], "serializer": piece["serializer"],
                   "data": bytes(piece["data"]), "failure_count": 0}
            docs.append(doc)
        try:
            with self._guard:
                self._inputs(job_id, category, prepare=True).insert_many(docs, ordered=True)
                self._touch()
        except BulkWriteError as exc:
            raise StoreError(f"cannot insert slices of job {job_id} ({category}): "
                             f"{exc.details.get('writeErrors', [{}])[0].get('errmsg', exc)}") from None

    def next_slice_id(self, job_id: str, category: str) -> int:
        highest = 0
        with self._guard:
            for collection in (self._inputs(job_id, category), self._outputs(job_id, category)):
                doc = collection.find_one({}, {"_id": 1}, sort=[("_id", -1)])
                if doc is not None:
                    highest = max(highest, doc["_id"])
        return highest + 1

    def claim_slices(
        self, job_id: str, category: str, worker_name: str, now: dt.datetime, limit: int
    ) -> list[Doc]:
        """The lowest queued ids: read, take with one conditional ``update_many``, read back.

        Claimers racing for the same ids each keep only what their update took; one that
        took nothing while slices remain tries the next ones.
        """
        if limit <= 0:
            return []
        now = to_utc(now)
        inputs = self._inputs(job_id, category)
        take = {"$set": {"state": "running", "worker_name": worker_name, "started_at": now}}
        while True:
            with self._guard:
                if limit == 1:
                    doc = inputs.find_one_and_update({"state": "queued"}, take, sort=[("_id", 1)],
                                                     return_document=ReturnDocument.AFTER)
                    return [self._input_slice(doc, job_id, category)] if doc else []
                ids = [doc["_id"] for doc in
                       inputs.find({"state": "queued"}, {"_id": 1}).sort("_id", 1).limit(limit)]
                if not ids:
                    return []
                taken = []
                if inputs.update_many({"_id": {"$in": ids}, "state": "queued"}, take).modified_count:
                    # what this worker took of them: they were all queued a moment ago
                    taken = list(inputs.find({"_id": {"$in": ids}, "state": "running",
                                              "worker_name": worker_name}).sort("_id", 1))
            if taken:
                return [self._input_slice(doc, job_id, category) for doc in taken]

    def release_slices(self, job_id: str, category: str, ids: Sequence[int]) -> None:
        if ids:
            with self._guard:
                self._inputs(job_id, category).update_many(
                    {"_id": {"$in": list(ids)}},
                    {"$set": {"state": "queued"}, "$unset": {"worker_name": "", "started_at": ""}},
                )
                self._touch()

    def _write_outputs(self, job_id: str, by_category: dict[str, list[Doc]]) -> None:
        for name, docs in by_category.items():
            outputs = self._outputs(job_id, name)
            if len(docs) == 1 or self._mock:
                # mongomock 4.3 cannot take pymongo 4.9+'s ReplaceOne in a bulk_write
                for doc in docs:
                    outputs.replace_one({"_id": doc["_id"]}, doc, upsert=True)
            else:
                outputs.bulk_write(
                    [pymongo.ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs],
                    ordered=False,
                )

    def complete_slices(self, job_id: str, category: str, done: Sequence[tuple[int, dict[str, Doc]]],
                        worker_name: str | None = None) -> list[int]:
        """Upsert the outputs (keyed by slice id), then delete the input slices.

        A crash in between leaves the input slice to be processed again; its outputs are
        then replaced, never added twice. With a worker name, only the slices that worker
        still holds are completed; the others' ids come back.
        """
        if not done:
            return []
        inputs = self._inputs(job_id, category)
        with self._guard:
            if worker_name is not None:
                held = {doc["_id"] for doc in inputs.find(
                    {"_id": {"$in": [i for i, _ in done]}, "state": "running", "worker_name": worker_name},
                    {"_id": 1})}
                kept = [(i, outputs) for i, outputs in done if i in held]
            else:
                kept = list(done)
            by_category: dict[str, list[Doc]] = {}
            for slice_id, outputs in kept:
                for name, out in outputs.items():
                    by_category.setdefault(name, []).append(self._output_doc(slice_id, out))
            self._write_outputs(job_id, by_category)
            inputs.delete_many({"_id": {"$in": [i for i, _ in kept]}})
        kept_ids = {i for i, _ in kept}
        return [i for i, _ in done if i not in kept_ids]

    def fail_slice(
        self, job_id: str, category: str, slice_id: int, processing_record_number: int,
        exception: Doc, outputs: dict[str, Doc], worker_name: str | None = None,
    ) -> bool:
        fence = {} if worker_name is None else {"state": "running", "worker_name": worker_name}
        with self._guard:
            failed = self._inputs(job_id, category).update_one(
                {"_id": slice_id, **fence},
                {"$set": {"state": "failed", "processing_record_number": processing_record_number,
                          "exception": _encode(exception)},
                 "$unset": {"worker_name": ""}, "$inc": {"failure_count": 1}},
            ).matched_count
            if failed:
                self._write_outputs(job_id, {name: [self._output_doc(slice_id, out)]
                                             for name, out in outputs.items()})
        return bool(failed)

    def retry_failed_slices(self, job_id: str, category: str) -> int:
        with self._guard:
            changed = self._inputs(job_id, category).update_many(
                {"state": "failed"},
                {"$set": {"state": "queued"}, "$unset": {"worker_name": "", "started_at": ""}},
            ).modified_count
            if changed:
                self._touch()
        return changed

    def _requeue(self, collection: Any, worker_or_server: str) -> int:
        return collection.update_many(
            {"state": "running", **_worker_match(worker_or_server)},
            {"$set": {"state": "queued"}, "$unset": {"worker_name": "", "started_at": ""}},
        ).modified_count

    def requeue_running_slices(self, worker_or_server: str) -> int:
        with self._guard:
            changed = sum(self._requeue(self.db[name], worker_or_server)
                          for name, _ in self._collections("inputs"))
            if changed:
                self._touch()
        return changed

    def requeue_job_slices(self, job_id: str, category: str, worker_or_server: str) -> int:
        with self._guard:
            changed = self._requeue(self._inputs(job_id, category), worker_or_server)
            if changed:
                self._touch()
        return changed

    def count_slices(self, job_id: str, category: str) -> dict[str, tuple[int, int]]:
        pipeline = [{"$group": {"_id": "$state", "slices": {"$sum": 1},
                                "records": {"$sum": "$record_count"}}}]
        with self._guard:
            rows = list(self._inputs(job_id, category).aggregate(pipeline))
        return {row["_id"]: (row["slices"], row["records"]) for row in rows}

    def count_output_slices(self, job_id: str, category: str) -> tuple[int, int]:
        pipeline = [{"$group": {"_id": None, "slices": {"$sum": 1},
                                "records": {"$sum": "$record_count"}}}]
        with self._guard:
            rows = list(self._outputs(job_id, category).aggregate(pipeline))
        return (rows[0]["slices"], rows[0]["records"]) if rows else (0, 0)

    def read_input_slices(
        self, job_id: str, category: str, state: str | None = None, after_id: int = 0,
        limit: int = 100,
    ) -> list[Doc]:
        if limit <= 0:
            return []
        query: Doc = {"_id": {"$gt": after_id}}
        if state:
            query["state"] = state
        with self._guard:
            docs = list(self._inputs(job_id, category).find(query).sort("_id", 1).limit(limit))
        return [self._input_slice(doc, job_id, category) for doc in docs]

    def update_input_slice(self, job_id: str, category: str, slice_id: int, changes: Doc) -> bool:
        unknown = set(changes) - _UPDATABLE_SLICE_FIELDS
        if unknown:
            raise StoreError(f"cannot change slice fields {sorted(unknown)}")
        if not changes:
            with self._guard:
                return self._inputs(job_id, category).count_documents({"_id": slice_id}) > 0
        with self._guard:
            matched = self._inputs(job_id, category).update_one(
                {"_id": slice_id}, {"$set": _encode(dict(changes))}).matched_count
            if matched:
                self._touch()
        return matched > 0

    def read_output_slices(
        self, job_id: str, category: str, after_id: int = 0, limit: int = 100
    ) -> list[Doc]:
        if limit <= 0:
            return []
        with self._guard:
            docs = list(self._outputs(job_id, category).find({"_id": {"$gt": after_id}})
                        .sort("_id", 1).limit(limit))
        return [self._output_slice(doc, job_id, category) for doc in docs]

    def output_slices_for(self, job_id: str, slice_id: int) -> dict[str, Doc]:
        found: dict[str, Doc] = {}
        with self._guard:
            for name, category in self._collections("outputs", job_id):
                doc = self.db[name].find_one({"_id": slice_id})
                if doc is not None:
                    found[category] = self._output_slice(doc, job_id, category)
        return found

    def delete_slices(self, job_id: str, category: str | None = None, kind: str | None = None,
                      from_id: int = 0) -> int:
        """Delete slices; whole collections are dropped, as Rocket Job drops them."""
        kinds = {"input": ["inputs"], "output": ["outputs"]}.get(kind or "", ["inputs", "outputs"])
        deleted = 0
        with self._guard:
            for which in kinds:
                if category is None:
                    names = [name for name, _ in self._collections(which, job_id)]
                else:
                    names = [self._name(which, job_id, category)]
                for name in names:
                    collection = self.db[name]
                    if from_id > 0:
                        deleted += collection.delete_many({"_id": {"$gte": from_id}}).deleted_count
                    else:
                        deleted += collection.count_documents({})
                        collection.drop()
                        self._prepared.discard(name)
        return deleted

    # -- dirmon entries -----------------------------------------------------------------
    def save_dirmon_entry(self, doc: Doc) -> None:
        stored = _fields(doc)
        try:
            with self._guard:
                self.db[DIRMON].replace_one({"_id": _oid(doc["_id"])}, stored, upsert=True)
        except DuplicateKeyError:
            raise StoreError(f"another dirmon entry already watches {doc['pattern']!r}") from None

    def find_dirmon_entries(self, filter: Filter | None = None) -> list[Doc]:
        with self._guard:
            docs = list(self.db[DIRMON].find(translate(filter)).sort([("name", 1), ("_id", 1)]))
        return [_from_stored(doc) for doc in docs]

    def delete_dirmon_entry(self, entry_id: str) -> bool:
        with self._guard:
            return self.db[DIRMON].delete_one({"_id": _oid(entry_id)}).deleted_count > 0

    # -- servers ------------------------------------------------------------------------
    @staticmethod
    def _server(doc: Doc) -> Doc:
        doc.pop("_id", None)
        decoded: Doc = _decode(doc)
        return decoded

    def save_server(self, doc: Doc) -> None:
        stored = _fields(doc)
        for attempt in range(3):
            try:
                with self._guard:
                    self.db[SERVERS].replace_one({"name": doc["name"]}, stored, upsert=True)
                return
            except DuplicateKeyError:  # two upserts of one new name raced: the loser replaces
                if attempt == 2:
                    raise StoreError(f"cannot save server {doc['name']!r}") from None

    def find_server(self, name: str) -> Doc | None:
        with self._guard:
            doc = self.db[SERVERS].find_one({"name": name})
        return None if doc is None else self._server(doc)

    def find_servers(self) -> list[Doc]:
        with self._guard:
            return [self._server(doc) for doc in self.db[SERVERS].find().sort("name", 1)]

    def update_server(self, name: str, changes: Doc, where: Filter | None = None) -> bool:
        query = _combine([{"name": name}, translate(where)])
        with self._guard:
            if not changes:
                return self.db[SERVERS].count_documents(query, limit=1) > 0
            return self.db[SERVERS].update_one(query, {"$set": _fields(changes)}).matched_count > 0

    def delete_server(self, name: str) -> bool:
        with self._guard:
            return self.db[SERVERS].delete_one({"name": name}).deleted_count > 0


__all__ = ["MongoStore", "translate"]


_SINGLETON_STATES = ("queued", "running", "paused")


def _raise_taken(doc: Doc) -> NoReturn:
    """The singleton index refused the job: ``SingletonTaken``."""
    raise SingletonTaken(f"job {doc.get('_id')}: another queued, running or paused job of "
                         f"{doc.get('_singleton') or doc.get('_type') or 'its class'} exists") from None
