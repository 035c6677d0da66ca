"""The servers page: each server's state, workers, heartbeat age, zombies."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rjbatch.config import get_store
from rjbatch.servers import all_servers
from rjbatch.web.common import render


async def servers_page(request: Request) -> Response:
    servers = sorted(all_servers(get_store()), key=lambda s: s.name)
    return render(request, "servers.html", servers=servers)


ROUTES = [
    ("/servers", servers_page, ["GET"]),
]
