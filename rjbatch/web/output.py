"""A batch job's output (and remaining input) in Mission Control: browse it, download it.

RJMC shows no output at all and only the failed input slices, though job dashboards are
often asked for output download and slice browsing; this page is new.
``/jobs/{id}/output`` lists the job's output categories with their record counts, and the
input categories that still hold slices, then pages through the records of one of them in
upload order. ``/jobs/{id}/output/download`` streams a category's output as a file, written
by ``job.download`` itself.

Who sees what: every role sees the categories and their record and slice counts. Only
``editor`` (``security.RECORD_ROLE``) and ``admin`` see record contents, through the page,
the JSON API or a download, as RJMC lets only editors see slice data ("including
encrypted data"): output is business data, often personal, and an encrypted category
is shown decrypted. A weaker role's GET of the download URL gets 403 (and a WARNING in the
audit log); every download is an INFO line there.

Reading: output slices are stored one row per input slice (id = upload order), so a
page reads them in id order, a few at a time, skips whole slices by their
``record_count`` without decoding them, decodes only the slices the page overlaps, and
stops when the page is full. Page 1 of a million records reads a few slices; page N
walks the slice rows before it (their stored bytes, never decoded), so memory stays
bounded whatever the page.

Text is shown reversibly (``rjbatch.web.escaping``), as RJMC v7 shows records.

Downloading: ``job.download`` writes to a path or a file object, so it runs in a thread
writing into a bounded pipe (``Pipe``) that the StreamingResponse drains. A pipe, not a
temporary file: the first bytes leave at once, nothing is written to the server's disk,
and memory holds at most a few chunks however large the output. The response starts only
once the first chunk (256 KiB) is written or the download has finished, so errors that
show at the start (a bad format, a codec that is missing) are answered with a clear 409;
an error later aborts the transfer (the file arrives visibly incomplete) and is logged.
A job that is still processing is downloaded as it is (``allow_partial``): the output of
its completed slices, and of failed slices up to their failing record, in upload order;
the records of slices still queued or being processed are missing, and the page says so.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import threading
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import bson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rjbatch.batch import BatchJob, OutputCategory, UnknownCategory
from rjbatch.codecs import CodecError
from rjbatch.errors import RjbatchError
from rjbatch.web import security
from rjbatch.web.common import (
    audit_job,
    find_job,
    json_response,
    refuse,
    render,
    require,
    to_int,
)
from rjbatch.web.escaping import Segment, escape_segments, escape_text, json_default, json_segments
from rjbatch.web.pipe import Pipe, PipeResponse

log = logging.getLogger(__name__)

PAGE_SIZES = (10, 20, 50, 100, 500)
DEFAULT_PER = 50
KINDS = ("output", "input")


# -- categories and counts ----------------------------------------------------------------
def batch_job(request: Request) -> BatchJob:
    job = find_job(request.path_params["job_id"])
    if not isinstance(job, BatchJob):
        raise HTTPException(404, f"Job {job.id} is a {type(job).__name__}, not a batch job: it has no output")
    return job


def may_see_records(request: Request) -> bool:
    return security.has_role(request.state.role, security.RECORD_ROLE)


def category_counts(job: BatchJob) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(output categories, input categories that still hold slices), with their counts."""
    outputs = []
    for entry in job.output_categories:
        counts = job.sliced_output(entry["name"]).counts()
        outputs.append({"kind": "output", "name": entry["name"], "slices": counts.slices, "records": counts.records,
                        "serializer": entry.get("serializer"), "file_name": entry.get("file_name")})
    inputs = []
    for entry in job.input_categories:
        by_state = job.sliced_input(entry["name"]).counts()
        if by_state.slices:
            inputs.append({"kind": "input", "name": entry["name"], "slices": by_state.slices,
                           "records": by_state.records, "states": by_state.by_state()})
    return outputs, inputs


def choose(request: Request, job: BatchJob, outputs: list[dict], inputs: list[dict]) -> dict[str, Any] | None:
    """The category asked for (404 when the job has none by that name), or the default one."""
    params = request.query_params
    kind = params.get("kind", "output")
    if kind not in KINDS:
        raise HTTPException(404, f"no such kind: {kind!r} (output or input)")
    name = params.get("category")
    if kind == "input":
        known = [entry["name"] for entry in job.input_categories]
        name = name or "main"
        if name not in known:
            raise HTTPException(404, f"{type(job).__name__} job {job.id} has no input category {name!r}")
        found = next((c for c in inputs if c["name"] == name), None)
        return found or {"kind": "input", "name": name, "slices": 0, "records": 0, "states": {}}
    if name is None:  # main, else the first output, else the first input left
        first = (outputs or inputs)[0] if outputs or inputs else None
        return next((c for c in outputs if c["name"] == "main"), first)
    found = next((c for c in outputs if c["name"] == name), None)
    if found is None:
        raise HTTPException(404, f"{type(job).__name__} job {job.id} has no output category {name!r}")
    return found


def known_columns(job: BatchJob, kind: str, name: str, rows: list[dict[str, Any]]) -> list[str] | None:
    """The columns to show: the category's own, else the input's and the new keys on this page."""
    if kind == "input":
        return job.input_category(name).columns or None
    output = job.sliced_output(name)
    columns = list(output.settings.columns or output.base_columns or [])
    if output.is_tabular and not output.settings.columns:
        for row in rows:
            record = row.get("record")
            if isinstance(record, dict):
                columns += [key for key in record if key not in columns]
    return columns or None


# -- reading a page of records --------------------------------------------------------------
def read_records(job: BatchJob, kind: str, name: str, offset: int, limit: int) -> Iterator[dict[str, Any]]:
    """Records ``offset`` to ``offset + limit`` (0-based, in upload order) of one category."""
    sliced = job.sliced_output(name) if kind == "output" else job.sliced_input(name)
    position = 0
    for piece in sliced.slices():
        count = piece.get("record_count") or 0
        if position + count <= offset:
            position += count  # wholly before the page: skipped without decoding
            continue
        failing = None
        if kind == "input" and piece.get("state") == "failed":
            failing = (piece.get("processing_record_number") or 1) - 1
        try:
            records = sliced.records_of(piece)
        except (CodecError, RjbatchError, zlib.error, bson.errors.BSONError, OSError, ValueError) as exc:
            first = max(position, offset) + 1
            yield {"position": first, "number": first, "slice": piece["id"], "state": piece.get("state"),
                   "failing": False, "error": f"{type(exc).__name__}: {exc}"}
            position += count
            if position >= offset + limit:
                return
            continue
        for index, record in enumerate(records):
            if position >= offset + limit:
                return
            if position >= offset:
                number = position + 1
                if kind == "input":  # its number in the upload (finished slices were deleted)
                    number = (piece.get("first_record_number") or 1) + index
                yield {"position": position + 1, "number": number, "slice": piece["id"], "record": record,
                       "state": piece.get("state"), "failing": index == failing}
            position += 1
        if position >= offset + limit:
            return


def show_record(row: dict[str, Any], columns: list[str] | None) -> dict[str, Any]:
    """How the page shows one record: text, JSON, or cells under the category's columns."""
    if "error" in row:
        return {**row, "kind": "error"}
    record = row["record"]
    if isinstance(record, str | bytes):
        return {**row, "kind": "text", "segments": escape_segments(record)}
    if columns and isinstance(record, dict):
        extra = {key: value for key, value in record.items() if key not in columns}
        cells = [_cell(record.get(column)) for column in columns]
        return {**row, "kind": "cells", "cells": cells, "extra": json_segments(extra) if extra else None}
    if columns and isinstance(record, list):
        cells = [_cell(value) for value in record[:len(columns)]]
        cells += [[] for _ in range(len(columns) - len(cells))]
        surplus = record[len(columns):]
        return {**row, "kind": "cells", "cells": cells, "extra": json_segments(surplus) if surplus else None}
    return {**row, "kind": "json", "segments": json_segments(record)}


def _cell(value: Any) -> list[Segment]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return escape_segments(value)
    return json_segments(value)


def paging(request: Request, total: int) -> dict[str, int]:
    per = to_int(request.query_params.get("per"), DEFAULT_PER)
    per = per if per in PAGE_SIZES else DEFAULT_PER
    pages = max(1, math.ceil(total / per))
    page = min(max(to_int(request.query_params.get("page"), 1), 1), pages)
    return {"page": page, "per": per, "pages": pages, "offset": (page - 1) * per}


def partial_note(job: BatchJob) -> str | None:
    """Why the output may be incomplete, or None when it is all there."""
    if job.state == "completed":
        return None
    if job.state == "aborted":
        return "Aborting a job throws its slices away: what output is left is shown, if any."
    if job.record_count is None and job.state == "queued":
        return "The upload has not finished: the job has no output yet."
    if job.sub_state in ("before", None) and job.state in ("queued", "running"):
        return "Processing has not started: the job has no output yet."
    return (f"This job is {job.display_state}: its output holds the slices processed so far (completed slices, "
            "and failed slices up to their failing record), in upload order. The records of slices still "
            "queued or being processed are missing.")


# -- download names and formats -------------------------------------------------------------
LINE_BASES = ("txt", "csv", "jsonl")
TABULAR_BASES = ("csv", "psv", "jsonl")
WHOLE_FILE = {"xlsx": "openpyxl", "parquet": "pyarrow"}  # tabular categories only, uncompressed
COMPRESSIONS = ("gz", "zip")
_NAME_EXTENSIONS = {"txt", "csv", "psv", "json", "jsonl", "ndjson", "fixed", "xlsx", "xlsm", "parquet",
                    "gz", "gzip", "zip", "bz2", "xz", "zst", "zstd", "enc", "pgp", "gpg"}
CONTENT_TYPES = {"txt": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8",
                 "psv": "text/plain; charset=utf-8", "jsonl": "application/x-ndjson",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 "parquet": "application/vnd.apache.parquet", "gz": "application/gzip",
                 "zip": "application/zip", "bz2": "application/x-bzip2", "xz": "application/x-xz"}


def formats_for(job: BatchJob, settings: OutputCategory) -> list[str]:
    """The formats a download of this category may ask for, the likeliest first."""
    if settings.serializer == "bzip2":  # stored as bzip2 streams, downloaded as they are
        return ["txt.bz2", "csv.bz2"]
    tabular = settings.is_tabular
    bases = TABULAR_BASES if tabular else LINE_BASES
    found = [base for base in bases] + [f"{base}.{kind}" for base in bases for kind in COMPRESSIONS]
    if tabular:
        found += [name for name, module in WHOLE_FILE.items() if importlib.util.find_spec(module)]
    return found


def default_format(job: BatchJob, settings: OutputCategory) -> str:
    return formats_for(job, settings)[0]


def _base_name(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0] if "://" in path else path
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _stem(name: str) -> str:
    parts = name.split(".")
    while len(parts) > 1 and parts[-1].lower() in _NAME_EXTENSIONS:
        parts.pop()
    return ".".join(parts)


def download_name(job: BatchJob, settings: OutputCategory, fmt: str | None) -> str:
    """The attachment's file name: its extensions choose the codecs ``job.download`` uses.

    No format: the category's configured file name, else the first of ``formats_for``. A
    format keeps the configured name's stem (or ``Class-id-category``) with that extension.
    """
    configured = _base_name(settings.file_name) if settings.file_name else ""
    if not fmt and configured:
        return configured
    fmt = fmt or default_format(job, settings)
    allowed = formats_for(job, settings)
    if fmt not in allowed:
        raise HTTPException(400, f"cannot download category {settings.name!r} as {fmt!r}: "
                                 f"choose one of {', '.join(allowed)}")
    stem = _stem(configured) if configured else f"{type(job).__name__}-{job.id}-{settings.name}"
    return f"{stem}.{fmt}"


def content_disposition(file_name: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact one (RFC 6266 / 5987)."""
    cleaned = "".join(c for c in file_name if c.isprintable() and c not in '"\\/;') or "output"
    fallback = "".join(c if c.isascii() else "_" for c in cleaned)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def content_type(file_name: str) -> str:
    last = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    return CONTENT_TYPES.get(last, "application/octet-stream")


# -- pages -----------------------------------------------------------------------------------
def browse(request: Request, job: BatchJob) -> dict[str, Any]:
    """What the page and the API show: counts for everyone, records for editors."""
    outputs, inputs = category_counts(job)
    selected = choose(request, job, outputs, inputs)
    may_see = may_see_records(request)
    view: dict[str, Any] = {"outputs": outputs, "inputs": inputs, "selected": selected, "may_see": may_see,
                            "columns": None, "rows": [], "extra_column": False, "formats": [], "default_name": None,
                            "paging": paging(request, selected["records"] if selected else 0),
                            "note": partial_note(job)}
    if selected is None:
        return view
    if may_see:
        kind, name = selected["kind"], selected["name"]
        p = view["paging"]
        rows = list(read_records(job, kind, name, p["offset"], p["per"]))
        columns = known_columns(job, kind, name, rows)
        view["columns"] = columns
        view["rows"] = [show_record(row, columns) for row in rows]
        view["extra_column"] = any(row.get("extra") for row in view["rows"])
        if kind == "output":
            settings = job.output_category(name)
            view["formats"] = formats_for(job, settings)
            view["default_name"] = download_name(job, settings, None)
    return view


def output_page(request: Request) -> Response:
    job = batch_job(request)
    view = browse(request, job)
    return render(request, "output.html", job=job, state=job.display_state, page_sizes=PAGE_SIZES, **view)


def download_output(request: Request) -> Response:
    job = batch_job(request)
    require(request, security.RECORD_ROLE, "download output")
    name = request.query_params.get("category") or "main"
    try:
        settings = job.output_category(name)
    except UnknownCategory:
        raise HTTPException(404, f"{type(job).__name__} job {job.id} has no output category {name!r}") from None
    file_name = download_name(job, settings, request.query_params.get("format") or None)

    pipe = Pipe()
    thread = threading.Thread(
        target=pipe.run, name=f"rjbatch-download-{job.id}", daemon=True,
        args=(lambda out: job.download(out, name, file_name=file_name, allow_partial=True),))
    thread.start()
    try:
        first = pipe.take()  # in this handler's thread: the loop goes on meanwhile
    except (RjbatchError, CodecError, ImportError) as exc:
        pipe.cancel()
        return refuse(request, 409, f"Could not download category {name!r} as {file_name}: {exc}")
    audit_job(request, "download_output", job, category=name, file=repr(file_name), state=job.display_state)
    return PipeResponse(pipe, first, job.id, file_name, media_type=content_type(file_name),
                        headers={"Content-Disposition": content_disposition(file_name)})


def api_output(request: Request) -> Response:
    try:
        job = batch_job(request)
        view = browse(request, job)
    except HTTPException as exc:
        return JSONResponse({"error": exc.detail}, exc.status_code)
    selected = view["selected"]
    data: dict[str, Any] = {
        "id": job.id, "state": job.display_state, "complete": view["note"] is None, "note": view["note"],
        "output_categories": [{k: c[k] for k in ("name", "records", "slices")} for c in view["outputs"]],
        "input_categories": [{k: c[k] for k in ("name", "records", "slices", "states")} for c in view["inputs"]],
        "kind": selected and selected["kind"], "category": selected and selected["name"],
        "total": selected["records"] if selected else 0, **{k: view["paging"][k] for k in ("page", "per", "pages")},
        "contents_visible": view["may_see"],
    }
    if view["may_see"]:
        data["columns"] = view["columns"]
        data["records"] = [_api_record(row) for row in view["rows"]]
    return json_response(data)


def _api_record(row: dict[str, Any]) -> dict[str, Any]:
    out = {"number": row.get("number", row["position"]), "position": row["position"], "slice": row["slice"]}
    if row["kind"] == "error":
        return {**out, "error": row["error"]}
    record = row["record"]
    if isinstance(record, bytes):  # not valid UTF-8: escaped as on the page
        return {**out, "value": escape_text(record), "escaped_bytes": True}
    if row.get("state"):
        out.update(state=row["state"], failing=row["failing"])
    return {**out, "value": json.loads(json.dumps(record, default=json_default))}


ROUTES = [
    ("/jobs/{job_id}/output", output_page, ["GET"]),
    ("/jobs/{job_id}/output/download", download_output, ["GET"]),
    ("/api/jobs/{job_id}/output", api_output, ["GET"]),
]
