"""Which tabular format a file name names: imports nothing, so a caller that only needs
the name's format (a plain text download) does not load the tabular codecs."""

from __future__ import annotations

import os

#: File-name extension -> format. Matched case-insensitively (see format_from_file_name).
EXTENSIONS = {
    "csv": "csv",
    "psv": "psv",
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "fixed": "fixed",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "parquet": "parquet",
}


def format_from_file_name(name: str | os.PathLike[str]) -> str | None:
    """The tabular format of a file name, or None when no extension names one.

    Only the base name counts (a ``.csv`` directory does not make its files csv). Its
    extensions are scanned right to left and the first that names a format wins, so
    ``a.json.gz`` is json and ``a.psv.csv`` is csv. Unlike Ruby the match ignores case:
    ``A.CSV.GZ`` is csv.
    """
    text = os.fspath(name)
    if "://" in text:  # a URI: drop the query and fragment
        text = text.split("?", 1)[0].split("#", 1)[0]
    base = text.replace("\\", "/").rsplit("/", 1)[-1]
    for part in reversed(base.split(".")[1:]):
        found = EXTENSIONS.get(part.lower())
        if found:
            return found
    return None
