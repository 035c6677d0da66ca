"""The servers and workers pages: server states and control, what every worker is doing.

Servers are seen only through their records in the store (``rjbatch.servers``). Pause,
resume and stop change the state a server's supervisor reads and follows; destroy removes a
stopping or zombie server's record at once and requeues its work, as ``destroy_zombies``
does for every zombie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rjbatch import servers
from rjbatch.config import get_store
from rjbatch.job import Job
from rjbatch.job.states import worker_belongs_to
from rjbatch.servers import Server, all_servers
from rjbatch.web import security
from rjbatch.web.common import (
    audit_action,
    flash,
    form_of,
    json_response,
    redirect,
    render,
    require,
)

# the lists of the sidebar: the stored states, then "zombie", which is computed
SERVER_STATES = (servers.STARTING, servers.RUNNING, servers.PAUSED, servers.STOPPING, "zombie")
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "stop": "Stop", "destroy": "Destroy",
                 "destroy_zombies": "Destroy zombies"}
# the stored states a one-server action applies to (as rjbatch.servers.request checks)
ACTION_FROM = {"pause": (servers.RUNNING,), "resume": (servers.PAUSED,),
               "stop": (servers.STARTING, servers.RUNNING, servers.PAUSED)}
# the all-server buttons each list offers, as in RJMC (kill has no rjbatch equivalent)
ALL_ACTIONS = {
    "all": ("pause", "resume", "stop", "destroy_zombies"),
    servers.STARTING: ("pause", "stop"),
    servers.RUNNING: ("pause", "stop", "destroy_zombies"),
    servers.PAUSED: ("resume", "destroy_zombies"),
    servers.STOPPING: ("destroy_zombies",),
    "zombie": ("destroy_zombies",),
}


def shown_state(server: Server) -> str:
    return "zombie" if server.is_zombie else server.state


def server_actions(server: Server) -> list[str]:
    """What the state allows on one server: a zombie or a stopping server can only be destroyed."""
    if server.is_zombie or server.state == servers.STOPPING:
        return ["destroy"]
    return [action for action, states in ACTION_FROM.items() if server.state in states]


def server_counts(every: list[Server]) -> dict[str, int]:
    counts = {state: sum(1 for s in every if s.state == state) for state in SERVER_STATES[:-1]}
    counts["zombie"] = sum(1 for s in every if s.is_zombie)
    counts["all"] = len(every)
    return counts


def server_list(every: list[Server], state: str, q: str) -> list[Server]:
    """One sidebar list, searched by name; a zombie also stays in the list of its stored state."""
    rows = [s for s in every if state == "all" or (s.is_zombie if state == "zombie" else s.state == state)]
    if q:
        rows = [s for s in rows if q.lower() in s.name.lower()]
    return sorted(rows, key=lambda s: s.name)


def list_params(request: Request) -> tuple[str, str]:
    state = request.query_params.get("state") or "all"
    if state != "all" and state not in SERVER_STATES:
        raise HTTPException(404, f"no such server state: {state}")
    return state, request.query_params.get("q", "").strip()


def find_server(name: str) -> Server:
    doc = get_store().find_server(name)
    if doc is None:
        raise HTTPException(404, f"Could not find server: {name}")
    return Server.from_doc(doc)


def server_summary(server: Server) -> dict[str, Any]:
    age = server.heartbeat_age
    return {"name": server.name, "state": server.state, "zombie": server.is_zombie,
            "hostname": server.hostname, "pid": server.pid, "max_workers": server.max_workers,
            "workers": [worker.get("name") for worker in server.workers],
            "started_at": server.started_at, "heartbeat_at": server.heartbeat_at,
            "heartbeat_age_seconds": age.total_seconds() if age is not None else None}


# -- workers ------------------------------------------------------------------------------
@dataclass
class WorkerRow:
    """One worker and what it is doing now (``job`` None: idle)."""

    name: str
    server: str
    server_state: str  # the server's stored state, "zombie", or "gone" (no record)
    job: Job | None = None
    started_at: datetime | None = None
    slices: tuple[int, ...] = ()

    @property
    def zombie(self) -> bool:
        return self.server_state in ("zombie", "gone")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "server": self.server, "server_state": self.server_state,
                "zombie": self.zombie, "idle": self.job is None,
                "job_id": self.job.id if self.job else None,
                "job_class": type(self.job).__name__ if self.job else None,
                "description": self.job.description if self.job else None,
                "started_at": self.started_at, "slices": list(self.slices)}


def owner_of(worker_name: str, every: list[Server]) -> tuple[str, str]:
    """(server name, shown server state) of a worker named ``<server>:<worker id>``."""
    owners = [s for s in every if worker_belongs_to(worker_name, s.name)]
    if owners:
        server = max(owners, key=lambda s: len(s.name))
        return server.name, shown_state(server)
    return worker_name.rpartition(":")[0] or worker_name, "gone"


def active_workers(every: list[Server]) -> list[WorkerRow]:
    """Every busy worker, longest-running first, then the idle workers of each server.

    A job's own worker is in its ``worker_name``; a batch job being processed has none, and
    its workers are those of its running input slices (one row per worker and job).
    """
    rows: list[WorkerRow] = []
    for job in Job.where(state="running").all():
        if job.worker_name:
            rows.append(WorkerRow(job.worker_name, *owner_of(job.worker_name, every), job=job,
                                  started_at=job.started_at))
        if hasattr(job, "input"):
            held: dict[str, list[dict]] = {}
            for piece in job.input.slices("running"):
                if piece.get("worker_name"):
                    held.setdefault(piece["worker_name"], []).append(piece)
            for worker, pieces in held.items():
                started = [t for t in (servers.as_time(p.get("started_at")) for p in pieces) if t is not None]
                rows.append(WorkerRow(worker, *owner_of(worker, every), job=job,
                                      started_at=min(started) if started else None,
                                      slices=tuple(sorted(p["id"] for p in pieces))))
    busy = {row.name for row in rows}
    never = datetime.max.replace(tzinfo=UTC)  # rows with no start time go last
    rows.sort(key=lambda row: (row.started_at or never, row.name))
    for server in sorted(every, key=lambda s: s.name):
        for described in server.workers:
            name = described.get("name")
            if name and name not in busy:
                rows.append(WorkerRow(name, server.name, shown_state(server)))
    return rows


def worker_rows(request: Request) -> tuple[list[WorkerRow], list[Server], str, str]:
    every = all_servers(get_store())
    server = request.query_params.get("server", "").strip()
    job_id = request.query_params.get("job_id", "").strip()
    rows = [row for row in active_workers(every)
            if (not server or row.server == server) and (not job_id or (row.job is not None and row.job.id == job_id))]
    return rows, every, server, job_id


# -- pages --------------------------------------------------------------------------------
def servers_page(request: Request) -> Response:
    state, q = list_params(request)
    every = all_servers(get_store())
    rows = [{"server": s, "state": shown_state(s), "actions": server_actions(s)} for s in server_list(every, state, q)]
    return render(request, "servers.html", rows=rows, state=state, q=q, server_states=SERVER_STATES,
                  server_counts=server_counts(every), all_actions=ALL_ACTIONS[state], labels=ACTION_LABELS,
                  may_control=security.has_role(request.state.role, security.SERVER_ROLE))


def server_action(request: Request) -> Response:
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ACTION_FROM and action != "destroy":
        raise HTTPException(404, f"no such server action: {action}")
    require(request, security.SERVER_ROLE, f"{action} servers")
    server = find_server(name)
    back = "/servers"
    if action not in server_actions(server):
        flash(request, "danger", f"Cannot {action} server {name}: it is {shown_state(server)}")
        return redirect(request, back)
    if action == "destroy":
        requeued = servers.destroy_server(get_store(), server.name, where={"state": server.state})
        if requeued is None:
            flash(request, "danger", f"Server {name} changed meanwhile: not destroyed")
            return redirect(request, back)
        audit_action(request, "destroy_server", f"server={name}", requeued=requeued)
        flash(request, "success", f"Destroyed server {name}; requeued {requeued} job(s) or slice(s)")
        return redirect(request, back)
    asked = servers.request(get_store(), action, name, exact=True)
    audit_action(request, f"{action}_server", f"server={name}", asked=len(asked))
    if asked:
        flash(request, "success", f"Submitted {action} request to server {name}")
    else:
        flash(request, "danger", f"Server {name} changed meanwhile: nothing to {action}")
    return redirect(request, back)


def all_servers_action(request: Request) -> Response:
    action = request.path_params["action"]
    if action not in ALL_ACTIONS["all"]:
        raise HTTPException(404, f"no such server action: {action}")
    require(request, security.SERVER_ROLE, f"{action} servers")
    form = form_of(request)
    state = str(form.get("state") or "all")
    back = "/servers" if state == "all" or state not in SERVER_STATES else f"/servers?state={state}"
    store = get_store()
    if action == "destroy_zombies":
        removed = servers.destroy_zombies(store)
        audit_action(request, "destroy_zombies", "servers=all", destroyed=len(removed))
        flash(request, "success", f"Destroyed {len(removed)} zombie server(s)"
              + (f": {', '.join(removed)}" if removed else ""))
        return redirect(request, back)
    asked = servers.request(store, action)
    audit_action(request, f"{action}_servers", "servers=all", asked=len(asked))
    flash(request, "success", f"Submitted {action} request to {len(asked)} server(s)")
    return redirect(request, back)


def workers_page(request: Request) -> Response:
    rows, every, server, job_id = worker_rows(request)
    return render(request, "workers.html", rows=rows, server=server, job_id=job_id,
                  servers=sorted(every, key=lambda s: s.name), shown_state=shown_state)


def api_servers(request: Request) -> Response:
    state, q = list_params(request)
    every = all_servers(get_store())
    return json_response({"counts": server_counts(every),
                          "servers": [server_summary(s) for s in server_list(every, state, q)]})


def api_workers(request: Request) -> Response:
    rows, _, _, _ = worker_rows(request)
    return json_response({"workers": [row.as_dict() for row in rows]})


# the all-server route comes first: a server cannot be named "all" here
ROUTES = [
    ("/servers", servers_page, ["GET"]),
    ("/servers/all/{action}", all_servers_action, ["POST"]),
    ("/servers/{name:path}/{action}", server_action, ["POST"]),
    ("/workers", workers_page, ["GET"]),
    ("/api/servers", api_servers, ["GET"]),
    ("/api/workers", api_workers, ["GET"]),
]
