"""Deterministic input files for the batch benchmark, cached on disk.

* :func:`make_lines_file` -- ``n`` short lines ``"line 0000001 some text ..."``.
* :func:`make_csv_file` -- a 10-column CSV with a header (id, name, email, city, country,
  amount, quantity, date, status, note), generated from a seed. Some ``note`` values
  contain commas and double quotes (so they are quoted), none contains a newline: every
  record is exactly one line, which line-splitting peers (Pool, Dask) rely on.

Both write ``\\n`` line endings, UTF-8, through a temporary file renamed into place, so a
half-written file is never taken as cached. :func:`ensure_inputs` returns cached paths,
generating the files only when absent.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
from pathlib import Path

DEFAULT_CACHE_DIR = Path(os.environ.get("RJB_BENCH_CACHE", "~/.cache/rjbatch-bench")).expanduser()
DEFAULT_SEED = 20240601

CSV_FIELDS = [
    "id", "name", "email", "city", "country", "amount", "quantity", "date", "status", "note",
]

_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()

_FIRST = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Amir Yuki Chen Olga Pierre "
    "Ingrid Mateo Aisha Lars Priya Kwame Sofia Dmitri Elena Hiro Fatima Diego Zoe Raj Ana"
).split()
_LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Müller Dubois Rossi Nakamura Kowalski Silva Novak Jensen O'Brien"
).split() + ["Van der Berg"]
_CITIES = [
    ("New York", "US"), ("Los Angeles", "US"), ("Chicago", "US"), ("Houston", "US"),
    ("Toronto", "CA"), ("Montréal", "CA"), ("London", "GB"), ("Manchester", "GB"),
    ("Paris", "FR"), ("Lyon", "FR"), ("Berlin", "DE"), ("München", "DE"), ("Madrid", "ES"),
    ("Barcelona", "ES"), ("Rome", "IT"), ("Milan", "IT"), ("Amsterdam", "NL"),
    ("Stockholm", "SE"), ("Oslo", "NO"), ("Warsaw", "PL"), ("São Paulo", "BR"),
    ("Buenos Aires", "AR"), ("Mexico City", "MX"), ("Tokyo", "JP"), ("Osaka", "JP"),
    ("Seoul", "KR"), ("Mumbai", "IN"), ("Bengaluru", "IN"), ("Sydney", "AU"),
    ("Cape Town", "ZA"), ("Lagos", "NG"), ("Cairo", "EG"),
]
_DOMAINS = ["example.com", "mail.test", "corp.example", "inbox.test"]
_STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
_NOTES = [
    "", "", "", "", "", "", "gift", "express delivery", "leave at door",
    "call before delivery, please", 'customer said "thanks"', "fragile, handle with care",
    "backorder", "second attempt", "address changed; see ticket", 'box marked "urgent"',
]
_EPOCH = dt.date(2020, 1, 1)


def _atomic_write(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def make_lines_file(path: str | os.PathLike[str], n: int = 1_000_000, seed: int = DEFAULT_SEED) -> Path:
    """Write ``n`` lines like ``"line 0000001 some text golf kilo"`` (1-based, ``\\n``)."""
    rng = random.Random(seed)
    words = _WORDS

    def write(f) -> None:
        buf = []
        for i in range(1, n + 1):
            buf.append(f"line {i:07d} some text {words[rng.randrange(26)]} {words[rng.randrange(26)]}\n")
            if len(buf) >= 10_000:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))

    return _atomic_write(Path(path), write)


def make_csv_file(path: str | os.PathLike[str], n: int = 1_000_000, seed: int = DEFAULT_SEED) -> Path:
    """Write a header plus ``n`` rows of the 10 :data:`CSV_FIELDS` (``\\n`` line endings).

    ``amount`` is a float with two decimals, ``quantity`` an int 1-20, ``date`` ISO
    ``YYYY-MM-DD`` in 2020-2024. Same ``seed`` and ``n``, same bytes.
    """
    rng = random.Random(seed)
    rand = rng.random
    randrange = rng.randrange

    def write(f) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_FIELDS)
        rows = []
        for i in range(1, n + 1):
            first = _FIRST[randrange(len(_FIRST))]
            last = _LAST[randrange(len(_LAST))]
            city, country = _CITIES[randrange(len(_CITIES))]
            local = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
            rows.append((
                i,
                f"{first} {last}",
                f"{local}{i}@{_DOMAINS[randrange(4)]}",
                city,
                country,
                f"{1 + rand() * 999:.2f}",
                randrange(1, 21),
                (_EPOCH + dt.timedelta(days=randrange(1827))).isoformat(),
                _STATUSES[randrange(len(_STATUSES))],
                _NOTES[randrange(len(_NOTES))],
            ))
            if len(rows) >= 10_000:
                w.writerows(rows)
                rows.clear()
        w.writerows(rows)

    return _atomic_write(Path(path), write)


def ensure_inputs(
    cache_dir: str | os.PathLike[str] | None = None,
    n: int = 1_000_000,
    seed: int = DEFAULT_SEED,
) -> dict[str, Path]:
    """Paths of the lines and CSV inputs with ``n`` records, generated if not cached.

    Returns ``{"lines": ..., "csv": ...}``; file names carry ``n`` and ``seed``.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else DEFAULT_CACHE_DIR
    lines = cache / f"lines_{n}_{seed}.txt"
    table = cache / f"orders_{n}_{seed}.csv"
    if not lines.exists():
        make_lines_file(lines, n, seed)
    if not table.exists():
        make_csv_file(table, n, seed)
    return {"lines": lines, "csv": table}
