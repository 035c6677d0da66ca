"""What a data job's perform() returns (Decimal, dates, times, datetimes, UUIDs, bytes, nested
lists and dicts, bools, None) is rendered by every format in its own way: text spelled one way
in csv, psv, fixed width and json strings; real types in Parquet and Excel."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rjbatch.codecs.tabular import (
    Tabular,
    TabularError,
    read_parquet,
    read_xlsx,
    write_parquet,
    write_xlsx,
)
from rjbatch.codecs.tabular.delimited import csv_field, csv_line, csv_lines, psv_line, ruby_str
from rjbatch.codecs.tabular.jsonl import json_line
from rjbatch.codecs.tabular.xlsx import is_date_only_format

UTC = dt.UTC
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

#: (value, its csv text before quoting)
SPELLINGS = [
    (Decimal("12.50"), "12.50"),
    (Decimal("1E+2"), "100"),
    (Decimal("1E-7"), "0.0000001"),
    (Decimal("-0.00"), "-0.00"),
    (Decimal("123456789012345678901234567890.123"), "123456789012345678901234567890.123"),
    (Decimal("NaN"), "NaN"),
    (Decimal("1E+500"), "1E+500"),  # a huge exponent keeps its exponent form
    (dt.date(2026, 1, 1), "2026-01-01"),
    (dt.time(10, 30), "10:30:00"),
    (dt.time(10, 30, 0, 500), "10:30:00.000500"),
    (dt.datetime(2026, 1, 1, 10, 0), "2026-01-01 10:00:00"),
    (dt.datetime(2026, 1, 1, 10, 0, 0, 250000), "2026-01-01 10:00:00.250000"),
    (dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC), "2026-01-01 10:00:00+00:00"),
    (dt.datetime(2026, 1, 1, 10, 0, tzinfo=PLUS_2), "2026-01-01 10:00:00+02:00"),
    (ID, "12345678-1234-5678-1234-567812345678"),
    (b"caf\xc3\xa9", "café"),
    (bytearray(b"x"), "x"),
    ([1, Decimal("1.50"), dt.date(2026, 1, 1)], '[1, "1.50", "2026-01-01"]'),
    ({"a": {"b": [True, None]}, "t": dt.time(1, 2)}, '{"a": {"b": [true, null]}, "t": "01:02:00"}'),
    (True, "true"),
    (False, "false"),
    (7, "7"),
    (1.5, "1.5"),
]


@pytest.mark.parametrize("value, text", SPELLINGS, ids=[repr(v)[:40] for v, _ in SPELLINGS])
def test_every_value_has_one_csv_spelling(value, text):
    assert ruby_str(value) == text
    expected = '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text
    assert csv_field(value) == expected
    assert csv_line([value, "x"]) == f"{expected},x"
    assert csv_lines([[value, "x"], ["y", value]], 2) == [f"{expected},x", f"y,{expected}"]
    assert psv_line([value, None]) == f"{text}|"


def test_csv_lines_the_batch_path_gives_csv_lines_text_for_rich_rows():
    values = [v for v, _ in SPELLINGS] + [None, "", "plain", "a,b", 'q"q']
    rows = [values[i:] + values[:i] for i in range(len(values))]
    width = len(values)
    assert csv_lines(rows, width) == [csv_line(row) for row in rows]
    tabular = Tabular(columns=[f"c{i}" for i in range(width)])
    records = [dict(zip(tabular.columns, row, strict=True)) for row in rows]
    assert tabular.render_many(records) == [tabular.render(record) for record in records]
    assert tabular.render_many(records) == [csv_line(row) for row in rows]


def test_a_rendered_csv_line_reads_back_as_the_text():
    tabular = Tabular(columns=["amount", "day", "at", "when", "id", "tags"])
    record = {
        "amount": Decimal("12.50"),
        "day": dt.date(2026, 1, 1),
        "at": dt.time(10, 30),
        "when": dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
        "id": ID,
        "tags": ["a", "b"],
    }
    line = tabular.render(record)
    assert line == (
        '12.50,2026-01-01,10:30:00,2026-01-01 10:00:00+00:00,'
        '12345678-1234-5678-1234-567812345678,"[""a"", ""b""]"'
    )
    assert tabular.parse(line) == {key: ruby_str(value) for key, value in record.items()}


def test_json_keeps_its_own_types_and_spells_the_others_as_csv_does():
    record = {
        "amount": Decimal("12.50"),
        "big": Decimal("1E+2"),
        "day": dt.date(2026, 1, 1),
        "at": dt.time(10, 30),
        "naive": dt.datetime(2026, 1, 1, 10, 0),
        "aware": dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
        "id": ID,
        "raw": b"caf\xc3\xa9",
        "nested": [1, {"a": Decimal("1.5"), "d": dt.date(2026, 1, 2)}, (2, 3)],
        "ok": True,
        "none": None,
        "n": 3,
        "x": 2.5,
    }
    text = json_line(record)
    assert text == (
        '{"amount":"12.50","big":"100","day":"2026-01-01","at":"10:30:00",'
        '"naive":"2026-01-01 10:00:00","aware":"2026-01-01 10:00:00+00:00",'
        '"id":"12345678-1234-5678-1234-567812345678","raw":"café",'
        '"nested":[1,{"a":"1.5","d":"2026-01-02"},[2,3]],"ok":true,"none":null,"n":3,"x":2.5}'
    )
    back = json.loads(text)
    for key, value in record.items():
        if key == "nested":
            continue
        if value is None or isinstance(value, (bool, int, float)) and not isinstance(value, Decimal):
            assert back[key] == value
        else:
            assert back[key] == ruby_str(value)
    assert Tabular("json").render(record) == text


def test_fixed_width_string_columns_use_the_csv_spelling():
    layout = [
        {"key": "amount", "size": 8},
        {"key": "day", "size": 10},
        {"key": "when", "size": 25},
        {"key": "id", "size": 36},
        {"key": "ok", "size": 5},
        {"key": "rest", "size": "remainder"},
    ]
    tabular = Tabular("fixed", format_options={"layout": layout})
    line = tabular.render(
        {
            "amount": Decimal("1E+2"),
            "day": dt.date(2026, 1, 1),
            "when": dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
            "id": ID,
            "ok": False,
            "rest": [1, "a"],
        }
    )
    assert line == (
        "100     " "2026-01-01" "2026-01-01 10:00:00+00:00" "12345678-1234-5678-1234-567812345678"
        "false" '[1, "a"]'
    )


# -- parquet ---------------------------------------------------------------------------------


def rich_records() -> list[dict]:
    return [
        {
            "amount": Decimal("12.50"),
            "day": dt.date(2026, 1, 1),
            "naive": dt.datetime(2026, 1, 1, 10, 0, 0, 123456),
            "aware": dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
            "at": dt.time(10, 30, 0, 5),
            "id": ID,
            "raw": b"\x00\xffbytes",
            "tags": ["a", "b"],
            "point": {"x": 1, "y": 2.5},
            "ok": True,
            "note": None,
            "n": 1,
        },
        {
            "amount": Decimal("-123.4"),
            "day": None,
            "naive": dt.datetime(1999, 12, 31, 23, 59, 59),
            "aware": dt.datetime(2026, 6, 1, 12, 0, tzinfo=PLUS_2),
            "at": None,
            "id": uuid.UUID(int=1),
            "raw": b"",
            "tags": [],
            "point": {"x": 3, "y": None},
            "ok": False,
            "note": "text",
            "n": 2,
        },
        {
            "amount": Decimal("0.001"),
            "day": dt.date(1970, 1, 1),
            "naive": None,
            "aware": None,
            "at": dt.time(0, 0),
            "id": None,
            "raw": None,
            "tags": None,
            "point": None,
            "ok": None,
            "note": None,
            "n": None,
        },
    ]


def test_parquet_columns_get_the_types_of_their_values_and_read_back_the_same(tmp_path):
    path = tmp_path / "rich.parquet"
    records = rich_records()
    assert write_parquet(path, records) == 3
    schema = pq.read_schema(path)
    assert schema.field("amount").type == pa.decimal128(38, 3)  # the first group's scale, all 38 digits
    assert schema.field("day").type == pa.date32()
    assert schema.field("naive").type == pa.timestamp("us")
    assert schema.field("aware").type == pa.timestamp("us", tz="UTC")
    assert schema.field("at").type == pa.time64("us")
    assert schema.field("id").type == pa.string()
    assert schema.field("raw").type == pa.binary()
    assert schema.field("tags").type == pa.list_(pa.string())
    assert pa.types.is_struct(schema.field("point").type)
    assert schema.field("ok").type == pa.bool_()
    assert schema.field("note").type == pa.string()
    expected = [dict(r, id=None if r["id"] is None else str(r["id"])) for r in records]
    assert list(read_parquet(path)) == expected
    assert pq.read_table(path).to_pylist() == expected
    back = pq.read_table(path).to_pylist()
    assert back[1]["aware"] == dt.datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert back[1]["aware"].utcoffset() == dt.timedelta(0)
    assert str(back[0]["amount"]) == "12.500"  # the column's scale; the same value


def test_parquet_aware_datetimes_keep_their_zone(tmp_path):
    path = tmp_path / "zone.parquet"
    write_parquet(path, [{"t": dt.datetime(2026, 1, 1, 10, 0, tzinfo=PLUS_2)}])
    assert pq.read_schema(path).field("t").type == pa.timestamp("us", tz="+02:00")
    [record] = read_parquet(path)
    assert record["t"] == dt.datetime(2026, 1, 1, 10, 0, tzinfo=PLUS_2)
    assert record["t"].utcoffset() == dt.timedelta(hours=2)


def test_a_later_decimal_with_a_wider_integer_part_fits_but_a_finer_scale_names_the_column(tmp_path):
    records = [{"amount": Decimal("1.25")}, {"amount": Decimal("99.99")}, {"amount": Decimal("1.255")}]
    with pytest.raises(TabularError, match=r"Parquet column 'amount'.*decimal128\(38, 2\)"):
        write_parquet(tmp_path / "x.parquet", records, row_group_size=2)
    records[2] = {"amount": Decimal("123456789012.50")}  # 38 digits for the integer part
    write_parquet(tmp_path / "y.parquet", records, row_group_size=2)
    assert [r["amount"] for r in read_parquet(tmp_path / "y.parquet")][2] == Decimal("123456789012.50")
    records[2] = {"amount": Decimal("-5.1")}
    write_parquet(tmp_path / "z.parquet", records, row_group_size=2)
    assert [r["amount"] for r in read_parquet(tmp_path / "z.parquet")] == [
        Decimal("1.25"), Decimal("99.99"), Decimal("-5.1"),
    ]  # fmt: skip


def test_naive_and_aware_datetimes_do_not_mix_in_a_column(tmp_path):
    naive, aware = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(TabularError, match="Parquet column 't': naive and aware"):
        write_parquet(tmp_path / "a.parquet", [{"t": naive}, {"t": aware}])
    with pytest.raises(TabularError, match="Parquet column 't': an aware datetime does not fit"):
        write_parquet(tmp_path / "b.parquet", [{"t": naive}, {"t": aware}], row_group_size=1)
    with pytest.raises(TabularError, match="Parquet column 't': a naive datetime does not fit"):
        write_parquet(tmp_path / "c.parquet", [{"t": aware}, {"t": naive}], row_group_size=1)


def test_decimal_nan_has_no_parquet_value(tmp_path):
    with pytest.raises(TabularError, match="Parquet column 'd': Decimal NaN"):
        write_parquet(tmp_path / "n.parquet", [{"d": Decimal("1")}, {"d": Decimal("NaN")}])


def test_uuids_in_a_later_row_group_and_a_given_schema_become_text(tmp_path):
    path = tmp_path / "ids.parquet"
    write_parquet(path, [{"id": "plain"}, {"id": ID}], row_group_size=1)
    assert [r["id"] for r in read_parquet(path)] == ["plain", str(ID)]
    schema = pa.schema([pa.field("id", pa.string()), pa.field("d", pa.decimal128(10, 2))])
    write_parquet(path, [{"id": ID, "d": Decimal("1.5")}], schema=schema)
    assert list(read_parquet(path)) == [{"id": str(ID), "d": Decimal("1.50")}]


# -- xlsx ------------------------------------------------------------------------------------


def test_xlsx_writes_each_type_so_that_it_reads_back_as_itself(tmp_path):
    path = tmp_path / "rich.xlsx"
    header = ["day", "when", "at", "aware", "amount", "id", "raw", "tags", "point", "ok", "n"]
    row = [
        dt.date(2026, 1, 1),
        dt.datetime(2026, 1, 1, 10, 30, 15),
        dt.time(10, 30),
        dt.datetime(2026, 1, 1, 12, 0, tzinfo=PLUS_2),
        Decimal("12.50"),
        ID,
        b"caf\xc3\xa9",
        [1, "a"],
        {"k": Decimal("1.5")},
        True,
        7,
    ]
    midnight = [dt.datetime(2026, 1, 2), dt.date(2026, 1, 3)]
    write_xlsx(path, [row, midnight], header=header)
    book = openpyxl.load_workbook(path)  # as openpyxl itself sees the file
    sheet = book.active
    cells = {header[i]: sheet.cell(row=2, column=i + 1) for i in range(len(header))}
    assert cells["day"].number_format == "yyyy-mm-dd"
    assert cells["when"].number_format == "yyyy-mm-dd h:mm:ss"
    assert cells["at"].number_format == "h:mm:ss"
    assert cells["amount"].data_type == "n"
    assert cells["id"].value == str(ID)
    assert sheet.cell(row=3, column=1).number_format == "yyyy-mm-dd h:mm:ss"
    assert sheet.cell(row=3, column=2).number_format == "yyyy-mm-dd"  # no format leaks
    rows = list(read_xlsx(path))
    assert rows[0] == header
    assert rows[1] == [
        dt.date(2026, 1, 1),
        dt.datetime(2026, 1, 1, 10, 30, 15),
        dt.time(10, 30),
        dt.datetime(2026, 1, 1, 10, 0),  # aware: its UTC time
        12.5,
        str(ID),
        "café",
        '[1, "a"]',
        '{"k": "1.5"}',
        True,
        7,
    ]
    assert rows[2] == [dt.datetime(2026, 1, 2), dt.date(2026, 1, 3)]  # midnight stays a datetime


def test_read_xlsx_gives_dates_for_date_formats_of_other_tools(tmp_path):
    path = tmp_path / "formats.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    formats = [
        "yyyy-mm-dd", "d-mmm-yy", "mm/dd/yyyy", "[$-409]mmmm d, yyyy", 'yyyy "h" mm',
        "yyyy-mm-dd hh:mm", "m/d/yy h:mm AM/PM", "mm:ss", "General",
    ]  # fmt: skip
    for column, number_format in enumerate(formats, 1):
        cell = sheet.cell(row=1, column=column, value=dt.datetime(2026, 3, 4, 5, 6, 7))
        cell.number_format = number_format
    time_cell = sheet.cell(row=1, column=len(formats) + 1, value=dt.time(5, 6))
    time_cell.number_format = "h:mm"
    book.save(path)
    [row] = list(read_xlsx(path))
    day, moment = dt.date(2026, 3, 4), dt.datetime(2026, 3, 4, 5, 6, 7)
    assert row[:8] == [day] * 5 + [moment] * 3
    assert isinstance(row[8], float)  # "General": not a date at all, the day number
    assert row[9] == dt.time(5, 6)


@pytest.mark.parametrize(
    "number_format, date_only",
    [
        ("yyyy-mm-dd", True), ("yyyy\\-mm\\-dd", True), ("d-mmm-yy", True), ("dddd", True),
        ('"at "yyyy', True), ("[Red][$-409]mmmm d", True), ("yyyy-mm-dd h:mm", False),
        ("hh:mm:ss", False), ("mm:ss.0", False), ("h AM/PM", False), ("General", False),
        ("0.00", False), ("", False), (None, False),
    ],
)  # fmt: skip
def test_date_only_formats(number_format, date_only):
    assert is_date_only_format(number_format) is date_only


def test_xlsx_round_trip_through_a_file_object():
    buffer = io.BytesIO()
    write_xlsx(buffer, [[dt.date(2026, 1, 1), Decimal("0.1")]])
    buffer.seek(0)
    assert list(read_xlsx(buffer)) == [[dt.date(2026, 1, 1), 0.1]]
