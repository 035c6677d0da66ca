"""CSV to Python dicts: rjbatch's LineReader + Tabular.parse_many against pyarrow.csv (+ to_pylist).

Workers hand ``perform`` dicts, so a faster CSV reader pays only if its rows become dicts
faster too. Run after ``python -m benchmarks.batch`` made its CSV:
``python -m benchmarks.csv_to_dicts [FILE]``.
"""

from __future__ import annotations

import glob
import sys
import time

from rjbatch.codecs import LineReader, open_read
from rjbatch.codecs.tabular import Tabular


def rjbatch_rows(source: str) -> int:
    count = 0
    with open_read(source) as stream:
        blocks = LineReader(stream, file_name=source, embedded_within='"').blocks()
        first = next(blocks)
        tabular = Tabular("csv")
        tabular.parse_header(first[0])
        count += len(tabular.parse_many(first[1:]))
        for block in blocks:
            count += len(tabular.parse_many(block))
    return count


def pyarrow_rows(source: str) -> int:
    import pyarrow.csv as pc

    table = pc.read_csv(source, read_options=pc.ReadOptions(use_threads=False),
                        convert_options=pc.ConvertOptions(strings_can_be_null=False))
    return len(table.to_pylist())


def main() -> None:
    source = sys.argv[1] if len(sys.argv) > 1 else sorted(glob.glob("/tmp/rjbatch-bench-cache/orders_1000000*.csv"))[0]
    for name, read in (("rjbatch LineReader + parse_many (1 core)", rjbatch_rows),
                       ("pyarrow read_csv (1 thread) + to_pylist", pyarrow_rows)):
        started = time.perf_counter()
        rows = read(source)
        print(f"{name}: {rows:,} rows in {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
