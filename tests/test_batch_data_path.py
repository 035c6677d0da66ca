"""The batch data path, owned by one slice owner per category: every category, every
format, with or without the job's class, from Python and from the command line."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
from datetime import date
from pathlib import Path

import pytest

from rjbatch.batch import BatchJob
from rjbatch.batch.sliced import FailedRecord, InputCounts, OutputCounts, SliceNotFound
from rjbatch.codecs.tabular import InvalidHeader
from rjbatch.tabular import TabularInput, TabularOutput
from rjbatch.testing import work_all
from tests.test_cli import rjbatch

ROOT = Path(__file__).resolve().parent.parent
JOBS = str(Path(__file__).with_name("data_path_jobs.py"))
FLIGHTS = ("id,carrier,delay,day\n1,UA,2.5,2026-01-01\n2,AA,30,2026-01-02\n3,DL,-4,2026-01-03\n"
           "4,UA,11,2026-01-04\n5,B6,0,\n")
FORMATS = ("csv", "psv", "jsonl", "xlsx", "parquet")


def flights_job():
    """FlightsJob, imported into this process (other tests here must not import it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("data_path_jobs_inproc", JOBS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_back(path: Path) -> list[dict]:
    """A downloaded file's rows as dicts, typed where the format keeps types."""
    suffix = path.suffix
    if suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text())))
    if suffix == ".psv":
        lines = path.read_text().splitlines()
        header = lines[0].split("|")
        return [dict(zip(header, line.split("|"), strict=True)) for line in lines[1:]]
    if suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if suffix == ".xlsx":
        import openpyxl

        rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# -- every category, every format ----------------------------------------------------------
def test_every_output_category_is_tabular_in_every_format_with_its_types(tmp_path):
    module = flights_job()
    source = tmp_path / "flights.csv"
    source.write_text(FLIGHTS)
    job = module.FlightsJob()
    assert job.upload(source) == 5
    job.save()
    work_all()
    job.reload()
    assert job.is_completed
    assert list(job.output("late")) == [
        {"id": 2, "carrier": "AA", "delay": 30.0, "late": True, "day": date(2026, 1, 2)},
        {"id": 4, "carrier": "UA", "delay": 11.0, "late": True, "day": date(2026, 1, 4)}]
    for category, ids in (("main", [1, 3, 5]), ("late", [2, 4])):
        for fmt in FORMATS:
            target = tmp_path / f"{category}.{fmt}"
            assert job.download(target, category=category) == len(ids), (category, fmt)
            rows = read_back(target)
            assert list(rows[0]) == ["id", "carrier", "delay", "day", "late"], (category, fmt)
            if fmt in ("csv", "psv"):
                assert [r["id"] for r in rows] == [str(i) for i in ids]
                assert rows[0]["late"] in ("true", "false") and rows[0]["day"].startswith("2026-01")
            else:  # typed formats keep perform's types (Excel has one number type: 30.0 reads as 30)
                assert [r["id"] for r in rows] == ids, (category, fmt)
                number = (int, float) if fmt == "xlsx" else float
                assert all(isinstance(r["delay"], number) and type(r["late"]) is bool for r in rows), (category, fmt)
                if fmt != "jsonl":  # JSON has no date type: ISO text there
                    assert all(isinstance(r["day"], date) or r["day"] is None for r in rows), (category, fmt)
            if fmt == "parquet":
                import pyarrow.parquet as pq

                schema = pq.read_schema(target)
                assert [str(schema.field(n).type) for n in ("id", "delay", "late", "day")] == [
                    "int64", "double", "bool", "date32[day]"]


def test_output_yields_what_perform_returned_and_csv_stays_a_plain_copy(tmp_path):
    class StringRows(TabularInput, TabularOutput, BatchJob):
        tabular_output_header = ["name", "city"]

        def perform(self, row):
            return {"name": row["name"], "city": (row["city"] or "").upper() or None}

    source = tmp_path / "in.csv"
    source.write_text('name,city\nann,paris\nbob,\n"c, d",""\n')
    job = StringRows()
    job.upload(source)
    job.save()
    work_all()
    job.reload()
    # stored as CSV lines by the workers (strings only): read back exactly, None apart from ""
    [piece] = job.sliced_output("main").slices()
    assert piece["serializer"].endswith(":csv")
    assert list(job.output()) == [{"name": "ann", "city": "PARIS"}, {"name": "bob", "city": None},
                                  {"name": "c, d", "city": None}]
    job.download(tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == 'name,city\nann,PARIS\nbob,\n"c, d",\n'


def processed(job, source: Path, text: str):
    """The job after ``text`` was written to ``source``, uploaded and worked on here."""
    source.write_text(text)
    job.upload(source)
    job.save()
    work_all()
    return job.reload()


def test_new_keys_follow_the_input_columns_in_first_seen_order(tmp_path):
    job = processed(flights_job().TotalsJob(), tmp_path / "orders.csv", "price,qty\n2,3\n5,1\n")
    job.download(tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "price,qty,total\n2,3,6\n5,1,5\n"


def test_counts_are_small_typed_values(tmp_path):
    module = flights_job()
    source = tmp_path / "flights.csv"
    source.write_text(FLIGHTS)
    job = module.FlightsJob()
    job.upload(source)
    job.save()
    assert job.input.counts() == InputCounts(queued=2, queued_records=5)
    work_all()
    assert job.input.counts() == InputCounts()
    assert job.sliced_output("late").counts() == OutputCounts(slices=2, records=2)


# -- inputs ----------------------------------------------------------------------------------
def test_json_lines_and_fixed_width_inputs_are_parsed_by_the_workers_per_the_stored_format(tmp_path):
    class Echo(TabularInput, TabularOutput, BatchJob):
        def perform(self, row):
            return row

    class Fixed(Echo):
        tabular_input_options = {"format_options": {"layout": [
            {"key": "name", "size": 5}, {"key": "qty", "size": 3, "type": "integer"}]}}

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"name": "ann", "qty": 3, "tags": [1, 2]}\n{"name": "bob", "qty": null, "tags": []}\n')
    fixed = tmp_path / "in.txt"
    fixed.write_text("ann    3\nbob   12\n")
    for cls, source, expected in (
        (Echo, jsonl, [{"name": "ann", "qty": 3, "tags": [1, 2]}, {"name": "bob", "qty": None, "tags": []}]),
        (Fixed, fixed, [{"name": "ann", "qty": 3}, {"name": "bob", "qty": 12}]),
    ):
        job = cls()
        job.upload(source)
        assert job.input_category().format == ("json" if cls is Echo else "fixed")
        job.save()
        work_all()
        assert list(job.reload().output()) == expected


def test_upload_query_from_sqlite_gives_a_tabular_job_dicts_keyed_by_column_names(tmp_path):
    module = flights_job()
    connection = sqlite3.connect(tmp_path / "source.db")
    connection.execute("CREATE TABLE orders (price INTEGER, qty INTEGER, note TEXT)")
    connection.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(2, 3, "a"), (5, 1, None)])
    job = module.TotalsJob()
    assert job.upload_query("SELECT price, qty, note FROM orders ORDER BY price", connection=connection) == 2
    assert job.input_category().columns == ["price", "qty", "note"]
    job.save()
    work_all()
    assert list(job.reload().output()) == [{"price": 2, "qty": 3, "note": "a", "total": 6},
                                           {"price": 5, "qty": 1, "note": None, "total": 5}]


def test_upload_query_through_sqlalchemy_uses_the_result_keys(tmp_path):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    module = flights_job()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders (price INTEGER, qty INTEGER)")
        connection.exec_driver_sql("INSERT INTO orders VALUES (2, 3)")
    job = module.TotalsJob()
    with engine.connect() as connection:
        query = sqlalchemy.text("SELECT price AS unit_price, qty AS price, qty FROM orders")
        job.upload_query(query, connection=connection)
    assert job.input_category().columns == ["unit_price", "price", "qty"]
    from_engine = module.TotalsJob()  # an Engine works too: a connection of its own
    assert from_engine.upload_query(sqlalchemy.text("SELECT price, qty FROM orders"), connection=engine) == 1
    assert from_engine.input_category().columns == ["price", "qty"]


def test_upload_mongo_query_gives_a_tabular_job_dicts():
    mongomock = pytest.importorskip("mongomock")

    class Docs(TabularInput, TabularOutput, BatchJob):
        def perform(self, row):
            return row

    collection = mongomock.MongoClient().db.people
    collection.insert_many([{"name": "ann", "age": 3}, {"name": "bob", "age": 5}])
    job = Docs()
    assert job.upload_mongo_query(collection, projection=["name", "age"]) == 2
    job.save()
    work_all()
    assert list(job.reload().output()) == [{"name": "ann", "age": 3}, {"name": "bob", "age": 5}]
    plain = BatchJob()
    plain.upload_mongo_query(collection, projection=["name"])
    assert [r for s in plain.input.slices() for r in plain.input.records(s)] == ["ann", "bob"]


# -- no silent loss --------------------------------------------------------------------------
def test_duplicate_header_names_are_an_error_naming_the_column(tmp_path):
    module = flights_job()
    source = tmp_path / "dup.csv"
    source.write_text("id,name,name,Name\n1,a,b,c\n")
    job = module.EchoRowsJob()
    with pytest.raises(InvalidHeader, match="name"):
        job.upload(source)
    assert job.input.count() == 0  # nothing kept

    class Renamed(module.EchoRowsJob):
        tabular_input_options = {"duplicate_columns": "rename"}

    job = Renamed()
    job.upload(source)
    assert job.input_category().columns == ["id", "name", "name_2", "name_3"]


def test_an_empty_input_completes_with_the_header_alone(tmp_path):
    module = flights_job()
    for content, expected in (("price,qty\n", "price,qty\n"), ("", "")):
        source = tmp_path / "in.csv"
        source.write_text(content)
        job = module.TotalsJob()
        assert job.upload(source) == 0
        job.save()
        work_all()
        assert job.reload().is_completed
        assert job.download(tmp_path / "out.csv") == 0
        assert (tmp_path / "out.csv").read_text() == expected


# -- failed records --------------------------------------------------------------------------
def test_failed_records_carry_their_number_and_a_key_the_edits_take(tmp_path):
    job = processed(flights_job().TotalsJob(), tmp_path / "in.csv", "price,qty\n1,1\n2,x\n3,3\n4,\n")
    assert job.is_failed
    failed = list(job.input.failed_records())
    assert [(f.record, f.record_number) for f in failed] == [("2,x", 2), ("4,", 4)]
    record, exception = failed[0]  # still unpacks as (record, exception)
    assert isinstance(failed[0], FailedRecord) and exception.class_name == "ValueError"
    job.input.update_failed_record(failed[0], "2,2")
    job.input.delete_failed_record(failed[1].key)
    with pytest.raises(SliceNotFound):
        job.input.delete_failed_record(failed[1].key)
    job.retry()
    work_all()
    assert job.reload().is_completed
    assert [r["total"] for r in job.output()] == [1, 4, 9]


@pytest.mark.slow
def test_a_failed_record_fixed_and_deleted_from_the_cli_then_retried(tmp_path):
    (tmp_path / "in.csv").write_text("price,qty\n1,1\n2,x\n3,3\n4,\n5,5\n")
    job_id = rjbatch("upload", "in.csv", "--job", "TotalsJob", "--jobs", JOBS, cwd=tmp_path).stdout.strip()
    rjbatch("work", "--jobs", JOBS, cwd=tmp_path, check=False)
    listing = rjbatch("failed", job_id, cwd=tmp_path).stdout.splitlines()
    assert [line.split("\t")[:2] for line in listing] == [["1", "record 2"], ["2", "record 4"]]
    assert "ValueError: qty 'x' is not a number" in listing[0]
    shown = rjbatch("failed", job_id, "show", "1", cwd=tmp_path)
    assert shown.stdout == "2,x\n" and "Traceback" not in shown.stderr and "ValueError" in shown.stderr
    rjbatch("failed", job_id, "replace", "1", "2,2", cwd=tmp_path)
    rjbatch("failed", job_id, "delete", "2", cwd=tmp_path)
    bad = rjbatch("failed", job_id, "delete", "2", cwd=tmp_path, check=False)
    assert bad.returncode == 1 and "no failed record with key 2" in bad.stderr
    rjbatch("retry", job_id, cwd=tmp_path)
    rjbatch("work", "--jobs", JOBS, cwd=tmp_path)
    rjbatch("download", job_id, "out.csv", cwd=tmp_path)
    assert (tmp_path / "out.csv").read_text() == "price,qty,total\n1,1,1\n2,2,4\n3,3,9\n5,5,25\n"


# -- the same output from any process --------------------------------------------------------
@pytest.mark.slow
def test_downloads_are_the_same_with_and_without_the_job_class(tmp_path):
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    job_id = rjbatch("upload", "flights.csv", "--job", "FlightsJob", "--jobs", JOBS, cwd=tmp_path).stdout.strip()
    rjbatch("work", "--jobs", JOBS, cwd=tmp_path)
    for category in ("main", "late"):
        for fmt in FORMATS:
            with_class = tmp_path / f"with-{category}.{fmt}"
            without = tmp_path / f"without-{category}.{fmt}"
            rjbatch("download", job_id, with_class.name, "--category", category, "--jobs", JOBS, cwd=tmp_path)
            rjbatch("download", job_id, without.name, "--category", category, cwd=tmp_path)
            if fmt == "xlsx":  # a workbook's zip holds its write time: compare the cells
                assert read_back(with_class) == read_back(without)
            else:
                assert with_class.read_bytes() == without.read_bytes(), (category, fmt)
            assert len(read_back(without)) == (3 if category == "main" else 2)


@pytest.mark.slow
def test_download_without_an_id_takes_the_latest_completed_job_and_writes_to_stdout(tmp_path):
    (tmp_path / "in.csv").write_text("price,qty\n2,3\n")
    rjbatch("upload", "in.csv", "--job", "TotalsJob", "--jobs", JOBS, cwd=tmp_path)
    rjbatch("work", "--jobs", JOBS, cwd=tmp_path)
    result = rjbatch("download", cwd=tmp_path)
    assert result.stdout == "price,qty,total\n2,3,6\n"
    assert "downloading TotalsJob" in result.stderr
    as_json = rjbatch("download", "--format", "out.jsonl", cwd=tmp_path)
    assert json.loads(as_json.stdout) == {"price": "2", "qty": "3", "total": 6}


def test_a_process_without_the_class_renders_like_one_with_it(tmp_path):
    """A stored tabular job loaded as a stand-in (its class unknown here) downloads the same."""
    job_id = _completed_in_another_process(tmp_path)
    from rjbatch import Job

    stand_in = Job.find(job_id)
    assert type(stand_in).__module__ == "rjbatch.unresolved" and isinstance(stand_in, BatchJob)
    stand_in.download(tmp_path / "late.csv", category="late")
    assert (tmp_path / "late.csv").read_text() == (
        "id,carrier,delay,day,late\n2,AA,30.0,2026-01-02,true\n4,UA,11.0,2026-01-04,true\n")
    assert stand_in.input_category().slice_size == 3


def _completed_in_another_process(tmp_path: Path) -> str:
    import os

    from rjbatch import config

    database = config.settings.database
    if database.startswith("mongodb") and not os.environ.get("RJBATCH_TEST_MONGODB_URL"):
        pytest.skip("mongomock lives in one process: this test stores the job from another")
    (tmp_path / "flights.csv").write_text(FLIGHTS)
    script = (f"import rjbatch\nrjbatch.configure(database={database!r})\n"
              f"import importlib.util, sys\nspec = importlib.util.spec_from_file_location('elsewhere_jobs', {JOBS!r})\n"
              "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
              "from rjbatch.testing import work_all\n"
              "cls = type(f'Elsewhere{id(m)}Job', (m.FlightsJob,), {'__module__': 'elsewhere_jobs'})  # unknown here\n"
              f"job = cls(); job.upload({str(tmp_path / 'flights.csv')!r}); job.save(); work_all()\n"
              "print(job.id)\n")
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


# -- sources with rich types ---------------------------------------------------------------
def test_upload_query_over_postgresql_keeps_numeric_date_time_uuid_and_timestamptz(tmp_path, postgres_server):
    import uuid
    from datetime import UTC, datetime, time
    from decimal import Decimal

    import psycopg

    class Rows(TabularInput, TabularOutput, BatchJob):
        slice_size = 2

        def perform(self, row):
            row["doubled"] = row["amount"] * 2
            return row

    url = postgres_server.create()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE payments (id int, amount numeric(12, 2), day date, at time,"
                               " ref uuid, paid timestamptz)")
            ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
            paid = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
            connection.execute("INSERT INTO payments VALUES (1, 12.50, '2026-01-31', '10:30:00', %s, %s),"
                               " (2, 0.01, '2026-02-01', '23:59:59.5', %s, %s)", (ref, paid, ref, paid))
            job = Rows()
            cursor = connection.execute("SELECT * FROM payments ORDER BY id")
            assert job.upload_query(cursor) == 2
        job.save()
        work_all()
        rows = list(job.reload().output())
        assert rows[0] == {"id": 1, "amount": Decimal("12.50"), "day": date(2026, 1, 31), "at": time(10, 30),
                           "ref": ref, "paid": paid, "doubled": Decimal("25.00")}
        assert type(rows[1]["amount"]) is Decimal and str(rows[1]["amount"]) == "0.01"
        assert rows[1]["paid"].utcoffset() is not None  # aware stays aware
        job.download(tmp_path / "out.parquet")
        import pyarrow.parquet as pq

        table = pq.read_table(tmp_path / "out.parquet")
        assert table.column("amount").to_pylist() == [Decimal("12.50"), Decimal("0.01")]
        assert table.column("day").to_pylist() == [date(2026, 1, 31), date(2026, 2, 1)]
        job.download(tmp_path / "out.csv")
        lines = (tmp_path / "out.csv").read_text().splitlines()
        assert lines[0] == "id,amount,day,at,ref,paid,doubled"
        assert lines[1].startswith("1,12.50,2026-01-31,10:30:00,12345678-1234-5678-1234-567812345678,")
    finally:
        postgres_server.drop(url)


def test_a_parquet_file_with_decimal_and_date_columns_is_processed_with_values_intact(tmp_path):
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"price": pa.array([Decimal("2.50"), Decimal("0.10")], pa.decimal128(6, 2)),
                             "qty": pa.array([3, 7], pa.int16()),
                             "day": pa.array([date(2026, 1, 1), date(2026, 1, 2)], pa.date32())}),
                   tmp_path / "in.parquet")
    class Totals(TabularInput, TabularOutput, BatchJob):
        def perform(self, row):
            row["total"] = row["price"] * row["qty"]
            return row

    job = Totals()
    assert job.upload(tmp_path / "in.parquet") == 2
    job.save()
    work_all()
    assert list(job.reload().output()) == [
        {"price": Decimal("2.50"), "qty": 3, "day": date(2026, 1, 1), "total": Decimal("7.50")},
        {"price": Decimal("0.10"), "qty": 7, "day": date(2026, 1, 2), "total": Decimal("0.70")}]
    job.download(tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("total").to_pylist() == [Decimal("7.50"), Decimal("0.70")]
    assert str(table.schema.field("day").type) == "date32[day]"


def test_a_result_no_slice_can_hold_fails_its_slice_and_not_the_worker():
    class Odd(BatchJob):
        collect_output = True

        def perform(self, record):
            return {"value": object()} if record == 2 else record

    job = Odd()
    job.upload([1, 2, 3])
    job.save()
    work_all()
    job.reload()
    assert job.is_failed
    [(record, exception)] = list(job.input.failed_records())
    # the slice fails from its first record: which record returned the value is not kept
    assert record == 1 and exception.class_name.endswith("SliceEncodingError")
    assert "object" in exception.message


def test_a_zip_of_several_csv_files_is_read_file_after_file_with_one_header(tmp_path):
    module = flights_job()
    (tmp_path / "a.csv").write_text("price,qty\n1,1\n2,2")  # no newline at its end
    (tmp_path / "b.csv").write_text("price,qty\n3,3\n")
    subprocess.run(["zip", "-q", "-j", str(tmp_path / "in.zip"), str(tmp_path / "a.csv"), str(tmp_path / "b.csv")],
                   check=True)
    job = module.TotalsJob()
    assert job.upload(tmp_path / "in.zip") == 3
    job.save()
    work_all()
    assert [r["total"] for r in job.reload().output()] == [1, 4, 9]
    only_b = module.TotalsJob()
    assert only_b.upload(tmp_path / "in.zip", zip_entry="b.*") == 1


def test_a_line_that_cannot_be_parsed_is_the_failed_record_and_can_be_fixed(tmp_path):
    module = flights_job()
    source = tmp_path / "in.csv"
    source.write_text('price,qty\n1,1\n2,2\n3,3"x"\n4,4\n')  # a stray quote on line 4 (record 3)

    class Four(module.TotalsJob):
        slice_size = 4

    job = Four()
    job.upload(source)
    job.save()
    work_all()
    job.reload()
    [failed] = list(job.input.failed_records())
    assert failed.record_number == 3 and failed.record == '3,3"x"'
    assert failed.exception.class_name.endswith("MalformedLine") and "line 4" in failed.exception.message
    job.input.update_failed_record(failed, "3,3")
    job.retry()
    work_all()
    assert [r["total"] for r in job.reload().output()] == [1, 4, 9, 16]


def test_a_zip_of_csv_files_with_different_headers_is_refused_naming_them(tmp_path):
    from rjbatch.codecs import CodecError

    module = flights_job()
    (tmp_path / "a.csv").write_text("price,qty\n1,1\n")
    (tmp_path / "b.csv").write_text("name,age\nann,3\n")
    subprocess.run(["zip", "-q", "-j", str(tmp_path / "in.zip"), str(tmp_path / "a.csv"), str(tmp_path / "b.csv")],
                   check=True)
    job = module.TotalsJob()
    with pytest.raises(CodecError, match="b.csv starts with 'name,age', not the header of a.csv"):
        job.upload(tmp_path / "in.zip")
    assert job.input.count() == 0


def test_columns_outside_allowed_columns_fail_the_upload_or_are_left_out_of_the_output(tmp_path):
    module = flights_job()
    source = tmp_path / "in.csv"
    source.write_text("price,qty,city\n2,3,Paris\n")

    class Strict(module.TotalsJob):
        tabular_input_options = {"allowed_columns": ["price", "qty"]}

    with pytest.raises(InvalidHeader, match="Unknown columns after cleansing: 'city'"):
        Strict().upload(source)

    class Lenient(module.TotalsJob):
        tabular_input_options = {"allowed_columns": ["price", "qty"], "skip_unknown": True}

    job = Lenient()
    job.upload(source)
    job.save()
    work_all()
    job.reload().download(tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == "price,qty,total\n2,3,6\n"


def test_the_rejected_column_prefix_is_the_codecs_own():
    from rjbatch.batch.categories import REJECTED_PREFIX
    from rjbatch.codecs.tabular import REJECTED_PREFIX as CODECS_PREFIX

    assert REJECTED_PREFIX == CODECS_PREFIX
