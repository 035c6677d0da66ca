"""Parquet files, read and written a batch of rows at a time with pyarrow.

Records are dicts keyed by column name. Reading walks the file batch by batch and writing
buffers ``row_group_size`` records before writing them as one row group, so memory stays
bounded by one batch whatever the file's size.

Column types are inferred from the first row group, each Python type to its Parquet type,
so that reading back gives the same Python values: ``Decimal`` → ``decimal128(38, scale)``
(the scale of the first row group, every digit decimal128 has for the integer part;
``decimal256`` beyond 38 digits),
``date`` → ``date32``, naive ``datetime`` → ``timestamp('us')``, aware → ``timestamp('us',
tz=...)`` (the first value's zone), ``time`` → ``time64('us')``, ``UUID`` → string,
``bytes`` → binary, lists → list columns, dicts → struct columns. A value of a later row
group that does not fit (a wider Decimal, an aware datetime in a naive column, ...) raises
``TabularError`` naming the column, as do naive and aware datetimes mixed in one group and
Decimal NaN or Infinity.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import IO, Any

from .errors import TabularError, check_one_file

# pyarrow is imported here, but only read_parquet and write_parquet need it: without it they
# raise TabularError saying what to install (the rest of rjbatch works without it)
try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as error:
    pa = pq = None
    _MISSING = "" if isinstance(error, ModuleNotFoundError) and error.name == "pyarrow" else f" ({error})"

PathOrFile = str | os.PathLike | IO[bytes]

#: Types pyarrow converts as they are: a column holding only these needs no look at its values.
_PLAIN_TYPES = frozenset({str, int, float, bool, bytes, dt.date, dt.time, list, dict, type(None)})


def read_parquet(
    source: PathOrFile, batch_size: int = 10_000, columns: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each row of a Parquet file as a dict, reading ``batch_size`` rows at a time.

    ``columns`` reads only those columns. A non-seekable stream is spooled to a temporary
    file first, because Parquet keeps its index at the end of the file. A zip stream of
    several entries raises ``TabularError`` (pass ``zip_entry=`` to ``open_read``).
    """
    _require_pyarrow()
    check_one_file(source, "Parquet")
    spool = None
    if not isinstance(source, (str, os.PathLike)) and not _seekable(source):
        spool = tempfile.TemporaryFile()
        shutil.copyfileobj(source, spool)
        spool.seek(0)
        source = spool
    try:
        try:
            parquet = pq.ParquetFile(source)
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as error:
            raise TabularError(f"Cannot read the Parquet file: {error}") from error
        with parquet:
            names = None if columns is None else list(columns)
            for batch in parquet.iter_batches(batch_size=batch_size, columns=names):
                yield from batch.to_pylist()
    finally:
        if spool is not None:
            spool.close()


def _require_pyarrow() -> None:
    if pa is None:
        raise TabularError(f"Reading or writing .parquet needs pyarrow{_MISSING}: pip install 'rjbatch[parquet]'")


def _seekable(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except AttributeError:
        return False


def write_parquet(
    target: PathOrFile,
    records: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    schema: pa.Schema | None = None,
    row_group_size: int = 50_000,
    compression: str = "snappy",
) -> int:
    """Write records to a Parquet file in row groups; return the number of records.

    The columns are ``columns``, else the schema's names, else the keys of the first record;
    other keys are ignored and missing ones are null. Without ``schema`` the column types are
    inferred from the first row group (see the module docstring; a column that is all null
    there is written as string); a later value of another type raises ``TabularError``
    naming the column.
    """
    _require_pyarrow()
    if schema is not None and columns is None:
        columns = schema.names
    writer: pq.ParquetWriter | None = None
    count = 0
    batch: list[Mapping[str, Any]] = []
    try:
        for record in records:
            if columns is None:
                columns = list(record.keys())
            batch.append(record)
            if len(batch) >= row_group_size:
                writer, schema = _write_batch(target, writer, schema, columns, batch, compression)
                count += len(batch)
                batch = []
        if batch or writer is None:
            writer, schema = _write_batch(target, writer, schema, columns or [], batch, compression)
            count += len(batch)
    finally:
        if writer is not None:
            writer.close()
    return count


def _prepare(name: str, values: list[Any]) -> tuple[list[Any], bool | None]:
    """The values as pyarrow should see them, and whether their datetimes are aware.

    UUIDs become their text; naive and aware datetimes together, and Decimal NaN or
    Infinity, raise ``TabularError``. The flag is None when there is no datetime.
    """
    kinds = set(map(type, values))
    if kinds <= _PLAIN_TYPES:
        return values, None
    if any(issubclass(kind, uuid.UUID) for kind in kinds):
        values = [str(value) if isinstance(value, uuid.UUID) else value for value in values]
    aware: bool | None = None
    if any(issubclass(kind, dt.datetime) for kind in kinds):
        zones = {
            value.utcoffset() is not None for value in values if isinstance(value, dt.datetime)
        }
        if len(zones) > 1:
            raise TabularError(
                f"Parquet column {name!r}: naive and aware datetimes mixed; a column is one or "
                "the other"
            )
        aware = zones.pop()
    if any(issubclass(kind, Decimal) for kind in kinds):
        bad = next(
            (v for v in values if isinstance(v, Decimal) and not v.is_finite()), None
        )
        if bad is not None:
            raise TabularError(f"Parquet column {name!r}: Decimal {bad} has no Parquet value")
    return values, aware


def _column(name: str, values: list[Any], type_: pa.DataType | None) -> pa.Array:
    """One column of a row group: its type inferred (``type_`` None) or checked."""
    values, aware = _prepare(name, values)
    if type_ is None:
        try:
            array = pa.array(values)
        except (pa.ArrowException, ValueError, TypeError) as error:
            raise TabularError(f"Parquet column {name!r}: cannot infer a type: {error}") from None
        if pa.types.is_null(array.type):
            return array.cast(pa.string())
        if pa.types.is_decimal128(array.type) and array.type.precision < 38:
            # the first row group's widest value is no bound for later ones: keep its scale,
            # give the integer part all of decimal128's 38 digits
            return array.cast(pa.decimal128(38, array.type.scale))
        return array
    if aware is not None and pa.types.is_timestamp(type_) and aware != (type_.tz is not None):
        kind = "an aware" if aware else "a naive"
        raise TabularError(
            f"Parquet column {name!r}: {kind} datetime does not fit type {type_}"
        )
    try:
        return pa.array(values, type=type_)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise TabularError(
            f"Parquet column {name!r}: a value does not fit type {type_}: {error}"
        ) from None


def _write_batch(
    target: PathOrFile,
    writer: pq.ParquetWriter | None,
    schema: pa.Schema | None,
    columns: Sequence[str],
    batch: list[Mapping[str, Any]],
    compression: str,
) -> tuple[pq.ParquetWriter, pa.Schema]:
    if schema is None:
        arrays = [_column(name, [record.get(name) for record in batch], None) for name in columns]
        schema = pa.schema(
            [pa.field(name, array.type) for name, array in zip(columns, arrays, strict=True)]
        )
    else:
        arrays = [
            _column(field.name, [record.get(field.name) for record in batch], field.type)
            for field in schema
        ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    if writer is None:
        writer = pq.ParquetWriter(target, schema, compression=compression)
    writer.write_table(table, row_group_size=max(len(batch), 1))
    return writer, schema
