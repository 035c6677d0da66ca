"""The job pages: lists per state, the job page, its actions, failed records, bulk retry."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rjbatch import config
from rjbatch.batch import BatchJob
from rjbatch.errors import InvalidTransition, RjbatchError, ValidationError
from rjbatch.job import Job
from rjbatch.job.exception import JobException
from rjbatch.plugins import Retry
from rjbatch.web import security
from rjbatch.web.common import (
    STATES,
    audit,
    audit_job,
    find_job,
    flash,
    form_of,
    redirect,
    refuse,
    render,
    require,
    to_int,
)
from rjbatch.web.escaping import escape_segments, escape_text, json_segments, unescape_text

PAGE_SIZES = (10, 20, 50, 100)
ACTIONS = ("run_now", "pause", "resume", "retry", "fail", "abort", "destroy")
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "retry": "Retry", "fail": "Fail", "abort": "Abort",
                 "run_now": "Run now", "destroy": "Destroy"}
# the inline actions of RJMC's job lists: fail and abort only on the job page
LIST_ACTIONS = ("run_now", "pause", "resume", "retry", "destroy")

# each list's columns and default order, as in RJMC's job lists; a column sorts by the
# stored field it names, and only these fields may be sorted on
COLUMNS: dict[str, tuple[str, ...]] = {
    "all": ("class", "description", "state", "priority", "created_at", "duration"),
    "running": ("class", "description", "record_count", "progress", "priority", "started_at", "throttled"),
    "queued": ("class", "description", "record_count", "priority", "created_at", "throttled"),
    "scheduled": ("class", "description", "run_at", "cron_schedule"),
    "paused": ("class", "description", "completed_at"),
    "completed": ("class", "description", "duration", "completed_at"),
    "failed": ("class", "description", "completed_at", "exception"),
    "aborted": ("class", "description", "completed_at"),
}
COLUMN_LABELS = {"class": "Class", "description": "Description", "state": "State", "priority": "Priority",
                 "created_at": "Created", "duration": "Duration", "record_count": "Records",
                 "progress": "Progress", "started_at": "Started", "throttled": "Throttled",
                 "run_at": "Runs in", "cron_schedule": "Cron schedule", "completed_at": "When",
                 "exception": "Exception"}
SORTABLE = {"class": "_type", "description": "description", "state": "state", "priority": "priority",
            "created_at": "created_at", "started_at": "started_at", "run_at": "run_at",
            "completed_at": "completed_at"}
DEFAULT_ORDER = {
    "all": ("-id",),
    "queued": ("priority", "created_at"),
    "running": ("priority", "created_at"),
    "scheduled": ("run_at",),
    "completed": ("-completed_at",),
    "failed": ("-completed_at",),
    "aborted": ("-completed_at",),
    "paused": ("-completed_at",),
}
STANDARD_FIELDS = (set(Job.field_names()) | set(BatchJob.field_names()) | {f"{state}_at" for state in STATES}
                   | {"id", "class", "duration", "seconds", "failed_at_list", "retry_limit"})


def list_query(state: str, q: str, sort: str | None = None, direction: str = "asc") -> Any:
    """The jobs of one list, searched and sorted; ``state`` is a list name of COLUMNS."""
    if state == "all":
        query = Job.where()
    elif state == "scheduled":
        query = Job.where().scheduled()
    elif state == "queued":
        query = Job.where().queued_now()
    else:
        query = Job.where(state=state)
    if q:
        pattern = "(?i)" + re.escape(q)  # a substring, never a user-supplied regex
        query = query.where({"$or": [{"_type": {"$regex": pattern}}, {"description": {"$regex": pattern}}]})
    if sort in SORTABLE and sort in COLUMNS[state]:
        prefix = "-" if direction == "desc" else ""
        return query.order_by(prefix + SORTABLE[sort], prefix + "id")
    return query.order_by(*DEFAULT_ORDER[state])


def list_params(request: Request) -> dict[str, Any]:
    params = request.query_params
    state = params.get("state", "all")
    if state not in COLUMNS:
        raise HTTPException(404, f"no such state: {state}")
    sort = params.get("sort")
    return {"state": state, "q": params.get("q", "").strip(),
            "sort": sort if sort in SORTABLE and sort in COLUMNS[state] else None,
            "dir": "desc" if params.get("dir") == "desc" else "asc",
            "per": to_int(params.get("per"), 20) if to_int(params.get("per"), 20) in PAGE_SIZES else 20,
            "page": max(to_int(params.get("page"), 1), 1)}


def allowed_actions(request: Request, job: Job, in_list: bool = False) -> list[str]:
    """The actions this user may fire on this job now."""
    username, role = request.state.username, request.state.role
    return [action for action in (LIST_ACTIONS if in_list else ACTIONS)
            if job.can(action) and security.may_act(username, role, action, job)]


def perform(request: Request, job: Job, action: str) -> None:
    """Fire ``action`` on ``job`` for this user: PermissionError, InvalidTransition or done."""
    if action not in ACTIONS:
        raise RjbatchError(f"unknown action {action!r}")
    if not security.may_act(request.state.username, request.state.role, action, job):
        audit.warning("refused user=%s role=%s action=%s job=%s", request.state.username,
                      request.state.role, action, job.id)
        raise PermissionError(f"Not allowed to {action} this job")
    job.act(action, reason=f"failed from Mission Control by {request.state.username}")
    audit_job(request, action, job)


# -- pages --------------------------------------------------------------------------------
async def home(request: Request) -> Response:
    return redirect(request, "/jobs?state=running")


def job_list(request: Request) -> Response:
    p = list_params(request)
    query = list_query(p["state"], p["q"], p["sort"], p["dir"])
    total = query.count()
    pages = max(1, math.ceil(total / p["per"]))
    page = min(p["page"], pages)
    jobs = query.skip((page - 1) * p["per"]).limit(p["per"]).all()
    rows = [{"job": job, "state": job.display_state, "actions": allowed_actions(request, job, in_list=True)}
            for job in jobs]
    may_bulk_retry = p["state"] == "failed" and security.has_role(request.state.role, security.JOB_ACTIONS["retry"])
    return render(request, "jobs.html", p=p, page=page, pages=pages, total=total, rows=rows,
                  columns=COLUMNS[p["state"]], column_labels=COLUMN_LABELS, sortable=SORTABLE,
                  page_sizes=PAGE_SIZES, may_bulk_retry=may_bulk_retry, labels=ACTION_LABELS,
                  failed_classes=failed_classes() if may_bulk_retry else [])


def failed_classes() -> list[tuple[str, int]]:
    """Failed jobs per class name, counted by the store (``_type`` is module.Class)."""
    counts: dict[str, int] = {}
    for type_path, n in config.get_store().count_jobs_by("_type", {"state": "failed"}).items():
        name = str(type_path).rpartition(".")[2]
        counts[name] = counts.get(name, 0) + n
    return sorted(counts.items())


def job_page(request: Request) -> Response:
    job = find_job(request.path_params["job_id"])
    data = job.as_dict()
    # every custom field, unset ones too (shown as nil), then stored values of unknown fields
    custom = {name: data.get(name) for name in type(job).field_names() if name not in STANDARD_FIELDS}
    custom.update((k, v) for k, v in data.items() if k not in STANDARD_FIELDS and k not in custom)
    retry = None
    if isinstance(job, Retry):
        retry = {"limit": job.retry_limit, "failed_at": job.failure_times}
    return render(request, "job.html", job=job, state=job.display_state, data=data, custom=custom,
                  can_edit_records=security.has_role(request.state.role, security.RECORD_ROLE),
                  exception=_exception(job.exception), batch=batch_info(job), retry=retry,
                  actions=allowed_actions(request, job), labels=ACTION_LABELS,
                  may_edit=job.state not in ("completed", "aborted")
                  and security.may_act(request.state.username, request.state.role, "edit", job))


def job_action(request: Request) -> Response:
    job = find_job(request.path_params["job_id"])
    action = request.path_params["action"]
    if action not in ACTIONS:
        raise HTTPException(404, f"no such action: {action}")
    try:
        perform(request, job, action)
    except PermissionError as exc:
        return refuse(request, 403, str(exc))
    except (InvalidTransition, RjbatchError) as exc:
        flash(request, "danger", f"Could not {action} the job: {exc}")
        return redirect(request, f"/jobs/{job.id}")
    flash(request, "success", f"{ACTION_LABELS[action]}: done")
    if action == "destroy":
        return redirect(request, "/jobs")
    return redirect(request, f"/jobs/{job.id}")


def retry_failed(request: Request) -> Response:
    """Retry every failed job (of one class when ``job_class`` is given) this user may retry."""
    require(request, "user", "retry jobs")  # a user retries its own jobs only
    form = form_of(request)
    class_name = str(form.get("job_class") or "")
    retried = refused = 0
    query = Job.where({"_class": class_name}, state="failed") if class_name else Job.where(state="failed")
    for job in query.all():  # read first: retrying moves jobs out of the paged filter
        try:
            perform(request, job, "retry")
            retried += 1
        except (PermissionError, InvalidTransition, RjbatchError):
            refused += 1
    what = f"failed {class_name} jobs" if class_name else "failed jobs"
    flash(request, "success" if retried or not refused else "danger",
          f"Retried {retried} {what}" + (f"; {refused} could not be retried" if refused else ""))
    return redirect(request, "/jobs?state=failed")


def failed_records(request: Request) -> Response:
    job = find_job(request.path_params["job_id"])
    if not isinstance(job, BatchJob):
        raise HTTPException(404, "not a batch job")
    error_type = request.query_params.get("error_type") or None
    records = [row for row in _failed_records(job) if error_type is None or row["exception"].class_name == error_type]
    return render(request, "failed.html", job=job, records=records, error_type=error_type,
                  can_edit_records=security.has_role(request.state.role, security.RECORD_ROLE))


def record_action(request: Request) -> Response:
    job = find_job(request.path_params["job_id"])
    action = request.path_params["action"]
    slice_id = to_int(request.path_params["slice_id"], -1)
    if not isinstance(job, BatchJob) or action not in ("update", "delete"):
        raise HTTPException(404, "no such action")
    require(request, security.RECORD_ROLE, "edit failed records")
    form = form_of(request)
    back = f"/jobs/{job.id}/failed"
    try:
        if action == "update":
            value = _parse_record(str(form.get("value", "")), str(form.get("kind", "text")))
            job.input.update_failed_record(slice_id, value)
        else:
            job.input.delete_failed_record(slice_id)
    except (RjbatchError, ValueError) as exc:
        flash(request, "danger", f"Could not {action} the record: {exc}")
        return redirect(request, back)
    audit_job(request, f"{action}_failed_record", job, slice=slice_id)
    flash(request, "success", f"Failed record in slice {slice_id}: {action}d")
    return redirect(request, back)


# -- helpers ------------------------------------------------------------------------------
def _exception(value: Any) -> JobException | None:
    return JobException.coerce(value) if value else None


def batch_info(job: Job) -> dict[str, Any] | None:
    if not isinstance(job, BatchJob) or job.is_new_record:
        return None
    counts = job.input.counts()
    queued, active, failed = counts.queued, counts.running, counts.failed
    slice_size = job.input_category().slice_size  # as stored: the class may not be imported
    record_count = job.record_count
    total = math.ceil(record_count / slice_size) if record_count and slice_size else queued + active + failed
    completed = max(total - queued - active - failed, 0)
    total = max(total, queued + active + failed + completed)

    def share(n: int) -> float:
        return round(100 * n / total, 2) if total else 0.0

    # RJMC's rate and estimate: records per hour once completed, time left once 5% is done
    rate, percent = job.records_per_second, job.percent_complete or 0
    return {"records_per_hour": None if rate is None else round(rate * 3600),
            "remaining_seconds": job.remaining_seconds,
            "queued": queued, "active": active, "failed": failed, "completed": completed, "total": total,
            "percent": percent, "record_count": record_count, "slice_size": slice_size,
            "sub_state": job.sub_state,
            "bar": [("completed", completed, share(completed)), ("active", active, share(active)),
                    ("failed", failed, share(failed)), ("queued", queued, share(queued))],
            "groups": job.input.group_exceptions() if failed else [],
            "statistics": job.statistics or {},
            "categories": {"input": job.input_categories or [], "output": job.output_categories or []}}


def _failed_records(job: Job) -> list[dict[str, Any]]:
    if not isinstance(job, BatchJob):
        return []
    rows = []
    for failed in job.input.failed_records():
        record = failed.record
        kind = "text" if isinstance(record, str | bytes) else "json"
        rows.append({"slice_id": failed.key, "record": record, "kind": kind,
                     "text": escape_text(record) if kind == "text" else json.dumps(record, default=str),
                     "segments": escape_segments(record) if kind == "text" else json_segments(record),
                     "record_number": failed.record_number, "exception": failed.exception})
    return rows


def _parse_record(text: str, kind: str) -> Any:
    if kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from None
    return unescape_text(text)


# more specific routes go first: create_app adds ACTION_ROUTES after every module's ROUTES
ROUTES = [
    ("/", home, ["GET"]),
    ("/jobs", job_list, ["GET"]),
    ("/jobs/retry_failed", retry_failed, ["POST"]),
    ("/jobs/{job_id}", job_page, ["GET"]),
    ("/jobs/{job_id}/failed", failed_records, ["GET"]),
    ("/jobs/{job_id}/failed/{slice_id}/{action}", record_action, ["POST"]),
]
ACTION_ROUTES = [("/jobs/{job_id}/{action}", job_action, ["POST"])]
