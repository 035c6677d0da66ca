"""The JSON API beside the pages, for scripts: the same lists, job status and actions."""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rjbatch.errors import InvalidTransition, JobNotFound, RjbatchError
from rjbatch.job import Job
from rjbatch.web import security
from rjbatch.web.common import job_counts, json_response
from rjbatch.web.jobs import COLUMNS, allowed_actions, list_params, list_query, perform


async def api_csrf(request: Request) -> Response:
    return JSONResponse({"csrf_token": security.csrf_token(request.session)})


def api_jobs(request: Request) -> Response:
    if request.query_params.get("state", "all") not in COLUMNS:
        return JSONResponse({"error": f"no such state: {request.query_params['state']}"}, 404)
    p = list_params(request)
    query = list_query(p["state"], p["q"], p["sort"], p["dir"])
    total = query.count()
    jobs = query.skip((p["page"] - 1) * p["per"]).limit(p["per"]).all()
    return json_response({"counts": job_counts(), "total": total, "page": p["page"], "page_size": p["per"],
                          "pages": max(1, math.ceil(total / p["per"])),
                          "jobs": [summary(job) for job in jobs]})


def api_job(request: Request) -> Response:
    try:
        job = Job.find(request.path_params["job_id"])
    except JobNotFound:
        return JSONResponse({"error": "job not found"}, 404)
    return json_response({**job.status(), "state": job.display_state, "actions": allowed_actions(request, job)})


def api_action(request: Request) -> Response:
    try:
        job = Job.find(request.path_params["job_id"])
    except JobNotFound:
        return JSONResponse({"error": "job not found"}, 404)
    action = request.path_params["action"]
    try:
        perform(request, job, action)
    except PermissionError as exc:
        return JSONResponse({"error": str(exc)}, 403)
    except (InvalidTransition, RjbatchError) as exc:
        return JSONResponse({"error": str(exc)}, 409)
    if action == "destroy":
        return json_response({"id": job.id, "destroyed": True})
    return json_response({"id": job.id, "state": Job.find(job.id).display_state})


def summary(job: Job) -> dict[str, Any]:
    return {"id": job.id, "class": type(job).__name__, "description": job.description,
            "state": job.display_state, "priority": job.priority, "created_at": job.created_at,
            "completed_at": job.completed_at, "percent_complete": job.percent_complete}


ROUTES = [
    ("/api/csrf", api_csrf, ["GET"]),
    ("/api/jobs", api_jobs, ["GET"]),
    ("/api/jobs/{job_id}", api_job, ["GET"]),
    ("/api/jobs/{job_id}/{action}", api_action, ["POST"]),
]
