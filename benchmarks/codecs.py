"""Benchmark of the codec pipeline: read a gzipped CSV as lines, write it back gzipped.

    python benchmarks/codecs.py                 # ~1 GB uncompressed (generated once, cached)
    python benchmarks/codecs.py --size-mb 50    # a quick run

Figures are MB/s of *uncompressed* data, all measured in the same run beside
``zcat FILE | wc -l``, Python's ``csv`` module and ``pyarrow.csv``. The data is a 10-column
CSV with realistic quoting: about 5% of rows quote a field holding commas and doubled quotes,
about 0.5% hold a quoted newline. The target: the line path within 1.5 × ``zcat | wc -l``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rjbatch.codecs import LineReader, open_read, read_line_blocks, read_lines

COLUMNS = "id,first_name,last_name,email,city,amount,quantity,created_at,active,comment"
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()
CITIES = ["London", "Paris", "New York", "São Paulo", "Zürich", "Tokyo", "Berlin", "Austin"]


def _row_pool(n: int, seed: int = 1) -> list[str]:
    """Rows without the id column; cycled with a fresh id so the file does not repeat in gzip's window."""
    rng = random.Random(seed)
    pool = []
    for _ in range(n):
        first, last = rng.choice(WORDS), rng.choice(WORDS).title()
        r = rng.random()
        if r < 0.05:
            comment = f'"{rng.choice(WORDS)}, {rng.choice(WORDS)} ""quoted"""'
        elif r < 0.055:
            comment = f'"multi\nline {rng.choice(WORDS)}"'
        else:
            comment = " ".join(rng.choices(WORDS, k=3))
        pool.append(
            f"{first},{last},{first}.{last.lower()}@example.com,{rng.choice(CITIES)},"
            f"{rng.randint(0, 99999) / 100},{rng.randint(1, 50)},"
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}T12:{rng.randint(10, 59)}:00Z,"
            f"{rng.choice(('true', 'false'))},{comment}"
        )
    return pool


def generate(path: Path, size_mb: int) -> None:
    """Write ``size_mb`` MB of CSV through ``gzip -6`` (a second process, so it is quick)."""
    print(f"generating {path} ({size_mb} MB uncompressed) ...", flush=True)
    pool = _row_pool(100_000)
    tmp = path.with_suffix(".tmp")
    target = size_mb * 1_000_000
    with open(tmp, "wb") as out:
        gz = subprocess.Popen(["gzip", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert gz.stdin is not None
        gz.stdin.write((COLUMNS + "\n").encode())
        written, i = 0, 0
        while written < target:
            chunk = "".join(f"{i + k},{pool[(i + k) % len(pool)]}\n" for k in range(20_000)).encode()
            i += 20_000
            gz.stdin.write(chunk)
            written += len(chunk)
        gz.stdin.close()
        if gz.wait() != 0:
            raise SystemExit("gzip failed")
    tmp.replace(path)


def uncompressed_size(path: Path) -> int:
    with open_read(path) as f:
        total = 0
        while chunk := f.read(1 << 20):
            total += len(chunk)
    return total


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --------------------------------------------------------------------------- the contestants


def zcat_wc(path: Path) -> int:
    out = subprocess.run(f"zcat '{path}' | wc -l", shell=True, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[0])


def rj_blocks(path: Path) -> int:
    return sum(len(block) for block in read_line_blocks(path))


def rj_blocks_unquoted(path: Path) -> int:
    return sum(len(block) for block in read_line_blocks(path, embedded_within=None))


def rj_lines(path: Path) -> int:
    n = 0
    for _ in read_lines(path):
        n += 1
    return n


def rj_reader_iter(path: Path) -> int:
    n = 0
    with open_read(path) as f:
        for _ in LineReader(f, file_name=f.file_name):
            n += 1
    return n


def py_csv(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.reader(f))


def py_gzip_lines(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return sum(1 for _ in f)


def arrow_csv(path: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    columns = COLUMNS.split(",")
    reader = pcsv.open_csv(
        str(path),
        read_options=pcsv.ReadOptions(block_size=1 << 22),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in columns}),
    )
    return sum(batch.num_rows for batch in reader) + 1  # + the header row


def rj_dicts(path: Path) -> int | None:
    try:
        from rjbatch.codecs.tabular import Tabular
    except ImportError:
        return None  # TODO: rjbatch.codecs.tabular not present: the dict-rows row is skipped
    tabular = Tabular(format="csv")
    n = 0
    with open_read(path) as f:
        reader = LineReader(f, file_name=f.file_name)
        header = True
        for block in reader.blocks():
            if header:
                tabular.parse_header(block[0])
                block = block[1:]
                header = False
            n += len(tabular.parse_many(block))
    return n + 1


def rj_write_gz(path: Path, out: Path) -> int:
    count = 0
    with write_target(out) as writer:
        for block in read_line_blocks(path):
            count += writer.write_many(block)
    return count


def write_target(out: Path):
    from rjbatch.codecs import LineWriter

    return LineWriter(out)


def shell_gzip(path: Path, out: Path) -> int:
    subprocess.run(f"zcat '{path}' | gzip -6 -n > '{out}'", shell=True, check=True)
    return 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1000, help="uncompressed size of the test file")
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get("RJBATCH_BENCH_CACHE", os.path.join(tempfile.gettempdir(), "rjbatch-bench")),
        help="where the generated file is kept between runs",
    )
    parser.add_argument("--skip", default="", help="comma-separated contestants to skip")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each contestant N times and keep the best (noisy machines)"
    )
    args = parser.parse_args(argv)

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"codecs-{args.size_mb}mb.csv.gz"
    if not path.exists():
        generate(path, args.size_mb)
    size = uncompressed_size(path)
    mb = size / 1e6
    print(f"file: {path} — {path.stat().st_size / 1e6:.0f} MB gzipped, {mb:.0f} MB uncompressed")
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.platform()}")
    if args.repeat > 1:
        print(f"best of {args.repeat} runs per contestant")

    out = cache / "codecs-write-out.csv.gz"
    skip = set(filter(None, args.skip.split(",")))
    contestants: list[tuple[str, Callable[[], object]]] = [
        ("zcat FILE | wc -l", lambda: zcat_wc(path)),
        ("rjbatch read_line_blocks (.csv: quote-aware)", lambda: rj_blocks(path)),
        ("rjbatch read_line_blocks (embedded_within=None)", lambda: rj_blocks_unquoted(path)),
        ("rjbatch read_lines (one str at a time)", lambda: rj_lines(path)),
        ("rjbatch LineReader iterated (exact line_number)", lambda: rj_reader_iter(path)),
        ("python gzip.open + iterate lines", lambda: py_gzip_lines(path)),
        ("python csv.reader over gzip.open", lambda: py_csv(path)),
        ("pyarrow.csv.open_csv (streaming)", lambda: arrow_csv(path)),
        ("rjbatch lines → dicts (codecs.tabular)", lambda: rj_dicts(path)),
        ("zcat FILE | gzip -6 > OUT", lambda: shell_gzip(path, out)),
        ("rjbatch read + write_many → .csv.gz", lambda: rj_write_gz(path, out)),
    ]
    results = []
    for name, fn in contestants:
        if any(s in name for s in skip):
            continue
        seconds, count = timed(fn)
        for _ in range(args.repeat - 1):
            if count is None:
                break
            seconds = min(seconds, timed(fn)[0])
        if count is None:
            results.append((name, None, None, "TODO: rjbatch.codecs.tabular missing"))
            continue
        results.append((name, seconds, count, ""))
        print(f"  {name:<50} {seconds:7.2f} s  {mb / seconds:7.1f} MB/s  {count if count else ''}", flush=True)

    base = next((r[1] for r in results if r[0].startswith("zcat FILE | wc")), None)
    print()
    print("| contestant | seconds | MB/s | × zcat\\|wc -l | records |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, count, note in results:
        if seconds is None:
            print(f"| {name} | – | – | – | {note} |".replace(" | FILE", " \\| FILE"))
            continue
        ratio = f"{seconds / base:.2f}" if base else "–"
        name = name.replace("|", "\\|")
        print(f"| {name} | {seconds:.2f} | {mb / seconds:.0f} | {ratio} | {count or ''} |")
    if out.exists():
        out.unlink()
    if not shutil.which("zcat"):
        print("note: zcat not found", file=sys.stderr)


if __name__ == "__main__":
    main()
