"""The job edit page: a form over the job class's ``user_editable`` fields (§1.7)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rjbatch.errors import Errors, JobNotFound, RjbatchError, ValidationError
from rjbatch.job import Job
from rjbatch.web import forms, security
from rjbatch.web.common import audit, audit_job, find_job, flash, redirect, render

PREFIX = "field."  # form keys, kept apart from csrf_token and the buttons
CLOSED_STATES = ("completed", "aborted")  # RJMC offers no Edit for these


def editable(request: Request, job: Job) -> Job:
    """Stop with 403 unless this user may edit this job; send it back when the state is closed."""
    username, role = request.state.username, request.state.role
    if not security.may_act(username, role, "edit", job):
        audit.warning("refused user=%s role=%s action=edit job=%s", username, role, job.id)
        raise HTTPException(403, "Not allowed to edit this job")
    return job


def current_values(job: Job) -> dict[str, Any]:
    return {described.name: getattr(job, described.name) for described in forms.editable_fields(type(job))}


def form_page(request: Request, job: Job, *, texts: dict[str, str] | None = None,
              errors: Errors | None = None, status: int = 200) -> Response:
    fields = forms.editable_fields(type(job))
    controls = forms.widgets(fields, current_values(job), prefix=PREFIX, texts=texts, errors=errors)
    return render(request, "job_edit.html", status_code=status, job=job, controls=controls,
                  error_lines=forms.error_lines(errors or {}))


def closed(request: Request, job: Job) -> Response | None:
    """A completed or aborted job is not edited: back to its page with the reason."""
    if job.state in CLOSED_STATES:
        flash(request, "danger", f"A job that is {job.state} cannot be edited")
        return redirect(request, f"/jobs/{job.id}")
    return None


async def edit_page(request: Request) -> Response:
    job = editable(request, find_job(request.path_params["job_id"]))
    return closed(request, job) or form_page(request, job)


async def save(request: Request) -> Response:
    job = editable(request, find_job(request.path_params["job_id"]))
    refused = closed(request, job)
    if refused:
        return refused
    form = await request.form()
    fields = forms.editable_fields(type(job))
    values, texts, errors = forms.parse_form(fields, form, current_values(job), prefix=PREFIX)
    changed = [name for name, value in values.items() if value != getattr(job, name)]
    for name in changed:  # in memory only, so the job's own checks see the new values
        setattr(job, name, values[name])
    if not job.is_valid():  # every field's error at once, not the form's first
        for name, messages in job.errors.items():
            if name not in errors:
                errors[name] = list(messages)
    if not errors:
        try:
            job.save()
        except ValidationError as exc:
            errors = exc.errors
        except JobNotFound:
            flash(request, "danger", "The job no longer exists (it completed or was destroyed)")
            return redirect(request, "/jobs")
        except RjbatchError as exc:
            errors = Errors({"base": [str(exc)]})
    if errors:
        # the job object holds the rejected values only in memory: show the stored ones under the typed text
        return form_page(request, find_job(job.id), texts=texts, errors=errors, status=422)
    if changed:
        audit_job(request, "edit", job, fields=",".join(changed))
        flash(request, "success", f"Saved the changes to {', '.join(changed)}")
    else:
        flash(request, "success", "Nothing to change")
    return redirect(request, f"/jobs/{job.id}")


# before jobs.ACTION_ROUTES' POST /jobs/{job_id}/{action}, which create_app adds last
ROUTES = [
    ("/jobs/{job_id}/edit", edit_page, ["GET"]),
    ("/jobs/{job_id}/edit", save, ["POST"]),
]
