"""Peer side of the batch benchmark: one big file, processed record by record.

Workloads (the same definitions rjbatch's own benchmark must use):

* ``lines``: the records are the input's lines without their ``\\n``; ``perform`` is a
  no-op (:func:`perform_line` returns the record); every result is written to one output
  file, in input order, followed by ``\\n``. The output equals the input.
* ``csv``: the input (see :func:`benchmarks.peers.data.make_csv_file`) is parsed into
  dicts (``csv.DictReader``); :func:`transform_row` upper-cases ``city`` and adds
  ``total`` = ``float(amount) * int(quantity)`` formatted ``"%.2f"``; rows are written
  back in input order with ``csv.DictWriter`` (header = input columns + ``total``,
  ``lineterminator="\\n"``, default minimal quoting).

Peers: ``plain`` (one process), ``pool`` (``multiprocessing.Pool(2)``: the parent reads
chunks of lines, ``imap`` keeps order, the parent writes), ``dask`` (``dask.bag.read_text``
with a byte ``blocksize``, the ``processes`` scheduler with 2 workers, one part file per
partition, concatenated in order into the output by the parent).

Measured for each: ``seconds_total`` = wall time from opening the input to the output
file being complete and closed (data generation and module imports excluded; process
pool start-up included); ``records_per_second`` = records / seconds_total;
``peak_rss_mb`` = the largest sum of RSS over the process running the peer and all its
descendants, sampled every 20 ms by a thread (:class:`benchmarks.peers._common.RssSampler`).
Called in-process, the caller's own memory is part of that tree; :func:`run_isolated`
runs a peer in a fresh interpreter so figures do not depend on what ran before.

Run ``python -m benchmarks.peers.batch_peers --help`` from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import functools
import io
import itertools
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.peers._common import REPO_ROOT, CpuMeter, RssSampler, child_env, format_table
from benchmarks.peers.data import DEFAULT_CACHE_DIR, ensure_inputs

WORKLOADS = ("lines", "csv")
SYSTEMS = ("plain", "pool", "dask")

DEFAULT_PROCESSES = 2
DEFAULT_CHUNK_RECORDS = 10_000
DEFAULT_MAX_INFLIGHT = 8
DEFAULT_BLOCKSIZE = "4MiB"


@dataclass
class BatchResult:
    """One peer's figures for one batch workload (definitions in the module doc)."""

    system: str
    workload: str
    records: int
    seconds_total: float
    records_per_second: float
    peak_rss_mb: float
    output_path: str
    notes: str = ""
    other_load_cores: float = math.nan
    """Average cores busy with processes outside this benchmark during the run."""

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# The per-record work, shared by every peer
# ---------------------------------------------------------------------------------------


def perform_line(record: str) -> str:
    """The ``lines`` workload's perform: a no-op returning the record."""
    return record


def transform_row(row: dict[str, str]) -> dict[str, str]:
    """The ``csv`` workload's perform: upper-case ``city``, add ``total``."""
    row["city"] = row["city"].upper()
    row["total"] = f"{float(row['amount']) * int(row['quantity']):.2f}"
    return row


def csv_output_fields(input_fields: list[str]) -> list[str]:
    return [*input_fields, "total"]


def _strip_nl(line: str) -> str:
    return line[:-1] if line.endswith("\n") else line


def _lines_chunk(lines: list[str]) -> tuple[int, str]:
    out = [perform_line(_strip_nl(line)) for line in lines]
    out.append("")
    return len(lines), "\n".join(out)


def _csv_chunk(lines: list[str], fields: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=csv_output_fields(fields), lineterminator="\n")
    n = 0
    for row in csv.DictReader(lines, fieldnames=fields):
        writer.writerow(transform_row(row))
        n += 1
    return n, buf.getvalue()


def _measured(system: str, workload: str, output_path: Path, run: Callable[[], int], notes: str) -> BatchResult:
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with RssSampler() as rss, CpuMeter() as cpu:
        t0 = time.perf_counter()
        records = run()
        seconds = time.perf_counter() - t0
    return BatchResult(
        system=system,
        workload=workload,
        records=records,
        seconds_total=seconds,
        records_per_second=records / seconds if seconds > 0 else math.nan,
        peak_rss_mb=rss.peak_mb,
        output_path=str(output_path),
        notes=notes,
        other_load_cores=cpu.other_cores,
    )


# ---------------------------------------------------------------------------------------
# a) plain single-process Python
# ---------------------------------------------------------------------------------------


def plain_lines(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str]) -> BatchResult:
    """Read, perform, write, one line at a time, in one process."""

    def run() -> int:
        n = 0
        with open(input_path, encoding="utf-8") as fin, open(output_path, "w", encoding="utf-8") as fout:
            for line in fin:
                fout.write(perform_line(_strip_nl(line)) + "\n")
                n += 1
        return n

    return _measured("plain", "lines", Path(output_path), run, "single process, for-loop")


def plain_csv(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str]) -> BatchResult:
    """``csv.DictReader`` -> :func:`transform_row` -> ``csv.DictWriter``, in one process."""

    def run() -> int:
        n = 0
        with (
            open(input_path, encoding="utf-8", newline="") as fin,
            open(output_path, "w", encoding="utf-8", newline="") as fout,
        ):
            reader = csv.DictReader(fin)
            writer = csv.DictWriter(
                fout, fieldnames=csv_output_fields(list(reader.fieldnames or [])), lineterminator="\n"
            )
            writer.writeheader()
            for row in reader:
                writer.writerow(transform_row(row))
                n += 1
        return n

    return _measured("plain", "csv", Path(output_path), run, "single process, DictReader/DictWriter")


# ---------------------------------------------------------------------------------------
# b) multiprocessing.Pool
# ---------------------------------------------------------------------------------------


def _pool_run(
    fin: io.TextIOBase,
    fout: io.TextIOBase,
    func: Callable[[list[str]], tuple[int, str]],
    processes: int,
    chunk_records: int,
    max_inflight: int | None,
) -> int:
    """Feed chunks of ``chunk_records`` lines to ``Pool.imap``; write results in order.

    ``Pool.imap`` pulls its input iterator from a thread as fast as it can, so without a
    bound the whole file would be read into the task queue. ``max_inflight`` chunks at
    most are read ahead of the writer (``None``: unbounded, plain ``imap``).
    """
    chunks: Iterator[list[str]] = iter(lambda: list(itertools.islice(fin, chunk_records)), [])
    stop = threading.Event()
    window = threading.Semaphore(max_inflight) if max_inflight else None

    def feed() -> Iterator[list[str]]:
        for chunk in chunks:
            if window is not None:
                while not window.acquire(timeout=0.1):
                    if stop.is_set():
                        return
            if stop.is_set():
                return
            yield chunk

    n = 0
    pool = multiprocessing.Pool(processes)
    try:
        for count, text in pool.imap(func, feed()):
            fout.write(text)
            n += count
            if window is not None:
                window.release()
        pool.close()
    except BaseException:
        stop.set()  # first: terminate() joins the feeder thread, which may be waiting
        pool.terminate()
        raise
    finally:
        stop.set()
        pool.join()
    return n


def pool_lines(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    processes: int = DEFAULT_PROCESSES,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    max_inflight: int | None = DEFAULT_MAX_INFLIGHT,
) -> BatchResult:
    """``multiprocessing.Pool(processes)`` over chunks of lines; the parent writes in order."""

    def run() -> int:
        with open(input_path, encoding="utf-8") as fin, open(output_path, "w", encoding="utf-8") as fout:
            return _pool_run(fin, fout, _lines_chunk, processes, chunk_records, max_inflight)

    return _measured(
        "pool", "lines", Path(output_path), run,
        f"Pool({processes}).imap, {chunk_records:,} lines/chunk, <= {max_inflight} chunks in flight",
    )


def pool_csv(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    processes: int = DEFAULT_PROCESSES,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    max_inflight: int | None = DEFAULT_MAX_INFLIGHT,
) -> BatchResult:
    """Like :func:`pool_lines`; each worker parses its chunk with ``csv.DictReader``.

    The parent reads the header, then hands out raw lines (valid because no record
    spans lines in the benchmark data) and writes the header plus the chunks' CSV text.
    """

    def run() -> int:
        with (
            open(input_path, encoding="utf-8", newline="") as fin,
            open(output_path, "w", encoding="utf-8", newline="") as fout,
        ):
            fields = next(csv.reader([fin.readline()]))
            csv.writer(fout, lineterminator="\n").writerow(csv_output_fields(fields))
            func = functools.partial(_csv_chunk, fields=fields)
            return _pool_run(fin, fout, func, processes, chunk_records, max_inflight)

    return _measured(
        "pool", "csv", Path(output_path), run,
        f"Pool({processes}).imap, {chunk_records:,} lines/chunk, <= {max_inflight} chunks in flight",
    )


# ---------------------------------------------------------------------------------------
# c) Dask bag
# ---------------------------------------------------------------------------------------


def _csv_partition(lines, header_line: str, fields: list[str]) -> list[str]:
    body = (line for line in lines if line != header_line)
    n, text = _csv_chunk(body, fields)  # type: ignore[arg-type]
    return [text] if n else []


def _dask_run(bag, output_path: Path, workers: int, header: str | None, last_endline: bool) -> int:
    """Write each partition to a part file with the processes scheduler, then concatenate."""
    parts = Path(tempfile.mkdtemp(prefix="rjbench-dask-", dir=output_path.parent))
    try:
        bag.to_textfiles(
            str(parts / "*.part"),
            name_function=lambda i: f"{i:06d}",
            last_endline=last_endline,
            encoding="utf-8",
            scheduler="processes",
            num_workers=workers,
        )
        newlines = 0
        with open(output_path, "wb") as out:
            if header is not None:
                out.write(header.encode("utf-8"))
            for part in sorted(parts.glob("*.part")):
                with open(part, "rb") as f:
                    while block := f.read(1 << 20):
                        newlines += block.count(b"\n")
                        out.write(block)
        return newlines
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def dask_lines(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    workers: int = DEFAULT_PROCESSES,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
) -> BatchResult:
    """``read_text(blocksize).map(perform)`` -> ``to_textfiles`` -> concatenated in order.

    ``records`` counts the newlines written (one per record).
    """
    import dask
    import dask.bag as db

    def run() -> int:
        bag = db.read_text(str(input_path), blocksize=blocksize, encoding="utf-8")
        bag = bag.map(_strip_nl).map(perform_line)
        return _dask_run(bag, Path(output_path), workers, None, last_endline=True)

    return _measured(
        "dask", "lines", Path(output_path), run,
        f"dask {dask.__version__} bag, blocksize {blocksize}, processes scheduler x{workers}",
    )


def dask_csv(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    workers: int = DEFAULT_PROCESSES,
    blocksize: str | int = DEFAULT_BLOCKSIZE,
) -> BatchResult:
    """``read_text(blocksize).map_partitions(parse, transform, format)`` -> one file.

    Each partition is parsed with ``csv.DictReader`` (the header line, which only the
    first partition holds, is skipped) and rendered with ``csv.DictWriter``; the parent
    writes the output header, then the part files in order.
    """
    import dask
    import dask.bag as db

    def run() -> int:
        with open(input_path, encoding="utf-8", newline="") as f:
            header_line = f.readline()
        fields = next(csv.reader([header_line]))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(csv_output_fields(fields))
        out_header = buf.getvalue()
        bag = db.read_text(str(input_path), blocksize=blocksize, encoding="utf-8")
        bag = bag.map_partitions(_csv_partition, header_line, fields)
        return _dask_run(bag, Path(output_path), workers, out_header, last_endline=False)

    return _measured(
        "dask", "csv", Path(output_path), run,
        f"dask {dask.__version__} bag, blocksize {blocksize}, processes scheduler x{workers}",
    )


# ---------------------------------------------------------------------------------------
# Output checker, dispatch, isolation
# ---------------------------------------------------------------------------------------


def same_output(a: str | os.PathLike[str], b: str | os.PathLike[str], ignore_line_endings: bool = True) -> bool:
    """True when two files hold the same lines in the same order (streamed, bytes).

    With ``ignore_line_endings`` a ``\\r\\n`` and a ``\\n`` line ending compare equal.
    """
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for la, lb in itertools.zip_longest(fa, fb):
            if la is None or lb is None:
                return False
            if la != lb and not (
                ignore_line_endings and la.rstrip(b"\r\n") == lb.rstrip(b"\r\n")
            ):
                return False
    return True


PEER_FUNCTIONS: dict[tuple[str, str], Callable[..., BatchResult]] = {
    ("plain", "lines"): plain_lines,
    ("plain", "csv"): plain_csv,
    ("pool", "lines"): pool_lines,
    ("pool", "csv"): pool_csv,
    ("dask", "lines"): dask_lines,
    ("dask", "csv"): dask_csv,
}


def run_peer(system: str, workload: str, input_path, output_path, **kwargs) -> BatchResult:
    """Run one peer in this process: ``system`` in :data:`SYSTEMS`, ``workload`` in :data:`WORKLOADS`."""
    return PEER_FUNCTIONS[(system, workload)](input_path, output_path, **kwargs)


def run_isolated(
    system: str,
    workload: str,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    timeout: float = 1800.0,
    **kwargs,
) -> BatchResult:
    """Run one peer in a fresh interpreter (``python -m benchmarks.peers.batch_peers _one``).

    ``kwargs`` (e.g. ``blocksize``, ``chunk_records``) must be JSON-serialisable.
    """
    cmd = [
        sys.executable, "-m", "benchmarks.peers.batch_peers", "_one",
        system, workload, str(input_path), str(output_path), json.dumps(kwargs),
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=child_env(), capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{system}/{workload} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return BatchResult(**json.loads(proc.stdout.strip().splitlines()[-1]))


def run_peers(
    n_records: int = 1_000_000,
    cache_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    systems: tuple[str, ...] | list[str] = SYSTEMS,
    workloads: tuple[str, ...] | list[str] = WORKLOADS,
    isolate: bool = True,
) -> list[BatchResult]:
    """Run every (workload, system) pair on cached inputs of ``n_records`` records.

    Outputs go to ``out_dir`` (default ``<cache_dir>/out``) as ``<workload>_<system>.*``.
    """
    inputs = ensure_inputs(cache_dir, n_records)
    out = Path(out_dir) if out_dir is not None else inputs["lines"].parent / "out"
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for workload in workloads:
        suffix = ".csv" if workload == "csv" else ".txt"
        for system in systems:
            target = out / f"{workload}_{system}{suffix}"
            print(f"running {system}/{workload} ...", file=sys.stderr, flush=True)
            runner = run_isolated if isolate else run_peer
            results.append(runner(system, workload, inputs[workload], target))
    return results


def results_table(results: list[BatchResult]) -> str:
    return format_table(
        ["workload", "system", "records", "seconds", "records/s", "peak RSS MB", "other load"],
        [
            [r.workload, r.system, r.records, r.seconds_total, r.records_per_second, r.peak_rss_mb,
             r.other_load_cores]
            for r in results
        ],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_one"]:  # internal: one peer in this fresh interpreter, JSON on stdout
        system, workload, inp, outp, kwargs = argv[1:6]
        result = run_peer(system, workload, inp, outp, **json.loads(kwargs))
        print(json.dumps(result.as_dict()))
        return 0

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers.batch_peers",
        description="Batch benchmark, peers only (plain Python, multiprocessing.Pool, Dask bag).",
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"input cache (default {DEFAULT_CACHE_DIR}; env RJB_BENCH_CACHE)")
    parser.add_argument("--out-dir", type=Path, help="outputs (default <cache-dir>/out)")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--no-isolate", action="store_true",
                        help="run peers in this process instead of one fresh interpreter each")
    parser.add_argument("--keep-outputs", action="store_true", help="do not delete output files")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    bad = [s for s in systems if s not in SYSTEMS] + [w for w in workloads if w not in WORKLOADS]
    if bad:
        parser.error(f"unknown system/workload: {', '.join(bad)}")

    results = run_peers(args.records, args.cache_dir, args.out_dir, systems, workloads,
                        isolate=not args.no_isolate)
    print(results_table(results))
    ok = True
    for workload in workloads:
        group = [r for r in results if r.workload == workload]
        for other in group[1:]:
            same = same_output(group[0].output_path, other.output_path)
            counts = other.records == group[0].records
            ok &= same and counts
            print(f"- {workload}: {other.system} output == {group[0].system} output: {same}; "
                  f"records equal: {counts}")
    for r in results:
        print(f"- {r.workload}/{r.system}: {r.notes}")
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))
    if not args.keep_outputs:
        for r in results:
            Path(r.output_path).unlink(missing_ok=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
