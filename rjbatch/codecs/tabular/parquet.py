"""Parquet files, read and written a batch of rows at a time with pyarrow.

Records are dicts keyed by column name. Reading walks the file batch by batch and writing
buffers ``row_group_size`` records before writing them as one row group, so memory stays
bounded by one batch whatever the file's size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from .errors import TabularError

PathOrFile = str | os.PathLike | IO[bytes]


def read_parquet(
    source: PathOrFile, batch_size: int = 10_000, columns: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Yield each row of a Parquet file as a dict, reading ``batch_size`` rows at a time.

    ``columns`` reads only those columns. A non-seekable stream is spooled to a temporary
    file first, because Parquet keeps its index at the end of the file.
    """
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
    inferred from the first row group (a column that is all null there is written as
    string); a later value of another type raises ``TabularError`` naming the column.
    """
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


def _write_batch(
    target: PathOrFile,
    writer: pq.ParquetWriter | None,
    schema: pa.Schema | None,
    columns: Sequence[str],
    batch: list[Mapping[str, Any]],
    compression: str,
) -> tuple[pq.ParquetWriter, pa.Schema]:
    if schema is None:
        arrays = []
        for name in columns:
            try:
                array = pa.array([record.get(name) for record in batch])
            except (pa.ArrowException, ValueError, TypeError) as error:
                raise TabularError(
                    f"Parquet column {name!r}: cannot infer a type: {error}"
                ) from None
            arrays.append(array.cast(pa.string()) if pa.types.is_null(array.type) else array)
        schema = pa.schema(
            [pa.field(name, array.type) for name, array in zip(columns, arrays, strict=True)]
        )
        table = pa.Table.from_arrays(arrays, schema=schema)
    else:
        arrays = []
        for field in schema:
            try:
                values = [record.get(field.name) for record in batch]
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowException, ValueError, TypeError) as error:
                raise TabularError(
                    f"Parquet column {field.name!r}: a value does not fit type {field.type}: {error}"
                ) from None
        table = pa.Table.from_arrays(arrays, schema=schema)
    if writer is None:
        writer = pq.ParquetWriter(target, schema, compression=compression)
    writer.write_table(table, row_group_size=max(len(batch), 1))
    return writer, schema
