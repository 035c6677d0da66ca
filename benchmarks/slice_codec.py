"""Slice codec benchmark: encode + decode time per record, this tree beside a git revision.

    python -m benchmarks.slice_codec                      # against HEAD's slices.py
    python -m benchmarks.slice_codec --baseline f263535   # the codec before typed values
    python -m benchmarks.slice_codec --baseline HEAD~3 --serializer none

Every case is a slice of 1,000 records (``--records``) encoded and decoded by
``rjbatch.batch.slices`` as it is in the working tree ("new") and as it is at the
``--baseline`` revision ("old", loaded from ``git show REV:rjbatch/batch/slices.py`` into a
throwaway module). The two alternate sample by sample, so other load on the machine hits
both alike; each figure is the fastest of ``--repeat`` samples of ~``--sample-ms`` each.
Cases: short strings; dicts of 11 string fields; dicts mixing int/float/None/str (and the
same with a None now and then in a str and an int column, and with an int beyond 32 bits,
which pymongo alone reads back as ``bson.Int64``); dicts holding a Decimal, a date and a
datetime (which the old codec cannot store, or stores changed). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pymongo

from rjbatch.batch import slices as new_codec

REPO_ROOT = Path(__file__).resolve().parent.parent
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike".split()
CITIES = ["London", "Paris", "New York", "São Paulo", "Zürich", "Tokyo", "Berlin", "Austin"]


def _word(rng: random.Random) -> str:
    return rng.choice(WORDS)


def strings(n: int, rng: random.Random) -> list:
    return [f"{i},{_word(rng)} {_word(rng).title()},{rng.randint(0, 99999) / 100},{rng.choice(CITIES)}"
            for i in range(n)]


def string_dicts(n: int, rng: random.Random) -> list:
    return [{"id": str(i), "first_name": _word(rng), "last_name": _word(rng).title(),
             "email": f"{_word(rng)}.{_word(rng)}@example.com", "city": rng.choice(CITIES),
             "amount": str(rng.randint(0, 99999) / 100), "quantity": str(rng.randint(1, 50)),
             "created_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(10, 28)}T12:00:00Z",
             "active": rng.choice(("true", "false")), "comment": " ".join(rng.choices(WORDS, k=3)),
             "country": rng.choice(("GB", "FR", "US", "BR", "CH", "JP", "DE"))} for i in range(n)]


def mixed_dicts(n: int, rng: random.Random) -> list:
    return [{"id": i, "name": _word(rng), "price": rng.randint(0, 99999) / 100,
             "quantity": rng.randint(1, 50), "discount": None, "city": rng.choice(CITIES),
             "score": rng.random(), "note": None} for i in range(n)]


def sparse_mixed_dicts(n: int, rng: random.Random) -> list:
    """As ``mixed_dicts``, with a None now and then in columns that are otherwise str or int."""
    rows = mixed_dicts(n, rng)
    for row in rows:
        if rng.random() < 0.1:
            row["name"] = None
        if rng.random() < 0.1:
            row["quantity"] = None
    return rows


def int64_dicts(n: int, rng: random.Random) -> list:
    """As ``mixed_dicts``, with an int beyond 32 bits (epoch milliseconds): BSON int64."""
    rows = mixed_dicts(n, rng)
    for row in rows:
        row["at_ms"] = 1_700_000_000_000 + rng.randint(0, 10**10)
    return rows


def rich_dicts(n: int, rng: random.Random) -> list:
    start = datetime(2024, 1, 1, 8, 30)
    return [{"id": i, "amount": Decimal(rng.randint(0, 9999999)).scaleb(-2),
             "day": date(2024, 1, 1) + timedelta(days=rng.randint(0, 365)),
             "at": start + timedelta(seconds=rng.randint(0, 10**7), microseconds=rng.randint(0, 999999)),
             "name": _word(rng)} for i in range(n)]


CASES: dict[str, Callable[[int, random.Random], list]] = {
    "short strings": strings,
    "dicts of 11 str": string_dicts,
    "dicts int/float/None/str": mixed_dicts,
    "same, a None now and then in str/int columns": sparse_mixed_dicts,
    "same, plus an epoch-ms int (int64)": int64_dicts,
    "dicts Decimal/date/datetime": rich_dicts,
}


def load_baseline(revision: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{revision}:rjbatch/batch/slices.py"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("slices_baseline")
    module.__file__ = f"<{revision}:rjbatch/batch/slices.py>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def _sample(function: Callable[[], object], seconds: float) -> float:
    """Seconds per call of ``function``, over enough calls to last about ``seconds``."""
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(seconds / once))
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls


@dataclass
class Result:
    encode: float = float("inf")  # seconds per slice
    decode: float = float("inf")
    note: str = ""

    def per_record_ns(self, records: int) -> float:
        return (self.encode + self.decode) * 1e9 / records


def measure(codecs: dict[str, types.ModuleType], records: list, serializer: str, repeat: int,
            seconds: float) -> dict[str, Result]:
    """Per codec: the fastest of ``repeat`` samples of encode and of decode, codecs alternating."""
    results: dict[str, Result] = {}
    usable: dict[str, bytes] = {}
    for name, codec in codecs.items():
        try:
            data = codec.encode(records, serializer)
        except Exception as exc:  # the old codec cannot store every case
            results[name] = Result(note=f"fails: {type(exc).__name__}")
            continue
        results[name] = Result(note="" if codec.decode(data, serializer) == records else "changes values")
        usable[name] = data
    for _ in range(repeat):
        for name, data in usable.items():
            codec, result = codecs[name], results[name]
            result.encode = min(result.encode, _sample(lambda c=codec: c.encode(records, serializer), seconds))
            result.decode = min(result.decode, _sample(lambda c=codec, d=data: c.decode(d, serializer), seconds))
    return results


def _cell(result: Result, records: int) -> str:
    if result.encode == float("inf"):
        return result.note
    figure = f"{result.per_record_ns(records):,.0f}"
    return f"{figure} ({result.note})" if result.note else figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="HEAD", help="git revision of the old slices.py (default HEAD)")
    parser.add_argument("--records", type=int, default=1000, help="records per slice (default 1000)")
    parser.add_argument("--serializer", default="compress", choices=("compress", "none"))
    parser.add_argument("--repeat", type=int, default=15, help="samples per codec and case (default 15)")
    parser.add_argument("--sample-ms", type=float, default=40.0, help="length of one sample (default 40 ms)")
    parser.add_argument("--cases", default="", help="comma-separated case numbers (1-based) to run")
    args = parser.parse_args(argv)

    codecs = {"old": load_baseline(args.baseline), "new": new_codec}
    revision = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO_ROOT,
                              capture_output=True, text=True).stdout.strip()
    chosen = {int(x) for x in args.cases.split(",") if x} or set(range(1, len(CASES) + 1))
    started = time.time()
    print(f"slice codec, {args.records:,}-record slices, serializer {args.serializer}; "
          f"old = {args.baseline} ({revision}), new = working tree")
    print(f"Python {platform.python_version()}, pymongo {pymongo.version}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at the start\n")
    print("| case | old enc+dec ns/record | new enc+dec ns/record | new/old | new encode | new decode |")
    print("|---|---|---|---|---|---|")
    for number, (label, make) in enumerate(CASES.items(), 1):
        if number not in chosen:
            continue
        records = make(args.records, random.Random(number))
        results = measure(codecs, records, args.serializer, args.repeat, args.sample_ms / 1000)
        old, new = results["old"], results["new"]
        ratio = f"{new.per_record_ns(1) / old.per_record_ns(1):.3f}" if old.encode < float("inf") else "-"
        print(f"| {label} | {_cell(old, args.records)} | {_cell(new, args.records)} | {ratio} | "
              f"{new.encode * 1e9 / args.records:,.0f} | {new.decode * 1e9 / args.records:,.0f} |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; {time.time() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
