"""Whole-file formats (xlsx, parquet) through real files, and formats inferred from file names."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rjbatch.codecs.tabular import (
    Tabular,
    TabularError,
    format_from_file_name,
    read_parquet,
    read_xlsx,
    write_parquet,
    write_xlsx,
)

FIXTURES = Path(__file__).parent / "fixtures" / "tabular"


class OneWayStream(io.RawIOBase):
    """A readable or writable stream that cannot seek, like a pipe or a download."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = io.BytesIO(data)
        self.written = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def write(self, data) -> int:
        self.written += bytes(data)
        return len(data)


# -- format inference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.json.gz", "json"),
        ("a.psv.csv", "csv"),
        ("data.csv.gz.enc", "csv"),
        ("A.CSV.GZ", "csv"),  # Ruby: no format (case-sensitive); rjbatch ignores case
        ("x.jsonl", "json"),
        ("x.ndjson.bz2", "json"),
        ("report.xlsx", "xlsx"),
        ("macro.XLSM", "xlsx"),
        ("t.parquet", "parquet"),
        ("layout.fixed", "fixed"),
        ("a.xlsx.zip", "xlsx"),
        ("/in/reports.csv.d/file.txt", None),  # only the base name counts
        (r"C:\in\x.psv", "psv"),
        ("s3://bucket/dir/x.psv.gz?versionId=3", "psv"),
        (Path("/tmp/y.json"), "json"),
        ("csv", None),
        ("a.gz", None),
        ("", None),
    ],
)
def test_format_is_inferred_from_the_right_most_known_extension(name, expected):
    assert format_from_file_name(name) == expected


# -- xlsx ------------------------------------------------------------------------------------


def test_xlsx_saved_by_libreoffice_reads_typed_rows_of_varying_length():
    rows = list(read_xlsx(FIXTURES / "people.xlsx"))
    assert rows == [
        [" First Name ", "Last-Name", "Age", "Weight", "Born", "Active", "Notes"],
        ["Jack", "Jones", 21, 70.5, dt.date(2001, 3, 5), 1, 'line one\nline, "two"'],
        [],  # an empty row in the sheet
        ["Jill", "Café", 22],  # stops at its last cell
    ]


def test_xlsx_rows_become_dicts_under_a_cleansed_header():
    tabular = Tabular("xlsx")
    rows = read_xlsx(FIXTURES / "people.xlsx")
    assert tabular.parse_header(next(rows)) == [
        "first_name",
        "last_name",
        "age",
        "weight",
        "born",
        "active",
        "notes",
    ]
    records = [tabular.parse_row(row) for row in rows]
    assert records[1] is None
    assert records[2] == {
        "first_name": "Jill",
        "last_name": "Café",
        "age": 22,
        "weight": None,
        "born": None,
        "active": None,
        "notes": None,
    }


def test_xlsx_sheet_can_be_chosen_by_name_or_index():
    assert list(read_xlsx(FIXTURES / "people.xlsx", sheet="Other")) == [["code"], ["007"]]
    assert list(read_xlsx(FIXTURES / "people.xlsx", sheet=1)) == [["code"], ["007"]]
    with pytest.raises(TabularError, match="No sheet 'Missing'.*'People', 'Other'"):
        list(read_xlsx(FIXTURES / "people.xlsx", sheet="Missing"))
    with pytest.raises(TabularError, match="has 2 sheets, no sheet 5"):
        list(read_xlsx(FIXTURES / "people.xlsx", sheet=5))


def test_xlsx_round_trips_through_a_file(tmp_path):
    path = tmp_path / "out.xlsx"
    tabular = Tabular("xlsx", columns=["name", "n", "when", "ok", "note"])
    records = [
        {
            "name": "Jack",
            "n": 1,
            "when": dt.datetime(2021, 3, 5, 10, 30),
            "ok": True,
            "note": "a\nb",
        },
        {"name": "Zoë", "n": 2.5, "when": None, "ok": False, "note": ""},
    ]
    count = write_xlsx(path, (tabular.to_row(r) for r in records), header=tabular.columns)
    assert count == 2
    reader = Tabular("xlsx")
    rows = read_xlsx(path)
    assert reader.parse_header(next(rows)) == tabular.columns
    back = [reader.parse_row(row) for row in rows]
    records[1]["note"] = None  # an empty cell
    assert back == records


def test_xlsx_writes_dict_rows_under_the_header_and_reads_from_file_objects(tmp_path):
    buffer = io.BytesIO()
    write_xlsx(buffer, [{"b": 2, "a": 1}, {"a": 3}], header=["a", "b"], sheet_name="Data")
    assert not buffer.closed
    data = buffer.getvalue()
    expected = [["a", "b"], [1, 2], [3]]
    assert list(read_xlsx(io.BytesIO(data))) == expected
    assert list(read_xlsx(OneWayStream(data), sheet="Data")) == expected  # spooled first
    with pytest.raises(TabularError, match="needs a header to write dict rows"):
        write_xlsx(tmp_path / "x.xlsx", [{"a": 1}])


def test_xlsx_writes_aware_datetimes_as_their_utc_time():
    buffer = io.BytesIO()
    plus_two = dt.timezone(dt.timedelta(hours=2))
    write_xlsx(buffer, [[dt.datetime(2021, 1, 1, 12, 0, tzinfo=plus_two)]])
    buffer.seek(0)
    assert list(read_xlsx(buffer)) == [[dt.datetime(2021, 1, 1, 10, 0)]]


def test_a_missing_file_is_still_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_xlsx(tmp_path / "missing.xlsx"))
    with pytest.raises(FileNotFoundError):
        list(read_parquet(tmp_path / "missing.parquet"))


def test_xlsx_with_understated_dimensions_still_reads_every_cell(tmp_path):
    path = tmp_path / "wrong.xlsx"
    write_xlsx(path, [["a", "b", "c"], [1, 2, 3], [4, 5, 6]])
    fixed = tmp_path / "dimension_a1.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(fixed, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                # openpyxl writes no <dimension>: add one that claims a single cell
                data = data.replace(b"</sheetPr>", b'</sheetPr><dimension ref="A1:A1"/>')
                assert b'ref="A1:A1"' in data
            target.writestr(item, data)
    assert list(read_xlsx(fixed)) == [["a", "b", "c"], [1, 2, 3], [4, 5, 6]]


def test_xlsx_errors_are_clear(tmp_path):
    with pytest.raises(TabularError, match="Cannot open the workbook"):
        list(read_xlsx(io.BytesIO(b"not a zip")))
    with pytest.raises(TabularError, match="Row 2 holds a control character"):
        write_xlsx(tmp_path / "bad.xlsx", [["ok"], ["bell\x07"]])


def test_a_header_only_xlsx_gives_no_records(tmp_path):
    path = tmp_path / "header.xlsx"
    write_xlsx(path, [], header=["Name", "Age"])
    tabular = Tabular("xlsx")
    rows = read_xlsx(path)
    assert tabular.parse_header(next(rows)) == ["name", "age"]
    assert [tabular.parse_row(row) for row in rows] == []


def test_line_methods_point_binary_formats_to_their_file_functions():
    with pytest.raises(TabularError, match=r"read it with read_xlsx\(\)"):
        Tabular("xlsx", columns=["a"]).parse("a")
    with pytest.raises(TabularError, match=r"write it with write_parquet\(\)"):
        Tabular("parquet").render({"a": 1})


# -- parquet ---------------------------------------------------------------------------------


def test_parquet_round_trips_typed_records_through_a_file(tmp_path):
    path = tmp_path / "out.parquet"
    records = [
        {"name": "Jack", "n": 1, "score": 1.5, "when": dt.datetime(2021, 3, 5, 10, 30), "ok": True},
        {"name": None, "n": None, "score": 2.0, "when": None, "ok": False},
    ]
    assert write_parquet(path, records) == 2
    assert list(read_parquet(path)) == records
    assert list(read_parquet(str(path), columns=["n"])) == [{"n": 1}, {"n": None}]


def test_parquet_is_written_in_row_groups_and_read_in_batches(tmp_path):
    path = tmp_path / "big.parquet"
    records = ({"i": i, "s": str(i)} for i in range(2_500))
    assert write_parquet(path, records, row_group_size=1_000) == 2_500
    assert pq.ParquetFile(path).num_row_groups == 3
    reader = read_parquet(path, batch_size=100)
    assert next(reader) == {"i": 0, "s": "0"}  # a generator: nothing is read ahead of need
    assert sum(1 for _ in reader) == 2_499


def test_parquet_narrows_records_to_the_columns_and_fills_missing_keys():
    buffer = io.BytesIO()
    write_parquet(buffer, [{"a": 1, "x": "ignored"}, {"b": "only b"}], columns=["a", "b"])
    assert not buffer.closed
    buffer.seek(0)
    assert list(read_parquet(buffer)) == [{"a": 1, "b": None}, {"a": None, "b": "only b"}]


def test_parquet_column_types_come_from_the_first_row_group_or_a_schema(tmp_path):
    path = tmp_path / "typed.parquet"
    with pytest.raises(TabularError, match="Parquet column 'a': a value does not fit type int64"):
        write_parquet(path, [{"a": 1}, {"a": "text"}], row_group_size=1)
    schema = pa.schema([("a", pa.string()), ("b", pa.float64())])
    write_parquet(path, [{"a": "x", "b": 1}], schema=schema)
    assert pq.ParquetFile(path).schema_arrow == schema
    assert list(read_parquet(path)) == [{"a": "x", "b": 1.0}]


def test_parquet_streams_to_and_from_non_seekable_streams():
    sink = OneWayStream()
    write_parquet(sink, [{"a": "x"}, {"a": None}])
    assert list(read_parquet(OneWayStream(bytes(sink.written)))) == [{"a": "x"}, {"a": None}]


def test_parquet_with_no_records_is_a_valid_empty_file(tmp_path):
    path = tmp_path / "empty.parquet"
    assert write_parquet(path, [], columns=["a"]) == 0
    assert list(read_parquet(path)) == []
    with pytest.raises(TabularError, match="Cannot read the Parquet file"):
        list(read_parquet(io.BytesIO(b"not parquet")))


def test_parquet_records_pass_through_tabular_for_column_narrowing():
    tabular = Tabular("parquet", columns=["a"])
    assert not tabular.header_required
    assert tabular.parse_row({"a": 1, "b": 2}) == {"a": 1}
    assert tabular.to_row({"b": 2, "a": 1}) == [1]
