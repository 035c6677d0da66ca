"""The job edit page: a form over the job class's ``user_editable`` fields (docs/web.md, Pages), and
``POST /api/jobs/{id}/edit`` taking the same fields as JSON.

A field in the class's ``admin_only_fields`` (``OnDemandJob.code``: code a worker runs)
is shown to and accepted from an admin only; anyone else who sends one gets 403
(``require_fields``, the check dirmon properties go through too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rjbatch.batch import BatchJob
from rjbatch.batch.categories import MODES, InputCategory, OutputCategory, from_dict
from rjbatch.codecs.tabular.table import FORMATS
from rjbatch.errors import Errors, JobNotFound, RjbatchError, ValidationError
from rjbatch.job import Job
from rjbatch.job.fields import Field
from rjbatch.web import forms, security
from rjbatch.web.common import (
    audit,
    audit_job,
    client_of,
    find_job,
    flash,
    form_of,
    json_body,
    json_response,
    redirect,
    render,
    require_fields,
)

PREFIX = "field."  # form keys, kept apart from csrf_token and the buttons
CLOSED_STATES = ("completed", "aborted")  # RJMC offers no Edit for these


def _setting(name: str, kind: Any, choices: Any = None, description: str | None = None) -> Field:
    described = Field(kind, choices=choices, description=description)
    described.name = name
    return described


CATEGORY_CLASSES = {"input": InputCategory, "output": OutputCategory}
# a batch job's category settings editable per job (as RJMC's edit page nests input and
# output category forms)
CATEGORY_SETTINGS = {
    "input": [
        _setting("columns", list, description="the header, one column per line (blank: read from the file)"),
        _setting("format", str, ("auto", *FORMATS)),
        _setting("format_options", dict),
        _setting("mode", str, MODES, "line: the record as text; array: a list of values; hash: a dict"),
        _setting("skip_unknown", bool),
        _setting("slice_size", int),
    ],
    "output": [
        _setting("columns", list, description="the output's columns, one per line"),
        _setting("format", str, FORMATS),
        _setting("format_options", dict),
    ],
}


def editable(request: Request, job: Job) -> Job:
    """Stop with 403 unless this user may edit this job; send it back when the state is closed."""
    username, role = request.state.username, request.state.role
    if not security.may_act(username, role, "edit", job):
        audit.warning("refused user=%s role=%s action=edit job=%s client=%s", username, role, job.id,
                      client_of(request))
        raise HTTPException(403, "Not allowed to edit this job")
    return job


def fields_of(request: Request, job: Job) -> list[Field]:
    """The fields this user may edit on this job (an admin's include the code fields)."""
    return forms.editable_fields(type(job), role=request.state.role)


def current_values(job: Job, fields: list[Field]) -> dict[str, Any]:
    return {described.name: getattr(job, described.name) for described in fields}


def check_fields(request: Request, job: Job, names: Any) -> None:
    """403 unless this user may set every field named (admin_only_fields: admins only)."""
    require_fields(request, type(job), names, "edit", f"job={job.id} class={type(job).__name__}")


def categories_of(job: Job) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, settings)`` of each category of a batch job; none for other jobs."""
    if not isinstance(job, BatchJob):
        return []
    return ([("input", entry) for entry in job.input_categories]
            + [("output", entry) for entry in job.output_categories])


def category_prefix(kind: str, name: str) -> str:
    return f"{kind}.{name}."


def form_page(request: Request, job: Job, *, texts: dict[str, str] | None = None,
              errors: Errors | None = None, status: int = 200,
              category_texts: dict[str, dict[str, str]] | None = None,
              category_errors: dict[str, Errors] | None = None) -> Response:
    fields = fields_of(request, job)
    controls = forms.widgets(fields, current_values(job, fields), prefix=PREFIX, texts=texts, errors=errors)
    categories = []
    lines = forms.error_lines(errors or {})
    for kind, settings in categories_of(job):
        prefix = category_prefix(kind, settings["name"])
        found: Mapping[str, list[str]] = (category_errors or {}).get(prefix, {})
        categories.append({"kind": kind, "name": settings["name"], "controls": forms.widgets(
            CATEGORY_SETTINGS[kind], settings, prefix=prefix, texts=(category_texts or {}).get(prefix), errors=found)})
        lines += [f"{kind.capitalize()} category {settings['name']}: {line}" for line in forms.error_lines(found)]
    admin_only = security.fields_refused(request.state.role, type(job), type(job).user_editable_fields())
    return render(request, "job_edit.html", status_code=status, job=job, controls=controls,
                  categories=categories, error_lines=lines, admin_only=admin_only)


def parse_categories(job: Job, form: Any) -> tuple[dict[str, tuple[str, str, dict]], dict, dict]:
    """The changed settings of each category, the texts as typed, and the errors, by form prefix."""
    changes: dict[str, tuple[str, str, dict]] = {}
    texts: dict[str, dict[str, str]] = {}
    errors: dict[str, Errors] = {}
    for kind, settings in categories_of(job):
        prefix = category_prefix(kind, settings["name"])
        values, texts[prefix], found = forms.parse_form(CATEGORY_SETTINGS[kind], form, settings, prefix=prefix)
        changed = {key: value for key, value in values.items() if value != settings.get(key)}
        if "format_options" in changed and changed["format_options"] is None:
            changed["format_options"] = {}
        for key in ("mode", "skip_unknown", "slice_size"):  # these have no "unset": blank keeps them
            if key in changed and changed[key] is None:
                del changed[key]
        if changed:
            try:
                from_dict(CATEGORY_CLASSES[kind], {**settings, **changed}).validate()
            except ValidationError as exc:
                known = {described.name for described in CATEGORY_SETTINGS[kind]}
                for key, messages in exc.errors.items():
                    for message in messages:
                        found.add(key if key in known else "base", message)
        if found:
            errors[prefix] = found
        elif changed:
            changes[prefix] = (kind, settings["name"], changed)
    return changes, texts, errors


def closed(request: Request, job: Job) -> Response | None:
    """A completed or aborted job is not edited: back to its page with the reason."""
    if job.state in CLOSED_STATES:
        flash(request, "danger", f"A job that is {job.state} cannot be edited")
        return redirect(request, f"/jobs/{job.id}")
    return None


def edit_page(request: Request) -> Response:
    job = editable(request, find_job(request.path_params["job_id"]))
    return closed(request, job) or form_page(request, job)


def store_changes(job: Job, values: dict[str, Any], errors: Errors,
                  category_changes: dict[str, tuple[str, str, dict]] | None = None,
                  *, blocked: bool = False) -> tuple[list[str], Errors]:
    """Set the changed values (and category settings), check the whole job, save it.

    Returns the names changed and the errors; nothing is saved when there are any, or when
    ``blocked`` (errors found elsewhere). ``values`` hold only fields ``check_fields`` let
    through. JobNotFound goes to the caller.
    """
    changed = [name for name, value in values.items() if value != getattr(job, name)]
    for name in changed:  # in memory only, so the job's own checks see the new values
        setattr(job, name, values[name])
    for kind, name, settings in (category_changes or {}).values():
        assert isinstance(job, BatchJob)  # categories_of() gives only a batch job categories
        job.update_category(kind, name, **settings)
        changed += [f"{kind}.{name}.{key}" for key in settings]
    if not job.is_valid():  # every field's error at once, not the form's first
        for name, messages in job.errors.items():
            if name not in errors:
                errors[name] = list(messages)
    if not errors and not blocked:
        try:
            job.save()
        except ValidationError as exc:
            errors = exc.errors
        except RjbatchError as exc:
            if isinstance(exc, JobNotFound):
                raise
            errors = Errors({"base": [str(exc)]})
    return changed, errors


def save(request: Request) -> Response:
    job = editable(request, find_job(request.path_params["job_id"]))
    refused = closed(request, job)
    if refused:
        return refused
    form = form_of(request)
    check_fields(request, job, [key[len(PREFIX):] for key in form.keys() if key.startswith(PREFIX)])
    fields = fields_of(request, job)
    values, texts, errors = forms.parse_form(fields, form, current_values(job, fields), prefix=PREFIX)
    category_changes, category_texts, category_errors = parse_categories(job, form)
    try:
        changed, errors = store_changes(job, values, errors, category_changes, blocked=bool(category_errors))
    except JobNotFound:
        flash(request, "danger", "The job no longer exists (it completed or was destroyed)")
        return redirect(request, "/jobs")
    if errors or category_errors:
        # the job object holds the rejected values only in memory: show the stored ones under the typed text
        return form_page(request, find_job(job.id), texts=texts, errors=errors, status=422,
                         category_texts=category_texts, category_errors=category_errors)
    if changed:
        audit_job(request, "edit", job, fields=",".join(changed))
        flash(request, "success", f"Saved the changes to {', '.join(changed)}")
    else:
        flash(request, "success", "Nothing to change")
    return redirect(request, f"/jobs/{job.id}")


def api_edit(request: Request) -> Response:
    """``POST /api/jobs/{id}/edit`` with ``{"field": value, ...}``: the edit form's rules as JSON.

    Answers 200 ``{"id", "changed"}``, 400 (not a JSON object), 403 (role, CSRF, or a field
    only an admin may set), 404, 409 (completed or aborted) or 422 ``{"errors": {...}}``.
    """
    try:
        job = Job.find(request.path_params["job_id"])
    except JobNotFound:
        return JSONResponse({"error": "job not found"}, 404)
    editable(request, job)
    if job.state in CLOSED_STATES:
        return JSONResponse({"error": f"A job that is {job.state} cannot be edited"}, 409)
    body = json_body(request)
    if not isinstance(body, dict):
        return JSONResponse({"error": 'expected a JSON object: {"field": value, ...}'}, 400)
    check_fields(request, job, body)
    fields = {described.name: described for described in fields_of(request, job)}
    values: dict[str, Any] = {}
    errors = Errors()
    for name, value in body.items():
        if name not in fields:
            errors.add(name, "is not an editable field")
            continue
        try:
            values[name] = None if value is None else fields[name].coerce(value)
        except ValidationError as exc:
            for message in exc.errors.get(name) or exc.errors.full_messages():
                errors.add(name, message)
    try:
        changed, errors = store_changes(job, values, errors)
    except JobNotFound:
        return JSONResponse({"error": "job not found"}, 404)
    if errors:
        return json_response({"errors": errors}, 422)
    if changed:
        audit_job(request, "edit", job, fields=",".join(changed))
    return json_response({"id": job.id, "changed": changed})


# before jobs.ACTION_ROUTES' POST /jobs/{job_id}/{action}, which create_app adds last
ROUTES = [
    ("/api/jobs/{job_id}/edit", api_edit, ["POST"]),  # before api's /api/jobs/{job_id}/{action}
    ("/jobs/{job_id}/edit", edit_page, ["GET"]),
    ("/jobs/{job_id}/edit", save, ["POST"]),
]
