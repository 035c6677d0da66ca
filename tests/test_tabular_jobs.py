"""Tabular batch jobs: files of rows in, dicts to perform, rows out with a header."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import zipfile

import pytest

from rjbatch.batch import BatchJob
from rjbatch.tabular import TabularInput, TabularOutput
from rjbatch.testing import work_all


class TotalsJob(TabularInput, TabularOutput, BatchJob):
    slice_size = 3
    collect_output = True
    destroy_on_complete = False
    tabular_output_header = ["name", "total"]

    def perform(self, row):
        return {"name": row["name"].upper(), "total": int(row["price"]) * int(row["qty"])}


CSV_TEXT = 'Name,Price,Qty\nann,2,3\n"bob, jr",5,1\n\ncarl,1,"10"\n"multi\nline",1,1\n'


def run(job):
    job.save()
    work_all()
    return job.reload()


def test_csv_rows_become_dicts_under_the_cleansed_header_and_render_back(tmp_path):
    source = tmp_path / "orders.csv"
    source.write_text(CSV_TEXT)
    job = TotalsJob()
    assert job.upload(source) == 5  # the header is not a record; the blank line is
    assert job.input_category().columns == ["name", "price", "qty"]
    run(job)
    assert job.is_completed
    # output() gives what perform returned: ints stay ints
    assert list(job.output()) == list(job.output_rows()) == [
        {"name": "ANN", "total": 6}, {"name": "BOB, JR", "total": 5}, {"name": "CARL", "total": 10},
        {"name": "MULTI\nLINE", "total": 1},
    ]
    target = tmp_path / "totals.csv"
    assert job.download(target) == 4
    assert target.read_text() == 'name,total\nANN,6\n"BOB, JR",5\nCARL,10\n"MULTI\nLINE",1\n'


def test_gzip_made_by_the_gzip_tool_and_zip_made_by_the_zip_tool(tmp_path):
    plain = tmp_path / "in.csv"
    plain.write_text(CSV_TEXT)
    subprocess.run(["gzip", "-k", str(plain)], check=True)
    subprocess.run(["zip", "-q", "-j", str(tmp_path / "in.zip"), str(plain)], check=True)
    for name in ("in.csv.gz", "in.zip"):
        job = TotalsJob()
        assert job.upload(tmp_path / name) == 5
        assert [r["name"] for r in run(job).output_rows()] == ["ANN", "BOB, JR", "CARL", "MULTI\nLINE"]


@pytest.mark.parametrize("name, read", [
    ("out.json", lambda p: p.read_text().splitlines()[0]),
    ("out.psv", lambda p: p.read_text().splitlines()[0]),
    ("out.csv.gz", lambda p: gzip.decompress(p.read_bytes()).decode().splitlines()[0]),
])
def test_download_format_follows_the_file_name(tmp_path, name, read):
    source = tmp_path / "in.csv"
    source.write_text("name,price,qty\nann,2,3\n")
    job = TotalsJob()
    job.upload(source)
    run(job)
    target = tmp_path / name
    job.download(target)
    first = read(target)
    # the values perform returned, in each format's own spelling
    expected = {"out.json": '{"name":"ANN","total":6}', "out.psv": "name|total",
                "out.csv.gz": "name,total"}[name]
    assert first == expected


def test_xlsx_and_parquet_in_and_out(tmp_path):
    from rjbatch.codecs.tabular import read_parquet, read_xlsx, write_xlsx

    class JsonTotalsJob(TotalsJob):
        tabular_output_format = "json"  # rows kept as JSON: numbers stay numbers

    book = tmp_path / "in.xlsx"
    write_xlsx(str(book), [["ann", 2, 3], ["bob", 5, 1]], header=["Name", "Price", "Qty"])
    job = JsonTotalsJob()
    assert job.upload(book) == 2
    run(job)
    assert [r["total"] for r in job.output_rows()] == [6, 5]
    job.download(tmp_path / "out.parquet")
    assert list(read_parquet(str(tmp_path / "out.parquet"))) == [
        {"name": "ANN", "total": 6}, {"name": "BOB", "total": 5}]
    job.download(tmp_path / "out.xlsx")
    assert list(read_xlsx(str(tmp_path / "out.xlsx"))) == [["name", "total"], ["ANN", 6], ["BOB", 5]]


def test_header_only_and_empty_files_upload_nothing_and_complete_empty(tmp_path):
    for content in ("name,price,qty\n", ""):
        source = tmp_path / "in.csv"
        source.write_text(content)
        job = TotalsJob()
        assert job.upload(source) == 0
        run(job)
        assert job.is_completed
        target = tmp_path / "out.csv"
        assert job.download(target) == 0
        assert target.read_text() == "name,total\n"


def test_a_bad_row_fails_its_record_with_the_line_in_the_message(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('name,price,qty\nann,2,3\nbob,x,1\n')
    job = TotalsJob()
    job.upload(source)
    run(job)
    assert job.is_failed
    [(record, exc)] = list(job.input.failed_records())
    assert record == "bob,x,1"
    assert exc.class_name == "ValueError" and exc.record_number == 2


def test_an_unbalanced_quote_fails_the_upload_naming_the_line_and_keeps_nothing(tmp_path):
    from rjbatch.codecs import CodecError

    source = tmp_path / "in.csv"
    source.write_text('name,price,qty\nann,2,3\n"bob,5,1\n')
    job = TotalsJob()
    job.save()
    with pytest.raises(CodecError, match="line 3"):
        job.upload(source)
    assert job.input.count() == 0


def test_stream_mode_hash_and_array_parse_at_upload_for_plain_batch_jobs(tmp_path):
    class Plain(BatchJob):
        collect_output = True
        destroy_on_complete = False

        def perform(self, record):
            return record

    source = tmp_path / "in.csv"
    source.write_text("A,B\n1,2\n")
    job = Plain()
    job.upload(source, stream_mode="hash")
    assert list(run(job).output()) == [{"a": "1", "b": "2"}]
    job = Plain()
    job.upload(source, stream_mode="array")
    assert list(run(job).output()) == [["1", "2"]]


def test_encoding_and_cleaner_options(tmp_path):
    class Lines(BatchJob):
        collect_output = True
        destroy_on_complete = False

        def perform(self, line):
            return line

    source = tmp_path / "latin.txt"
    source.write_bytes("café\nna\x07ive\n".encode("latin-1"))
    job = Lines()
    job.upload(source, encoding="latin-1", encode_cleaner="printable")
    assert list(run(job).output()) == ["café", "naive"]


def test_zip_download_names_the_entry_after_the_file(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("name,price,qty\nann,2,3\n")
    job = TotalsJob()
    job.upload(source)
    run(job)
    job.download(tmp_path / "out.csv.zip")
    with zipfile.ZipFile(tmp_path / "out.csv.zip") as archive:
        assert archive.namelist() == ["out.csv"]
        rows = list(csv.reader(io.StringIO(archive.read("out.csv").decode())))
    assert rows == [["name", "total"], ["ANN", "6"]]
