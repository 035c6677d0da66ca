"""The servers and workers pages: state lists, zombies, server control, active workers."""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta

import pytest

from rjbatch import Job, clock
from rjbatch.batch import BatchJob
from rjbatch.config import get_store
from rjbatch.web import create_app
from tests.web.helpers import USERS, client, content_of, csrf, post

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


class ServerPagesJob(Job):
    def perform(self):
        return None


class ServerPagesBatchJob(BatchJob):
    slice_size = 2

    def perform(self, line):
        return line


@pytest.fixture
def app():
    return create_app(users=USERS)


@pytest.fixture
def otto(app):
    return client(app, ("otto", "ops"))


@pytest.fixture
def max_(app):
    return client(app, ("max", "man"))


def add_server(name: str, state: str = "running", beat: float | None = 5, workers: tuple[str, ...] = (),
               max_workers: int = 4) -> None:
    """A server record as a worker server writes it; ``beat``: seconds since its heartbeat."""
    now = clock.now()
    get_store().save_server({
        "name": name, "state": state, "max_workers": max_workers, "started_at": now - timedelta(hours=1),
        "heartbeat_at": None if beat is None else now - timedelta(seconds=beat),
        "heartbeat_seconds": 15, "zombie_heartbeats": 4, "hostname": name.rsplit(":", 1)[0], "pid": 1,
        "workers": [{"name": worker, "pid": 100 + i} for i, worker in enumerate(workers)],
    })


def state_of(name: str) -> str | None:
    doc = get_store().find_server(name)
    return doc["state"] if doc else None


def row_of(page: str, name: str) -> str:
    """The table row of one server or worker (by its escaped name)."""
    return re.split(f">{re.escape(html.escape(name))}[ <]", page, maxsplit=1)[1].split("</tr>", 1)[0]


def listed(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [html.unescape(name) for name in re.findall(r'<td><a href="[^"]*">([^<]*)</a></td>', body)]


def fleet() -> None:
    add_server("web1:10", "starting", beat=None)
    add_server("web1:11", "running", workers=("web1:11:1", "web1:11:2"))
    add_server("web2:20", "running", beat=600)  # missed its heartbeats: a zombie
    add_server("web2:21", "paused")
    add_server("web3:30", "stopping")


# -- lists ----------------------------------------------------------------------------------
def test_the_sidebar_counts_each_state_and_the_computed_zombies(otto, frozen_clock):
    fleet()
    page = otto.get("/servers").text
    for label in ("All (5)", "Starting (1)", "Running (2)", "Paused (1)", "Stopping (1)", "Zombie (1)"):
        assert label in page
    assert listed(page) == ["web1:10", "web1:11", "web2:20", "web2:21", "web3:30"]  # sorted by name
    assert "2/4" in row_of(page, "web1:11")
    assert "never" in row_of(page, "web1:10") and "10 minutes ago" in row_of(page, "web2:20")
    assert "1 hour ago" in row_of(page, "web1:11")


def test_each_state_filter_lists_only_its_servers(otto, frozen_clock):
    fleet()
    assert listed(otto.get("/servers?state=starting").text) == ["web1:10"]
    assert listed(otto.get("/servers?state=running").text) == ["web1:11", "web2:20"]
    assert listed(otto.get("/servers?state=paused").text) == ["web2:21"]
    assert listed(otto.get("/servers?state=stopping").text) == ["web3:30"]
    assert listed(otto.get("/servers?state=zombie").text) == ["web2:20"]
    assert listed(otto.get("/servers?q=WEB2").text) == ["web2:20", "web2:21"]
    assert listed(otto.get("/servers?state=running&q=web2").text) == ["web2:20"]
    assert otto.get("/servers?state=sleeping").status_code == 404


def test_a_server_is_a_zombie_once_it_missed_four_heartbeats(otto, frozen_clock):
    add_server("slow:1", beat=59)  # 4 beats of 15 s are allowed
    assert "Zombie (0)" in otto.get("/servers").text
    frozen_clock.advance(seconds=1)
    page = otto.get("/servers").text
    assert "Zombie (1)" in page and "state-zombie" in row_of(page, "slow:1")
    add_server("new:2", "starting", beat=None)  # still starting: never a zombie
    add_server("mute:3", "running", beat=None)  # running without a heartbeat: a zombie
    assert listed(otto.get("/servers?state=zombie").text) == ["mute:3", "slow:1"]


def test_the_json_api_lists_servers_with_counts(otto, frozen_clock):
    fleet()
    data = otto.get("/api/servers?state=running").json()
    assert data["counts"] == {"starting": 1, "running": 2, "paused": 1, "stopping": 1, "zombie": 1, "all": 5}
    assert [s["name"] for s in data["servers"]] == ["web1:11", "web2:20"]
    alive, dead = data["servers"]
    assert alive["zombie"] is False and alive["workers"] == ["web1:11:1", "web1:11:2"]
    assert alive["heartbeat_age_seconds"] == 5 and dead["zombie"] is True
    assert otto.get("/api/servers?state=nope").status_code == 404


# -- one server's actions ------------------------------------------------------------------
def test_buttons_follow_each_servers_state(otto, frozen_clock):
    fleet()
    page = otto.get("/servers").text
    forms = {name: re.findall(r'/servers/([^"/]+)/(\w+)"', row_of(page, name))
             for name in ("web1:10", "web1:11", "web2:20", "web2:21", "web3:30")}
    assert forms == {
        "web1:10": [("web1%3A10", "stop")],
        "web1:11": [("web1%3A11", "pause"), ("web1%3A11", "stop")],
        "web2:20": [("web2%3A20", "destroy")],  # a zombie can only be destroyed
        "web2:21": [("web2%3A21", "resume"), ("web2%3A21", "stop")],
        "web3:30": [("web3%3A30", "destroy")],
    }
    assert "Server is stopping..." in row_of(page, "web3:30")
    assert "may run twice" in row_of(page, "web3:30") and "may run twice" not in row_of(page, "web2:20")


def test_pause_resume_and_stop_change_the_stored_state(otto, caplog):
    add_server("host:1")
    caplog.set_level(logging.INFO, logger="rjbatch.web.audit")
    response = post(otto, "/servers/host:1/pause")
    assert response.status_code == 303 and response.headers["location"].endswith("/servers")
    assert state_of("host:1") == "paused"
    assert "Submitted pause request to server host:1" in otto.get("/servers").text
    assert "user=otto role=operator action=pause_server server=host:1" in caplog.text
    post(otto, "/servers/host%3A1/resume")  # the url-encoded form the page links to
    assert state_of("host:1") == "running"
    post(otto, "/servers/host:1/stop")
    assert state_of("host:1") == "stopping"


def test_an_action_the_state_refuses_changes_nothing(otto):
    add_server("host:1", "paused")
    post(otto, "/servers/host:1/pause")
    assert state_of("host:1") == "paused"
    assert "Cannot pause server host:1: it is paused" in otto.get("/servers").text
    post(otto, "/servers/host:1/destroy")  # alive and not stopping
    assert state_of("host:1") == "paused"
    assert post(otto, "/servers/nobody:1/pause").status_code == 404
    assert post(otto, "/servers/host:1/kill").status_code == 404


def test_destroying_a_stopping_server_requeues_its_running_job(otto, caplog):
    add_server("host:1", "stopping", workers=("host:1:1",))
    add_server("host:12", "running")  # host:1 must not take host:12's work
    mine, theirs = ServerPagesJob.create(), ServerPagesJob.create()
    mine.start("host:1:1")
    theirs.start("host:12:1")
    caplog.set_level(logging.INFO, logger="rjbatch.web.audit")
    post(otto, "/servers/host:1/destroy")
    assert state_of("host:1") is None and state_of("host:12") == "running"
    mine, theirs = Job.find(mine.id), Job.find(theirs.id)
    assert mine.state == "queued" and mine.worker_name is None
    assert theirs.state == "running" and theirs.worker_name == "host:12:1"
    assert "Destroyed server host:1; requeued 1 job(s)" in otto.get("/servers").text
    assert "action=destroy_server server=host:1 client=testclient requeued=1" in caplog.text


def test_destroying_a_zombie_requeues_its_batch_slices(otto, frozen_clock):
    add_server("dead:1", beat=600)
    job = ServerPagesBatchJob.create()
    job.upload(["a", "b", "c", "d"])
    job.start("dead:1:1")
    job.update_attribute("sub_state", "processing")
    get_store().claim_slices(job.id, "main", "dead:1:1", clock.now(), 1)
    assert job.input.running_count() == 1
    post(otto, "/servers/dead:1/destroy")
    assert state_of("dead:1") is None
    assert job.input.running_count() == 0 and job.input.queued_count() == 2



def test_a_server_named_like_another_servers_host_is_not_asked_by_hostname(otto):
    add_server("web1")  # started with --name web1, on host web1
    add_server("web1:5")  # a default name on the same host
    post(otto, "/servers/web1/pause")
    assert (state_of("web1"), state_of("web1:5")) == ("paused", "running")
    post(otto, "/servers/web1:5/pause")
    assert (state_of("web1"), state_of("web1:5")) == ("paused", "paused")


# -- all-server actions --------------------------------------------------------------------
def test_all_server_buttons_differ_by_list(otto, frozen_clock):
    fleet()

    def buttons(query: str) -> list[str]:
        return re.findall(r'/servers/all/(\w+)"', otto.get("/servers" + query).text)

    assert buttons("") == ["pause", "resume", "stop", "destroy_zombies"]
    assert buttons("?state=starting") == ["pause", "stop"]
    assert buttons("?state=running") == ["pause", "stop", "destroy_zombies"]
    assert buttons("?state=paused") == ["resume", "destroy_zombies"]
    assert buttons("?state=stopping") == buttons("?state=zombie") == ["destroy_zombies"]
    page = otto.get("/servers").text
    assert "Are you sure you want to pause ALL rjbatch servers?" in page
    assert "Are you sure you want to destroy ALL zombie servers?" in page


def test_pause_all_asks_every_running_server(otto, frozen_clock):
    fleet()
    response = post(otto, "/servers/all/pause", state="running")
    assert response.headers["location"].endswith("/servers?state=running")
    assert state_of("web1:11") == state_of("web2:20") == "paused"
    assert state_of("web1:10") == "starting" and state_of("web3:30") == "stopping"
    assert "Submitted pause request to 2 server(s)" in otto.get("/servers").text
    post(otto, "/servers/all/resume")
    assert state_of("web1:11") == state_of("web2:20") == state_of("web2:21") == "running"
    post(otto, "/servers/all/stop")
    assert {s["state"] for s in get_store().find_servers()} == {"stopping"}


def test_destroy_zombies_removes_only_the_zombies_and_requeues_their_jobs(otto, frozen_clock):
    fleet()
    add_server("web4:40", "paused", beat=None)
    job = ServerPagesJob.create()
    job.start("web2:20:1")
    response = post(otto, "/servers/all/destroy_zombies", state="zombie")
    assert response.headers["location"].endswith("/servers?state=zombie")
    assert sorted(s["name"] for s in get_store().find_servers()) == ["web1:10", "web1:11", "web2:21", "web3:30"]
    assert Job.find(job.id).state == "queued"
    assert "Destroyed 2 zombie server(s): " in otto.get("/servers").text
    assert post(otto, "/servers/all/kill").status_code == 404


# -- permissions and CSRF ------------------------------------------------------------------
@pytest.mark.parametrize("user", [("max", "man"), ("vic", "look")])
def test_weaker_roles_see_no_server_buttons_and_their_posts_are_refused(app, user, caplog, frozen_clock):
    fleet()
    weak = client(app, user)
    page = weak.get("/servers").text
    assert "web1:11" in page and "<form method=\"post\"" not in content_of(page)
    caplog.set_level(logging.WARNING, logger="rjbatch.web.audit")
    for path in ("/servers/web1:11/pause", "/servers/web2:21/resume", "/servers/web1:11/stop",
                 "/servers/web3:30/destroy", "/servers/all/pause", "/servers/all/destroy_zombies"):
        assert post(weak, path).status_code == 403
    assert [state_of(n) for n in ("web1:11", "web2:20", "web2:21", "web3:30")] == \
        ["running", "running", "paused", "stopping"]
    assert f"refused user={user[0]}" in caplog.text


def test_a_server_post_without_the_csrf_token_is_refused(otto):
    add_server("host:1")
    csrf(otto)
    assert otto.post("/servers/host:1/pause", follow_redirects=False).status_code == 403
    assert otto.post("/servers/all/stop", data={"csrf_token": "forged"}, follow_redirects=False).status_code == 403
    assert state_of("host:1") == "running"
    assert otto.get("/servers/host:1/pause").status_code == 405


def test_a_server_name_with_markup_is_escaped_and_can_still_be_acted_on(otto):
    name = "<script>alert(1)</script>:7"
    add_server(name, workers=(f"{name}:1",))
    page = otto.get("/servers").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;:7" in page
    action = re.search(r'action="(/servers/[^"]+/pause)"', page).group(1)
    assert "<" not in action
    post(otto, action)
    assert state_of(name) == "paused"
    workers = otto.get("/workers").text
    assert "<script>alert" not in workers and "&lt;script&gt;alert(1)&lt;/script&gt;:7:1" in workers


# -- workers -------------------------------------------------------------------------------
def busy_fleet(frozen_clock) -> tuple[Job, Job]:
    """A plain job on web1:11:1, a batch job's slices on web1:11:2 and a gone server's worker."""
    plain = ServerPagesJob.create(description="<b>plain</b> work")
    plain.start("web1:11:1")
    frozen_clock.advance(minutes=5)
    batch = ServerPagesBatchJob.create(description="batch work")
    batch.upload(["a", "b", "c", "d", "e", "f"])
    batch.start("web1:11:2")
    batch.update_attribute("sub_state", "processing")
    batch.update_attribute("worker_name", None)
    store = get_store()
    frozen_clock.advance(minutes=2)
    store.claim_slices(batch.id, "main", "web1:11:2", clock.now(), 2)
    frozen_clock.advance(minutes=1)
    store.claim_slices(batch.id, "main", "gone:9:1", clock.now(), 1)
    add_server("web1:11", "running", workers=("web1:11:1", "web1:11:2", "web1:11:3"))
    add_server("web2:20", "running", beat=600, workers=("web2:20:1",))
    return plain, batch


def test_the_workers_page_shows_what_each_worker_does_longest_running_first(otto, frozen_clock):
    plain, batch = busy_fleet(frozen_clock)
    page = otto.get("/workers").text
    names = re.findall(r"<tr class=\"callout-\w+\">\s*<td>([^<]+?)[ <]", page)
    assert names == ["web1:11:1", "web1:11:2", "gone:9:1", "web1:11:3", "web2:20:1"]
    first = row_of(page, "web1:11:1")
    assert f'href="/jobs/{plain.id}">ServerPagesJob</a>' in first and "8 minutes ago" in first
    assert "&lt;b&gt;plain&lt;/b&gt; work" in first and "<b>plain" not in page
    slices = row_of(page, "web1:11:2")
    assert f'href="/jobs/{batch.id}">ServerPagesBatchJob</a>' in slices
    assert "(slices 1, 2)" in slices and "1 minute ago" in slices and "zombie" not in slices.split("</td>")[0]
    gone = row_of(page, "gone:9:1")
    assert "state-zombie" in gone and "gone</span>" in gone and "(slice 3)" in gone
    assert "idle" in row_of(page, "web1:11:3")
    assert "state-zombie\">zombie</span>" in row_of(page, "web2:20:1")  # its server stopped beating


def test_the_workers_page_filters_by_job_and_by_server(otto, frozen_clock):
    plain, batch = busy_fleet(frozen_clock)
    by_job = otto.get(f"/workers?job_id={batch.id}").text
    assert "web1:11:2" in by_job and "gone:9:1" in by_job
    assert "web1:11:1" not in by_job and "web1:11:3" not in by_job
    by_server = otto.get("/workers?server=web1:11").text
    assert all(name in by_server for name in ("web1:11:1", "web1:11:2", "web1:11:3"))
    assert "gone:9:1" not in by_server and "web2:20:1" not in by_server
    assert "No workers." in otto.get("/workers?job_id=nosuchjob").text


def test_the_workers_json_api_has_the_same_rows(app, frozen_clock):
    plain, batch = busy_fleet(frozen_clock)
    viewer = client(app, ("vic", "look"))
    rows = viewer.get(f"/api/workers?job_id={batch.id}").json()["workers"]
    assert [(r["name"], r["server"], r["server_state"], r["zombie"], r["slices"]) for r in rows] == [
        ("web1:11:2", "web1:11", "running", False, [1, 2]),
        ("gone:9:1", "gone:9", "gone", True, [3]),
    ]
    idle = viewer.get("/api/workers?server=web1:11").json()["workers"][-1]
    assert idle["name"] == "web1:11:3" and idle["idle"] is True and idle["job_id"] is None
    assert rows[0]["job_class"] == "ServerPagesBatchJob" and rows[0]["description"] == "batch work"
