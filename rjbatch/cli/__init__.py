"""The ``rjbatch`` command line.

Every command takes ``--database URL`` and ``--jobs PATH``. Errors print one line on
stderr naming what is at fault and exit non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import rjbatch
from rjbatch import config
from rjbatch.batch import BatchJob
from rjbatch.codecs.errors import CodecError
from rjbatch.errors import ConfigurationError, InvalidTransition, JobNotFound, RjbatchError
from rjbatch.job import Action, Job, registry

if TYPE_CHECKING:
    from rich.console import Console

Command = Callable[[argparse.Namespace], int]
_commands: dict[str, Command] = {}


class UsageError(RjbatchError):
    """The command line is wrong in a way argparse cannot tell."""


def command(name: str) -> Callable[[Command], Command]:
    def register(function: Command) -> Command:
        _commands[name] = function
        return function

    return register


# -- shared helpers -------------------------------------------------------------------
def job_class(name: str) -> type[Job]:
    """A job class named on the command line: ``ReverseJob``, ``module:Class`` or
    ``module.Class``. A bare name that loaded classes of two modules share is refused
    (``registry.AmbiguousJobClass``, naming both) rather than taking either."""
    cls = registry.by_name(name)
    if cls is None:
        import rjbatch.jobs  # noqa: F401 - the included jobs are named plainly too (HousekeepingJob)

        cls = registry.by_name(name)
    if cls is None:
        known = ", ".join(sorted({c.__name__ for c in registry.all_classes()
                                  if not c.__module__.startswith("rjbatch.")})) or "none loaded"
        raise UsageError(f"unknown job class {name!r} (known: {known}; load yours with --jobs PATH)")
    return cls


def parse_assignments(pairs: Sequence[str], cls: type[Job]) -> dict[str, Any]:
    """``--set field=value`` pairs; JSON values are decoded, anything else stays text."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--set expects field=value, got {pair!r}")
        if name not in cls.field_names():
            raise UsageError(f"{cls.__name__} has no field {name!r}")
        try:
            values[name] = json.loads(text)
        except json.JSONDecodeError:
            values[name] = text
    return values


def job_values(args: argparse.Namespace, cls: type[Job]) -> dict[str, Any]:
    """The field values of ``--set`` and ``--priority``."""
    values = parse_assignments(args.set or [], cls)
    if args.priority is not None:
        values["priority"] = args.priority
    return values


def find_job(job_id: str) -> Job:
    import rjbatch.batch  # noqa: F401 - so stored batch jobs resolve to BatchJob at least

    return Job.find(job_id)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


# -- commands -------------------------------------------------------------------------
@command("create")
def cmd_create(args: argparse.Namespace) -> int:
    cls = job_class(args.job)
    job = cls.create(**job_values(args, cls))
    print(job.id)
    return 0


@command("jobs")
def cmd_jobs(args: argparse.Namespace) -> int:
    every = Job.query()
    if args.job_class:
        every = every.where({"_class": args.job_class})
    if args.state == "scheduled":
        query = every.scheduled()
    elif args.state:
        query = every.where(state=args.state)
    else:
        query = every
    jobs = list(query.order_by("-_id").limit(args.limit))
    if args.json:
        for job in jobs:
            print(json.dumps(job.status(), default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for heading in ("id", "class", "state", "priority", "created", "duration", "description"):
        table.add_column(heading)
    for job in jobs:
        table.add_row(
            job.id, type(job).__name__, job.display_state, str(job.priority),
            job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else "",
            rjbatch.job.seconds_as_duration(job.seconds), job.description or "",
        )
    if jobs:
        Console(width=200 if not sys.stdout.isatty() else None).print(table)
    counts = every.counts_by_state()  # of the class asked for, in every state
    print(", ".join(f"{state}: {n}" for state, n in sorted(counts.items())) or "no jobs")
    return 0


@command("show")
def cmd_show(args: argparse.Namespace) -> int:
    print_json(find_job(args.job_id).status())
    return 0


def _action(action: Action) -> Command:
    def run(args: argparse.Namespace) -> int:
        job = find_job(args.job_id)
        job.act(action)
        print(f"{action.replace('_', '-')}: {type(job).__name__} {job.id} is now "
              f"{'destroyed' if action == Action.DESTROY else job.state}")
        return 0

    return run


for _action_name in (Action.RETRY, Action.PAUSE, Action.RESUME, Action.ABORT, Action.DESTROY, Action.RUN_NOW):
    _commands[_action_name.replace("_", "-")] = _action(_action_name)


@command("work")
def cmd_work(args: argparse.Namespace) -> int:
    """Run queued jobs in this process until none is left.

    The process holds its jobs under a server record of its own (``host:pid:work``) that
    heart-beats: killed while it runs a job, it becomes a zombie whose job any live
    server, or the next ``rjbatch work``, requeues. On the way out (done, Ctrl-C,
    SIGTERM) it requeues whatever it still held and removes the record.
    """
    import signal
    import threading

    from rjbatch.batch.upload import fail_stalled_uploads
    from rjbatch.servers import HeldServer
    from rjbatch.worker.inline import work_next

    fail_stalled_uploads()  # a job whose uploader died would wait for it for ever
    done = failed = 0
    previous = None
    if threading.current_thread() is threading.main_thread():
        def exit_on_sigterm(signum: int, frame: Any) -> None:
            raise SystemExit(128 + signum)

        # SIGTERM ends the process through the with and finally below, as Ctrl-C does
        previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        with HeldServer(config.get_store(), getattr(args, "name", None)) as server:
            while args.limit is None or done < args.limit:
                server.wait_while_paused()
                if server.stop_requested:
                    print(f"stop requested through the store: {server.name} stops", file=sys.stderr)
                    break
                job = work_next(server.worker_name)
                if job is None:
                    break
                done += 1
                if job.is_failed:
                    failed += 1
                    print(f"failed: {type(job).__name__} {job.id}: {job.exception}", file=sys.stderr)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print(f"ran {done} job(s), {failed} failed")
    return 1 if failed else 0


def batch_class(name: str) -> type[BatchJob]:
    from rjbatch.batch import BatchJob

    cls = job_class(name)
    if not issubclass(cls, BatchJob):
        raise UsageError(f"{cls.__name__} is not a batch job (it cannot take a file)")
    return cls


def upload_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in ("delimiter", "encoding", "encode_replace", "encode_cleaner", "stream_mode"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = _unescaped(value) if name == "delimiter" else value
    if getattr(args, "streams", None) is not None:
        options["streams"] = [s for s in args.streams.split(",") if s]
    return options


def _unescaped(delimiter: str) -> str:
    """``--delimiter '\\t'`` is a tab: backslash escapes as in Python."""
    try:
        return delimiter.encode().decode("unicode_escape")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--delimiter {delimiter!r}: not a valid escape ({exc.reason})") from None


@command("upload")
def cmd_upload(args: argparse.Namespace) -> int:
    cls = batch_class(args.job)
    job = cls(**job_values(args, cls))
    job.save()  # saved first: workers may start while the file streams in
    try:
        count = job.upload(args.file, **upload_options(args))
    except BaseException:
        job.destroy()
        raise
    print(job.id)
    print(f"uploaded {count:,} records into {cls.__name__} {job.id}\n"
          f"  watch it:    rjbatch show {job.id}   (workers: rjbatch worker, or rjbatch work)\n"
          f"  download it: rjbatch download {job.id} OUTPUT_FILE   (or: rjbatch download)",
          file=sys.stderr)
    return 0


@command("download")
def cmd_download(args: argparse.Namespace) -> int:
    job_id, target = _download_arguments(args.job_id, args.file)
    job = find_job(job_id) if job_id else _latest_completed(args.job)
    if not isinstance(job, BatchJob):
        raise UsageError(f"job {job.id} ({type(job).__name__}) is not a batch job: it has no output")
    if not job_id:
        print(f"downloading {type(job).__name__} {job.id} (completed {job.completed_at})", file=sys.stderr)
    elif not job.is_completed and not job.is_queued and not job.is_running:
        print(f"note: {type(job).__name__} {job.id} is {job.state}: its output holds the records processed "
              "so far", file=sys.stderr)
    if target is None:  # standard output, in the category's own format
        count = job.download(sys.stdout.buffer, category=args.category, file_name=args.format_name)
        sys.stdout.flush()
    else:
        count = job.download(target, category=args.category)
    print(f"wrote {count:,} records to {target or 'standard output'}", file=sys.stderr)
    return 0


def _download_arguments(first: str | None, second: str | None) -> tuple[str | None, str | None]:
    """``[JOB_ID] [FILE]``: a first word that is not a job id is the file; ``-`` (or no
    file) is standard output."""
    if first is not None and second is None and not _is_job_id(first):
        first, second = None, first
    return first, None if second == "-" else second


def _is_job_id(text: str) -> bool:
    return len(text) == 24 and all(c in "0123456789abcdef" for c in text.lower())


def _latest_completed(class_name: str | None) -> BatchJob:
    cls = batch_class(class_name) if class_name else BatchJob
    job = cls.completed().order_by("-completed_at").first()
    if job is None:
        named = f" {cls.__name__}" if class_name else ""
        raise JobNotFound(f"no completed{named} batch job to download (see rjbatch jobs --state completed)")
    return job


@command("failed")
def cmd_failed(args: argparse.Namespace) -> int:
    """List, show, replace or delete a batch job's failed records (then: rjbatch retry)."""
    job = find_job(args.job_id)
    if not isinstance(job, BatchJob):
        raise UsageError(f"job {job.id} ({type(job).__name__}) is not a batch job: it has no records")
    if args.action == "list":
        found = list(job.input.failed_records())
        if args.json:
            for failed in found:
                print(json.dumps({"key": failed.key, "record_number": failed.record_number,
                                  "record": failed.record, "exception": failed.exception.class_name,
                                  "message": failed.exception.message}, default=str, ensure_ascii=False))
            return 0
        if not found:
            print(f"{type(job).__name__} {job.id} has no failed records", file=sys.stderr)
        for failed in found:
            print(f"{failed.key}\trecord {failed.record_number}\t{failed.exception.class_name}: "
                  f"{failed.exception.message}\t{_shown(failed.record)[:100]}")
        return 0
    if args.key is None:
        raise UsageError(f"rjbatch failed {job.id} {args.action} needs the KEY that 'rjbatch failed {job.id}' lists")
    failed = job.input.failed_record(args.key)
    if args.action == "show":
        print(_shown(failed.record))
        exception = failed.exception
        print(f"record {failed.record_number}: {exception.class_name}: {exception.message}", file=sys.stderr)
        for line in exception.backtrace or []:
            print(f"  {line}", file=sys.stderr)
        return 0
    if args.action == "delete":
        job.input.delete_failed_record(failed)
        print(f"deleted record {failed.record_number}; run: rjbatch retry {job.id}", file=sys.stderr)
        return 0
    if args.value is None:
        raise UsageError("replace needs the new VALUE ('-' reads it from standard input)")
    text = sys.stdin.read().rstrip("\n") if args.value == "-" else args.value
    job.input.update_failed_record(failed, _replacement(text, failed.record, args.json))
    print(f"replaced record {failed.record_number}; run: rjbatch retry {job.id}", file=sys.stderr)
    return 0


def _shown(record: Any) -> str:
    """A record as text: lines as they are, rows and documents as JSON."""
    if isinstance(record, str):
        return record
    return json.dumps(record, default=str, ensure_ascii=False)


def _replacement(text: str, old: Any, as_json: bool) -> Any:
    """A line replaces a line as given; anything else (a row, a value) is read as JSON."""
    if isinstance(old, str) and not as_json:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the new value is not valid JSON ({exc}); the failed record is "
                         f"{_shown(old)[:100]}") from None


@command("process")
def cmd_process(args: argparse.Namespace) -> int:
    from rjbatch.cli.process import ProcessOptions, process_file

    cls = batch_class(args.job)
    values = job_values(args, cls)
    if not os.path.exists(args.file) and "://" not in args.file:
        raise UsageError(f"input file {args.file} does not exist")
    result = process_file(ProcessOptions(
        job_class=cls, source=args.file, output=args.output, workers=args.workers or 0,
        values=values, category=args.category, jobs=args.jobs, keep=args.keep,
        progress=sys.stderr.isatty() and not args.quiet, upload_options=upload_options(args),
    ))
    job = result.job
    rate = result.records_uploaded / result.seconds if result.seconds else 0
    if job.is_completed:
        written = "; ".join(f"{name}: {count:,} to {path}" for name, (path, count) in result.outputs.items())
        print(f"{cls.__name__} {job.id}: {result.records_uploaded:,} records in, {result.seconds:.1f} s "
              f"({rate:,.0f} records/s); written: {written or 'nothing (no output category)'}",
              file=sys.stderr)
        return 0
    print(f"rjbatch: failed: {cls.__name__} {job.id} is {job.state}: {job.exception}", file=sys.stderr)
    for record, exception in list(job.input.failed_records())[:5]:
        print(f"  record {exception.record_number}: {exception.class_name}: {exception.message}: "
              f"{str(record)[:80]!r}", file=sys.stderr)
    print(f"  (kept: rjbatch show {job.id}; fix and run rjbatch retry {job.id})", file=sys.stderr)
    return 1


@command("vacuum")
def cmd_vacuum(args: argparse.Namespace) -> int:
    """Give back the space of removed jobs and slices (a SQLite file never shrinks by itself)."""
    print(config.get_store().vacuum())
    return 0


@command("cron")
def cmd_cron(args: argparse.Namespace) -> int:
    from rjbatch import cron

    after = None
    if args.after:
        from rjbatch.job.fields import parse_datetime

        after = parse_datetime(args.after)
    try:
        times = cron.next_times(args.expression, after, args.count)
    except cron.InvalidCron as exc:
        raise UsageError(str(exc)) from None
    for moment in times:
        print(moment.isoformat().replace("+00:00", "Z"))
    return 0


@command("dirmon")
def cmd_dirmon(args: argparse.Namespace) -> int:
    from rjbatch.jobs import DirmonEntry

    if args.action == "list":
        entries = DirmonEntry.all()
        if not entries:
            print("no dirmon entries")
        for entry in entries:
            reason = f"\t{entry.exception.message}" if entry.state == "failed" and entry.exception else ""
            print(f"{entry.name}\t{entry.state}\t{entry.pattern}\t{entry.job_class_name}\t"
                  f"archive={entry.archive_directory}\t{json.dumps(entry.properties)}{reason}")
        return 0
    if args.action == "add":
        if not (args.name and args.pattern and args.job):
            raise UsageError("dirmon add needs NAME --pattern GLOB --job CLASS")
        cls = job_class(args.job)
        entry = DirmonEntry(name=args.name, pattern=args.pattern, job_class_name=cls.__name__,
                            properties=parse_assignments(args.set or [], cls),
                            archive_directory=args.archive)
        entry.save()
        if args.enable:
            entry.enable()
            _start_scanner()
        print(f"dirmon entry {entry.name} ({entry.id}) is {entry.state}")
        return 0
    if not args.name:
        raise UsageError(f"dirmon {args.action} needs the entry's NAME")
    entry = DirmonEntry.find(args.name)
    if args.action == "remove":
        entry.destroy()
        print(f"dirmon entry {entry.name} removed")
    else:
        getattr(entry, args.action)()
        print(f"dirmon entry {entry.name} is {entry.state}")
        if args.action == "enable":
            _start_scanner()
    return 0


def _start_scanner() -> None:
    from rjbatch.jobs.dirmon import ensure_scanner

    scanner = ensure_scanner()
    if scanner is not None:
        print(f"started the directory monitor job {scanner.id}: workers run it now, then every "
              f"{scanner.check_seconds:g} s; a file is taken once two scans see it the same size",
              file=sys.stderr)


@command("web")
def cmd_web(args: argparse.Namespace) -> int:
    import importlib.util

    # forms need python-multipart: without it the server would start and fail later
    missing = [name for name, modules in (("uvicorn", ("uvicorn",)), ("python-multipart", ("python_multipart",
                                                                                            "multipart")))
               if not any(importlib.util.find_spec(module) for module in modules)]
    try:
        from rjbatch.web import serve
    except ImportError as exc:
        missing.append(str(exc))
    if missing:
        raise UsageError(f"Mission Control needs its extra: pip install 'rjbatch[web]' (missing: "
                         f"{', '.join(missing)})")
    users = {}
    for entry in args.user or []:
        name, _, rest = entry.partition(":")
        password, _, role = rest.rpartition(":")
        if not (name and password and role):
            raise UsageError(f"--user expects NAME:PASSWORD:ROLE, got {entry!r}")
        users[name] = (password, role)
    from rjbatch.web import security

    try:
        if getattr(args, "users", None):
            users.update(security.load_users(args.users))
        auth = security.load_callable(args.auth) if getattr(args, "auth", None) else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not users and auth is None and not args.insecure_local:
        raise UsageError("Mission Control needs users or an auth hook: --users FILE, --auth MODULE:FUNCTION, "
                         "or --insecure-local (every request an admin, served on 127.0.0.1 only)")
    secret_key = os.environ.get("RJBATCH_WEB_SECRET_KEY") or None
    if args.dirmon_whitelist:
        missing = [folder for folder in args.dirmon_whitelist if not os.path.isdir(folder)]
        if missing:
            raise UsageError(f"--dirmon-whitelist {missing[0]}: no such folder")
        config.configure(dirmon_whitelist=args.dirmon_whitelist)
    serve(host=args.host, port=args.port, insecure_local=args.insecure_local, users=users or None,
          auth=auth, secret_key=secret_key, secure_cookies=args.secure_cookies,
          log_level="warning" if args.quiet else "info")
    return 0


@command("worker")
def cmd_worker(args: argparse.Namespace) -> int:
    from rjbatch import log
    from rjbatch.worker.server import ServerOptions, run_server

    for name in ("heartbeat_seconds", "max_poll_seconds", "re_check_seconds",
                 "zombie_heartbeats", "shutdown_grace_seconds"):
        value = getattr(args, name, None)
        if value is not None:
            config.configure(**{name: value})
    level = logging.DEBUG if args.debug else getattr(logging, args.log_level.upper())
    os.environ["RJBATCH_LOG_FORMAT"] = args.log_format  # the worker processes log the same way
    log.setup(level)
    options = ServerOptions(
        name=args.name, workers=args.workers or 0, include=args.filter, exclude=args.exclude,
        jobs=args.jobs, start_method=args.start_method, log_level=level,
    )
    return run_server(options)


@command("servers")
def cmd_servers(args: argparse.Namespace) -> int:
    from rjbatch import servers

    store = config.get_store()
    if args.action != "list":
        asked = servers.request(store, args.action, args.server)
        if not asked:
            target = f"server {args.server!r}" if args.server else "any server"
            raise UsageError(f"no {target} can be asked to {args.action} now")
        for name in asked:
            print(f"{args.action}: asked {name}")
        return 0
    rows = servers.all_servers(store)
    if not rows:
        print("no servers")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for heading in ("name", "state", "workers", "started", "heartbeat", "zombie"):
        table.add_column(heading)
    for server in rows:
        age = server.heartbeat_age
        table.add_row(
            server.name, server.state, f"{len(server.workers)}/{server.max_workers}",
            server.started_at.strftime("%Y-%m-%d %H:%M:%S") if server.started_at else "",
            f"{age.total_seconds():.1f}s ago" if age is not None else "never",
            "yes" if server.is_zombie else "",
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    return 0


# -- parser ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    # SUPPRESS: an option given before the command is not reset by the command's parser
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--database", help="database URL (default: RJBATCH_DATABASE, "
                        "[tool.rjbatch] database, then sqlite:///rjbatch.db)")
    common.add_argument("--jobs", action="append", metavar="PATH_OR_MODULE",
                        help="import job classes from a module, .py file or folder (repeatable)")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")

    parser = argparse.ArgumentParser(prog="rjbatch", parents=[common],
                                     description="Durable jobs and batch processing of large files.")
    parser.add_argument("--version", action="version", version=f"rjbatch {rjbatch.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("create", parents=[common], help="enqueue a job; prints its id")
    p.add_argument("job", metavar="CLASS")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE")
    p.add_argument("--priority", type=int)

    p = sub.add_parser("jobs", parents=[common], help="list jobs")
    p.add_argument("--state", choices=[*(str(state) for state in rjbatch.job.states.STATES), "scheduled"])
    p.add_argument("--class", dest="job_class", metavar="CLASS")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true", help="one JSON document per line")

    for name, text in (("show", "show a job's status"), ("retry", "retry a failed job"),
                       ("pause", "pause a job"), ("resume", "resume a paused job"),
                       ("abort", "abort a job"), ("destroy", "destroy a job"),
                       ("run-now", "run a scheduled job at once")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("job_id", metavar="JOB_ID")

    p = sub.add_parser("work", parents=[common], help="run queued jobs here until none is left")
    p.add_argument("--limit", type=int)

    file_options = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    file_options.add_argument("--streams", metavar="LIST",
                              help="streams instead of the file name's (gz,enc; '' for none)")
    file_options.add_argument("--delimiter", help="line delimiter (default: detect \\r\\n, \\n or \\r)")
    file_options.add_argument("--encoding", help="the file's encoding (default utf-8)")
    file_options.add_argument("--encode-replace", help="replace undecodable bytes with this text")
    file_options.add_argument("--encode-cleaner", choices=("printable", "replace_non_printable"),
                              help="drop (printable) or replace (replace_non_printable, with "
                                   "--encode-replace) characters that are not printable (default: keep all)")
    file_options.add_argument("--stream-mode", choices=("line", "array", "hash"),
                              help="records as lines (default), rows as lists, or rows as dicts")

    p = sub.add_parser("upload", parents=[common, file_options],
                       help="create a batch job from a file; prints its id")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--job", required=True, metavar="CLASS")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE")
    p.add_argument("--priority", type=int)

    p = sub.add_parser(
        "download", parents=[common], help="write a batch job's output to a file",
        description="Write one output category of a batch job to FILE (standard output without "
                    "one), through the codecs and format its name picks. Without JOB_ID: the most "
                    "recently completed batch job (of --job CLASS).",
        epilog="example: rjbatch download --category invalid")
    p.add_argument("job_id", nargs="?", metavar="JOB_ID", help="default: the latest completed batch job")
    p.add_argument("file", nargs="?", metavar="FILE", help="default: standard output")
    p.add_argument("--category", default="main", help="output category (default: main)")
    p.add_argument("--job", metavar="CLASS", help="without JOB_ID: the latest completed job of this class")
    p.add_argument("--format", dest="format_name", metavar="NAME",
                   help="to standard output: a file name whose extensions pick the format (out.jsonl)")

    p = sub.add_parser(
        "failed", parents=[common], help="list, show, replace or delete a batch job's failed records",
        description="A batch job's failed records: list them (KEY, record number, exception, record), "
                    "show one with its backtrace, replace it with fixed data, or delete it; then "
                    "rjbatch retry JOB_ID runs the failed slices again from their failed record.",
        epilog="example: rjbatch failed JOB_ID replace 7 'ann,2,3' && rjbatch retry JOB_ID")
    p.add_argument("job_id", metavar="JOB_ID")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "replace", "delete"))
    p.add_argument("key", nargs="?", type=int, metavar="KEY", help="a key that the list shows")
    p.add_argument("value", nargs="?", metavar="VALUE",
                   help="replace: the new record ('-': standard input); a line for a line, else JSON")
    p.add_argument("--json", action="store_true", help="list as JSON lines; replace: VALUE is JSON")

    p = sub.add_parser("process", parents=[common, file_options],
                       help="upload a file, process it with local workers, download the output")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--job", required=True, metavar="CLASS")
    p.add_argument("--output", "-o", required=True, metavar="FILE")
    p.add_argument("--workers", "-w", type=int, help="worker processes (default: one per core)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE")
    p.add_argument("--priority", type=int)
    p.add_argument("--category", default="main",
                   help="download only this category, to --output (default: main, and the others beside it)")
    p.add_argument("--keep", action="store_true", help="keep the job after it completes")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    p = sub.add_parser("web", parents=[common], help="Mission Control, the web interface")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--user", action="append", metavar="NAME:PASSWORD:ROLE",
                   help="a user (roles: admin editor operator manager dirmon user view)")
    p.add_argument("--users", metavar="FILE",
                   help="YAML/JSON users file: NAME: {password: HASH, role: ROLE}")
    p.add_argument("--auth", metavar="MODULE:FUNCTION",
                   help="auth hook: function(request) -> (username, role) or None")
    p.add_argument("--insecure-local", action="store_true",
                   help="no login, everyone is admin: only on 127.0.0.1")
    p.add_argument("--dirmon-whitelist", action="append", metavar="DIR",
                   help="a folder dirmon entries saved from the web may watch (repeatable; "
                        "default: RJBATCH_DIRMON_WHITELIST; none: no entry can be saved from the web)")
    p.add_argument("--secure-cookies", action="store_true",
                   help="mark the session cookie Secure: browsers send it over HTTPS only")
    p.add_argument("--quiet", "-q", action="store_true", help="log warnings only")

    p = sub.add_parser("worker", parents=[common], help="run a server with N worker processes")
    p.add_argument("--workers", "-w", type=int, help="worker processes (default: one per core)")
    p.add_argument("--filter", "--include", dest="filter", metavar="REGEX",
                   help="only run job classes matching this case-insensitive regex "
                        "(on the class name or module.Class: ^ReportJob$ works)")
    p.add_argument("--exclude", metavar="REGEX", help="never run job classes matching this regex")
    p.add_argument("--name", help="server name (default: host:pid)")
    p.add_argument("--start-method", choices=("auto", "spawn", "fork", "forkserver"), default="auto",
                   help="auto (default): fork the first workers, spawn replacements")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument("--log-format", default=os.environ.get("RJBATCH_LOG_FORMAT", "text"), choices=("text", "json"),
                   help="text lines (default; rich on a terminal) or one JSON object a line")
    p.add_argument("--heartbeat-seconds", type=float)
    p.add_argument("--max-poll-seconds", type=float)
    p.add_argument("--re-check-seconds", type=float)
    p.add_argument("--zombie-heartbeats", type=int)
    p.add_argument("--shutdown-grace-seconds", type=float)

    p = sub.add_parser("cron", parents=[common], help="cron expressions: next occurrences")
    p.add_argument("what", choices=("next",))
    p.add_argument("expression", metavar="EXPR")
    p.add_argument("--count", "-n", type=int, default=5)
    p.add_argument("--after", metavar="ISO_TIME", help="occurrences after this time (default: now)")

    p = sub.add_parser("dirmon", parents=[common], help="directory monitor entries")
    p.add_argument("action", choices=("list", "add", "enable", "disable", "remove"))
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--pattern", metavar="GLOB", help="files to watch (** for sub-folders)")
    p.add_argument("--job", metavar="CLASS", help="the batch job each file is uploaded into")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="properties of the job")
    p.add_argument("--archive", metavar="FOLDER", help="where taken files go (default: archive)")
    p.add_argument("--enable", action="store_true", help="enable the new entry at once")

    sub.add_parser("vacuum", parents=[common], help="give back the space of removed jobs and slices")

    p = sub.add_parser("servers", parents=[common], help="list servers, or pause/resume/stop them")
    p.add_argument("action", nargs="?", default="list", choices=("list", "pause", "resume", "stop"))
    p.add_argument("server", nargs="?", metavar="NAME", help="a server name or host (default: all)")

    for extend in _parser_extensions:
        extend(sub, common)
    for name, command_parser in sub.choices.items():
        _explain(name, command_parser)
    return parser


_parser_extensions: list[Callable[[Any, argparse.ArgumentParser], None]] = []

_SET = "a field of the job, FIELD=VALUE (JSON values are decoded; repeatable)"
_PRIORITY = "1 (highest) to 100 (default: the class's, 50 unless it says otherwise)"
#: Each command's description, an example, and help for the options that have none above.
_EXPLAINED: dict[str, tuple[str, str, dict[str, str]]] = {
    "create": ("Enqueue a job of CLASS; prints its id. Workers (rjbatch worker, rjbatch work) run it.",
               "rjbatch create HelloJob --set name=you --priority 10",
               {"job": "the job class: its name, or module:Class", "set": _SET, "priority": _PRIORITY}),
    "jobs": ("List jobs, newest first, as a table or JSON lines.", "rjbatch jobs --state failed --json",
             {"state": "only jobs in this state (default: all)", "job_class": "only jobs of this class (and subclasses)",
              "limit": "at most this many (default: 100)"}),
    "show": ("Show a job's status: every field, progress, slice counts, exception.", "rjbatch show JOB_ID", {}),
    "retry": ("Retry a failed job: a batch job runs its failed slices again, from their failed record.",
              "rjbatch retry JOB_ID", {}),
    "pause": ("Pause a queued job, or a batch job being processed.", "rjbatch pause JOB_ID", {}),
    "resume": ("Resume a paused job.", "rjbatch resume JOB_ID", {}),
    "abort": ("Abort a job: it will not run (a batch job's slices are thrown away).", "rjbatch abort JOB_ID", {}),
    "destroy": ("Remove a job and its slices from the store.", "rjbatch destroy JOB_ID", {}),
    "run-now": ("Run a scheduled job at once instead of at its run_at.", "rjbatch run-now JOB_ID", {}),
    "work": ("Run queued jobs in this process until none is left (a server of one worker: a killed "
             "rjbatch work is requeued like any dead server).", "rjbatch work --jobs jobs.py",
             {"limit": "stop after this many jobs (default: no limit)"}),
    "upload": ("Create a batch job of CLASS from FILE (path or URI; codecs and format from its name): "
               "prints the job id; workers process it.", "rjbatch upload orders.csv.gz --job OrderTotalsJob",
               {"file": "the file to upload: a path, or a URI (s3://, https://, ...)",
                "job": "the batch job class: its name, or module:Class", "set": _SET, "priority": _PRIORITY}),
    "download": ("", "rjbatch download --category invalid", {}),
    "failed": ("", "", {"job_id": "the batch job", "action": "list (default), show, replace or delete"}),
    "process": ("Upload FILE, process it with local worker processes, and download every output category "
                "(main to --output, others beside it): one command from file to file.",
                "rjbatch process orders.csv.gz --job OrderTotalsJob --output totals.csv.gz",
                {"file": "the file to process", "job": "the batch job class: its name, or module:Class",
                 "output": "where the main category goes; its extensions pick codecs and format",
                 "set": _SET, "priority": _PRIORITY,
                 "category": "download only this category, to --output (default: main, and the others beside it)"}),
    "web": ("Mission Control: job lists, job pages, failed records, output, servers and dirmon in a browser.",
            "rjbatch web --insecure-local", {"host": "address to listen on (default: 127.0.0.1)",
                                               "port": "port to listen on (default: 8080)"}),
    "worker": ("Run a server: a supervisor and N worker processes that claim and run jobs until stopped "
               "(SIGTERM, Ctrl-C, or rjbatch servers stop).", "rjbatch worker --workers 4 --jobs jobs/",
               {"log_level": "log level (default: info)",
                "heartbeat_seconds": "seconds between heartbeats (default: 15)",
                "max_poll_seconds": "longest idle wait before looking for work again (default: 5)",
                "re_check_seconds": "seconds before throttled classes are looked at again (default: 60)",
                "zombie_heartbeats": "missed heartbeats that make a server a zombie (default: 4)",
                "shutdown_grace_seconds": "seconds running work gets to finish on a stop (default: 30)"}),
    "cron": ("Show when a cron expression (the guide's full syntax, with a time zone) fires next.",
             "rjbatch cron next '0 1 * * 1-5 America/New_York' --count 3",
             {"what": "next: the next occurrences", "expression": "the cron expression, quoted",
              "count": "how many occurrences (default: 5)"}),
    "dirmon": ("Directory monitor entries: files matching a pattern become batch jobs (a DirmonJob scans).",
               "rjbatch dirmon add orders --pattern '/in/orders/*.csv' --job OrderTotalsJob --enable",
               {"action": "list, add, enable, disable or remove", "name": "the entry's name"}),
    "vacuum": ("Give the space of removed jobs and slices back to the file system: a SQLite file keeps "
               "freed pages for reuse and never shrinks by itself (housekeeping removes old jobs).",
               "rjbatch vacuum", {}),
    "servers": ("List worker servers with their heartbeats, or ask one (or all) to pause, resume or stop.",
                "rjbatch servers stop host-1", {"action": "list (default), pause, resume or stop"}),
}


def _explain(name: str, command: argparse.ArgumentParser) -> None:
    """A command's description and example, and help for each of its options lacking one."""
    description, example, helps = _EXPLAINED.get(name, ("", "", {}))
    if description:
        command.description = description
    if example:
        command.epilog = f"example: {example}"
    for action in command._actions:
        if action.help is None and action.dest in helps:
            action.help = helps[action.dest]
        elif action.help is None and action.dest == "job_id":
            action.help = "the job's id (rjbatch jobs lists them)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, default in (("database", None), ("jobs", None), ("debug", False)):
        if not hasattr(args, name):  # options are shared with every command, default unset
            setattr(args, name, default)
    from rjbatch import log

    log.setup(logging.DEBUG if args.debug else logging.WARNING)
    try:
        config.apply_project_settings()
        if args.database:
            config.configure(database=args.database)
        config.load_jobs(args.jobs)
        return _commands[args.command](args)
    except BrokenPipeError:  # `rjbatch jobs --json | head`: the reader has all it wanted
        _quiet_stdout()
        return 0
    except (RjbatchError, CodecError, OSError) as exc:
        if args.debug:
            raise
        what = {JobNotFound: "not found", InvalidTransition: "refused",
                ConfigurationError: "configuration"}.get(type(exc), "error")
        print(f"rjbatch: {what}: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rjbatch: interrupted", file=sys.stderr)
        return 130


def one_line(exc: BaseException) -> str:
    """An error as one line: an ``OSError`` as ``FILE: reason``; a message that spans lines
    (a driver's hint on a line of its own) has them joined with "; "."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{os.fsdecode(exc.filename)}: {exc.strerror}"
        if exc.filename2 is not None:
            text += f" (and {os.fsdecode(exc.filename2)})"
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "; ".join(line for line in lines if line) or type(exc).__name__


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
