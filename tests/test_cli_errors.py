"""Bad input through the real command line: every error is one line naming the file, the
line, the URL or the extra to install, with exit status 1 and no job left behind;
``--debug`` shows the traceback."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
JOBS = str(ROOT / "sample_data" / "jobs.py")

HEADER = "Order Id,Customer,City,Country,Amount,Quantity,Status\n"
CSV = HEADER + "".join(f"{i},ann,cork,IE,1.50,2,paid\n" for i in range(1, 2001))

# three keys of a Symmetric Encryption config: the one the file is written with, another
# key under the same version, and a key of another version only
KEYS = {
    "right": ("1234567890ABCDEF1234567890ABCDEF", "1234567890ABCDEF", 1),
    "wrong": ("ABCDEF1234567890ABCDEF1234567890", "ABCDEF1234567890", 1),
    "other_version": ("ABCDEF1234567890ABCDEF1234567890", "ABCDEF1234567890", 5),
}

# the interpreter as `python -m rjbatch`, with some modules made unimportable first
BLOCKING = ("import sys; [sys.modules.__setitem__(m, None) for m in sys.argv.pop(1).split(',')]; "
            "from rjbatch.cli import main; sys.exit(main())")


def rjbatch(*args: str, cwd: Path, env: dict[str, str] | None = None,
            block: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("RJBATCH_") and k not in ("RAILS_ENV", "RACK_ENV")}
    environment.update(env or {})
    command = [sys.executable, "-c", BLOCKING, ",".join(block)] if block else [sys.executable, "-m", "rjbatch"]
    return subprocess.run([*command, *args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert result.returncode == 1, f"exit {result.returncode}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rjbatch: "), lines[0]
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


# -- the bad files ---------------------------------------------------------------------------
def zip_of(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def damaged_zip() -> bytes:
    """A zip whose directory is fine but whose deflated data is not."""
    data = bytearray(zip_of({"orders.csv": CSV}))
    start = 30 + len("orders.csv")  # the local header, then the compressed bytes
    for offset in range(start + 20, start + 60):
        data[offset] ^= 0x5A
    return bytes(data)


def encrypted(text: str, folder: Path) -> bytes:
    from rjbatch.codecs import load_encryption_config, set_ciphers, write_lines

    set_ciphers(load_encryption_config(key_file(folder, "right"), "development"))
    try:
        target = folder / "scratch.csv.enc"
        write_lines(target, text.splitlines())
        return target.read_bytes()
    finally:
        set_ciphers(None)


def tampered(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x55]) + data[middle + 1:]


def key_file(folder: Path, which: str) -> Path:
    key, iv, version = KEYS[which]
    path = folder / f"keys_{which}.yml"
    if not path.exists():
        path.write_text(f"development:\n  ciphers:\n    - key: {key}\n      iv: {iv}\n      version: {version}\n")
    return path


def xlsx_bytes() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    for row in CSV.splitlines()[:20]:
        workbook.active.append(row.split(","))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [line.split(",") for line in CSV.splitlines()]
    buffer = io.BytesIO()
    pq.write_table(pa.table({name: [row[i] for row in rows[1:20]] for i, name in enumerate(rows[0])}), buffer)
    return buffer.getvalue()


def zstd_bytes() -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(CSV.encode())


def one_long_line(path: Path) -> None:
    """100 MB without a line break, written a megabyte at a time."""
    block = b"x" * (1 << 20)
    with open(path, "wb") as f:
        for _ in range(100):
            f.write(block)


@dataclass
class Case:
    name: str  # the file, in the shared folder
    make: Callable[[Path], bytes | None] | None  # its bytes (None: made by the function itself)
    expected: tuple[str, ...] = ()  # besides the file name
    job: str = "OrderTotalsJob"
    options: tuple[str, ...] = ()
    keys: str | None = None  # the encryption config the command gets
    block: tuple[str, ...] = ()  # modules that cannot be imported
    root_reads: bool = False  # chmod 000 stops no one running as root


def _make_folder(folder: Path) -> None:
    os.mkdir(folder / "folder.csv")


def _make_unreadable(folder: Path) -> None:
    path = folder / "unreadable.csv"
    path.write_text(CSV)
    path.chmod(0)


CASES = [
    Case("truncated.csv.gz", lambda f: gzip.compress(CSV.encode())[:1500], ("cut short",)),
    Case("not_gzip.csv.gz", lambda f: CSV.encode(), ("gzip",)),
    Case("not_a_zip.csv.zip", lambda f: CSV.encode(), ("not a valid zip",)),
    Case("cut.csv.zip", lambda f: zip_of({"orders.csv": CSV})[:1200], ("not a valid zip",)),
    Case("damaged.csv.zip", lambda f: damaged_zip(), ("corrupt zip entry",)),
    Case("empty.csv.zip", lambda f: zip_of({}), ("no file entries",)),
    Case("only_a_folder.csv.zip", lambda f: zip_of({"folder/": ""}), ("no file entries",)),
    Case("no_keys.csv.enc", lambda f: encrypted(CSV, f), ("no encryption keys configured",)),
    Case("wrong_key.csv.enc", lambda f: encrypted(CSV, f), ("wrong key",), keys="wrong"),
    Case("other_version.csv.enc", lambda f: encrypted(CSV, f), ("no key with version 1",),
         keys="other_version"),
    Case("tampered.csv.enc", lambda f: tampered(encrypted(CSV, f)), ("tampered",), keys="right"),
    Case("cut_short.csv.enc", lambda f: encrypted(CSV, f)[:-7], ("cut short",), keys="right"),
    Case("missing_config.csv.enc", lambda f: encrypted(CSV, f), ("missing.yml",), keys="missing"),
    Case("invalid_utf8.csv", lambda f: (CSV + "9,\xff\n").encode("latin-1"), ("line 2002", "utf-8")),
    Case("unbalanced_quote.csv", lambda f: (CSV + '9,"ann,cork\n10,bob\n').encode(), ("line 2002", "quote")),
    Case("one_long_line.txt", None, ("line 1", "buffer_size"), job="ReverseJob"),
    Case("folder.csv", None, ("directory",)),
    Case("unreadable.csv", None, ("Permission denied",), root_reads=True),
    Case("no_such_file.csv", lambda f: None, ()),
    Case("encoding.csv", lambda f: CSV.encode(), ("unknown encoding 'no-such-codec'",),
         options=("--encoding", "no-such-codec")),
    Case("delimiter.csv", lambda f: CSV.encode(), ("must not overlap",), options=("--delimiter", ",")),
    Case("orders.xlsx", lambda f: xlsx_bytes(), ("pip install 'rjbatch[excel]'",), block=("openpyxl",)),
    Case("orders.parquet", lambda f: parquet_bytes(), ("pyarrow", "pip install"),
         block=("pyarrow", "pyarrow.parquet")),
    Case("orders.csv.zst", lambda f: zstd_bytes(), ("pip install 'rjbatch[zstd]'",), block=("zstandard",)),
]
MAKERS = {"one_long_line.txt": lambda folder: one_long_line(folder / "one_long_line.txt"),
          "folder.csv": _make_folder, "unreadable.csv": _make_unreadable}


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_files")
    for case in CASES:
        if case.make is None:
            MAKERS[case.name](folder)
        else:
            data = case.make(folder)
            if data is not None:
                (folder / case.name).write_bytes(data)
    return folder


def command_for(case: Case, command: str, folder: Path) -> list[str]:
    args = [command, str(folder / case.name), "--jobs", JOBS, "--job", case.job, *case.options]
    if command == "process":
        args += ["--output", "out.txt" if case.job == "ReverseJob" else "out.csv", "--workers", "1"]
    return args


def environment_for(case: Case, folder: Path) -> dict[str, str]:
    if case.keys is None:
        return {}
    path = folder / "missing.yml" if case.keys == "missing" else key_file(folder, case.keys)
    return {"RJBATCH_ENCRYPTION_CONFIG": str(path), "RJBATCH_ENCRYPTION_ENV": "development"}


# process starts worker processes before its upload fails: the slow half
@pytest.mark.parametrize("command", ["upload", pytest.param("process", marks=pytest.mark.slow)])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_line_naming_the_file_and_leaves_no_job(case, command, bad_files, tmp_path):
    if case.root_reads and os.geteuid() == 0:
        pytest.skip("chmod 000 does not stop root from reading")
    result = rjbatch(*command_for(case, command, bad_files), cwd=tmp_path,
                     env=environment_for(case, bad_files), block=case.block)
    assert_one_line_error(result, case.name, *case.expected)
    listed = rjbatch("jobs", "--json", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout == "", listed.stdout + listed.stderr
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.txt").exists()


def test_debug_shows_the_traceback_of_a_bad_file(bad_files, tmp_path):
    result = rjbatch("--debug", *command_for(CASES[0], "upload", bad_files), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "CorruptInput" in result.stderr
    assert "truncated.csv.gz" in result.stderr
    assert rjbatch("jobs", "--json", cwd=tmp_path).stdout == ""


# -- missing extras beyond the files -----------------------------------------------------------
def test_the_postgresql_store_without_psycopg_names_the_extra(tmp_path):
    result = rjbatch("--database", "postgresql://rj:s3cret@127.0.0.1:5432/rjbatch", "jobs", cwd=tmp_path,
                     block=("psycopg",))
    line = assert_one_line_error(result, "pip install 'rjbatch[postgresql]'")
    assert "s3cret" not in line


def test_the_web_without_starlette_names_the_extra(tmp_path):
    result = rjbatch("web", "--insecure-local", "--port", "1", cwd=tmp_path, block=("starlette",))
    assert_one_line_error(result, "pip install 'rjbatch[web]'")


# -- PostgreSQL --------------------------------------------------------------------------------
def with_netloc(url: str, netloc: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, netloc or parts.netloc, f"/{database}" if database else parts.path,
                       parts.query, parts.fragment))


def test_postgresql_refusing_connections_is_one_line_naming_the_url(tmp_path):
    url = "postgresql://rj:s3cret@127.0.0.1:1/rjbatch"
    for args in (["jobs", "--json"], ["upload", str(ROOT / "sample_data" / "words.txt"), "--jobs", JOBS,
                                      "--job", "ReverseJob"]):
        line = assert_one_line_error(rjbatch("--database", url, *args, cwd=tmp_path),
                                     "postgresql://rj:***@127.0.0.1:1/rjbatch", "Connection refused")
        assert "s3cret" not in line
    assert not (tmp_path / "rjbatch.db").exists()  # no other store stood in


@pytest.mark.parametrize("wrong", ["database", "role"])
def test_postgresql_wrong_database_or_role_is_one_line_naming_the_url(wrong, postgres_server, tmp_path):
    admin = urlsplit(postgres_server.admin_url)
    host = admin.hostname + (f":{admin.port}" if admin.port else "")
    if wrong == "database":
        url = with_netloc(postgres_server.admin_url, f"{admin.username}:s3cret@{host}", "rjbatch_no_such_database")
        expected = 'database "rjbatch_no_such_database" does not exist'
    else:
        url = with_netloc(postgres_server.admin_url, f"rjbatch_no_such_role:s3cret@{host}")
        expected = "rjbatch_no_such_role"
    result = rjbatch("--database", url, "upload", str(ROOT / "sample_data" / "words.txt"), "--jobs", JOBS,
                     "--job", "ReverseJob", cwd=tmp_path)
    line = assert_one_line_error(result, url.replace(":s3cret@", ":***@"), expected)
    assert "s3cret" not in line


GOING_AWAY_JOBS = '''
import psycopg
from rjbatch import config
from rjbatch.batch import BatchJob


class ServerGoesAwayJob(BatchJob):
    """Its upload starts after the server ended the session the job was saved on."""

    def upload(self, source=None, **options):
        backend = config.get_store()._session().backend_pid
        with psycopg.connect({admin!r}, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [backend])
        return super().upload(source, **options)

    def perform(self, line):
        return line
'''


def test_postgresql_going_away_during_an_upload_is_one_line_naming_the_url(postgres_server, tmp_path):
    database = postgres_server.create()
    try:
        admin = urlsplit(database)
        url = with_netloc(database, f"{admin.username}:s3cret@{admin.hostname}"
                          + (f":{admin.port}" if admin.port else ""))
        jobs = tmp_path / "going_away_jobs.py"
        jobs.write_text(GOING_AWAY_JOBS.format(admin=postgres_server.admin_url))
        result = rjbatch("--database", url, "upload", str(ROOT / "sample_data" / "words.txt"), "--jobs",
                         str(jobs), "--job", "ServerGoesAwayJob", cwd=tmp_path)
        line = assert_one_line_error(result, "lost the connection to PostgreSQL at",
                                     url.replace(":s3cret@", ":***@"))
        assert "s3cret" not in line
        listed = rjbatch("--database", url, "jobs", "--json", cwd=tmp_path)
        assert listed.returncode == 0 and listed.stdout == ""  # the half-uploaded job was removed
    finally:
        postgres_server.drop(database)


def test_a_lost_postgresql_connection_is_a_store_error_and_still_the_drivers(postgres_server):
    import psycopg

    from rjbatch.errors import StoreConnectionLost
    from rjbatch.store.postgres import PostgresStore

    database = postgres_server.create()
    try:
        store = PostgresStore(database)
        for call in (lambda: store.count_jobs({}), lambda: store.data_version(),
                     lambda: store.insert_slices("6b0903a1a2fbfe2029c899df", "main", [{
                         "id": 1, "first_record_number": 1, "record_count": 1, "serializer": "none",
                         "data": b"x"}])):
            backend = store._session().backend_pid
            with psycopg.connect(postgres_server.admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [backend])
            with pytest.raises(StoreConnectionLost, match="lost the connection to PostgreSQL at") as raised:
                call()
            assert isinstance(raised.value, psycopg.OperationalError)
            assert store.count_jobs({}) == 0  # the next call connects again
        store.close()
    finally:
        postgres_server.drop(database)


# -- MongoDB -----------------------------------------------------------------------------------
def test_mongodb_unreachable_is_one_short_line_naming_the_url(tmp_path):
    url = "mongodb://rj:s3cret@127.0.0.1:1/rjbatch?serverSelectionTimeoutMS=300"
    for args in (["jobs", "--json"], ["upload", str(ROOT / "sample_data" / "words.txt"), "--jobs", JOBS,
                                      "--job", "ReverseJob"]):
        result = rjbatch("--database", url, *args, cwd=tmp_path)
        line = assert_one_line_error(result, "cannot use MongoDB at mongodb://rj:***@127.0.0.1:1/rjbatch",
                                     "no answer within 0.3s")
        assert "s3cret" not in line and "Topology" not in line
        assert result.stdout == ""


def test_a_mongodb_server_lost_after_opening_is_a_store_error_naming_the_url():
    import os

    if os.environ.get("RJBATCH_TEST_DATABASE", "").lower() in ("mongodb", "mongo"):
        pytest.skip("the mongomock run patches pymongo.MongoClient: no real client to lose")
    mongomock = pytest.importorskip("mongomock")
    import pymongo
    from pymongo.errors import ConnectionFailure

    from rjbatch.errors import StoreConnectionLost
    from rjbatch.store.mongo import MongoStore

    url = "mongodb://rj:s3cret@127.0.0.1:1/rjbatch"
    store = MongoStore(url, client=mongomock.MongoClient())
    # the server goes away: the store's client now reaches nothing
    store._client = pymongo.MongoClient(url, connect=False, serverSelectionTimeoutMS=200)
    store._connect()
    try:
        with pytest.raises(StoreConnectionLost,
                           match=r"^cannot reach MongoDB at mongodb://rj:\*\*\*@127.0.0.1:1/rjbatch: ") as raised:
            store.count_jobs({})
        assert isinstance(raised.value, ConnectionFailure)
        assert "s3cret" not in str(raised.value) and "Topology" not in str(raised.value)
    finally:
        store._client.close()


# -- the codecs' own option errors ---------------------------------------------------------------
def test_reader_options_are_codec_errors_naming_the_file():
    from rjbatch.codecs import CodecError, InvalidOption, LineReader, UnknownEncoding

    with pytest.raises(UnknownEncoding, match="^in.csv: unknown encoding 'no-such-codec'$") as raised:
        LineReader(io.BytesIO(b""), file_name="in.csv", encoding="no-such-codec")
    assert isinstance(raised.value, LookupError) and isinstance(raised.value, CodecError)
    with pytest.raises(InvalidOption, match="^in.csv: delimiter must not be empty$"):
        LineReader(io.BytesIO(b""), file_name="in.csv", delimiter="")
    with pytest.raises(InvalidOption, match="^in.csv: quote .* must not overlap$"):
        list(LineReader(io.BytesIO(b"a,b\n"), file_name="in.csv", delimiter=","))


def test_a_bad_delimiter_escape_is_one_line_and_leaves_no_job(tmp_path):
    from tests.test_cli import rjbatch

    (tmp_path / "in.txt").write_text("a\nb\n")
    result = rjbatch("upload", "in.txt", "--job", "ReverseJob", "--jobs", JOBS, "--delimiter", "\\",
                     cwd=tmp_path, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--delimiter" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert rjbatch("jobs", "--json", cwd=tmp_path).stdout == ""
