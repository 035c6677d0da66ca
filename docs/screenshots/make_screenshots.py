"""Screenshots of Mission Control for the docs, from a demo database in a temporary folder.

    python docs/screenshots/make_screenshots.py [--out docs/screenshots] [--chromium PATH]

Builds a SQLite database with jobs in every state (a running batch job part-way through
its slices, a failed batch job with failed records, a cron job, ...), servers (one of
them a zombie) and a dirmon entry, serves Mission Control on it with uvicorn on a free
127.0.0.1 port, and saves full-page PNGs, 1280 px wide, of its pages with Debian's
headless Chromium (``apt-get install chromium``; Playwright never downloads a browser
here). A page that does not answer 200 yet is skipped with a message.

Needs the ``test`` extra (starlette, jinja2, uvicorn, python-multipart, itsdangerous,
playwright).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rjbatch
from rjbatch import Job, clock, field
from rjbatch.batch import BatchJob
from rjbatch.batch.job import WorkContext
from rjbatch.config import get_store
from rjbatch.plugins.cron import Cron
from rjbatch.testing import work_all

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ADMIN = ("ada", "demo-password")
WIDTH = 1280
_demo_clock: clock.FrozenClock | None = None  # rjbatch's clock while the jobs are made


def takes(seconds: float) -> None:
    """Work "takes" time on the demo's frozen clock, so durations look real."""
    if _demo_clock is not None:
        _demo_clock.advance(seconds=seconds)


# -- the demo's job classes ----------------------------------------------------------------
class InvoiceImportJob(BatchJob):
    """Reads invoice lines; a line marked INVALID fails its slice."""

    destroy_on_complete = False
    collect_output = True
    slice_size = 25
    slices_per_claim = 1
    pausable = True

    def perform(self, line: str) -> str:
        if "INVALID" in line:
            raise ValueError(f"invoice line has no customer number: {line!r}")
        takes(0.4)
        return line.upper()


class MonthlyReportJob(Job):
    destroy_on_complete = False
    pausable = True
    report = field(str, default="sales", user_editable=True)
    region = field(str, default="EMEA", user_editable=True)
    login = field(str)

    def perform(self) -> None:
        takes(60 + 10 * len(self.description or ""))


class EmailDigestJob(Job):
    destroy_on_complete = False

    def perform(self) -> None:
        takes(30)
        raise ConnectionError("SMTP server smtp.example.com:587 refused the connection")


class NightlyCleanupJob(Cron, Job):
    destroy_on_complete = False
    cron_schedule = field(str, default="0 2 * * * UTC", user_editable=True, copy_on_restart=True)

    def perform(self) -> None:
        return None


@dataclass
class Demo:
    """The ids of the jobs worth a screenshot of their own."""

    running_batch: str
    failed_batch: str
    completed_batch: str
    queued: str


def invoice_lines(count: int, invalid: tuple[int, ...] = ()) -> list[str]:
    return [f"INV-{2026_0000 + n},ACME-{n % 97:03d},{(n * 37) % 1000}.{n % 100:02d},EUR"
            + (",INVALID" if n in invalid else "") for n in range(1, count + 1)]


def build_demo(started: datetime) -> Demo:
    """Fill the configured store: jobs on the demo clock from ``started``, then servers and
    dirmon entries on the real clock (heartbeat ages are read against it)."""
    global _demo_clock
    with clock.frozen(started) as at:
        _demo_clock = at
        try:
            demo = add_jobs(at)
        finally:
            _demo_clock = None
        if at.current > datetime.now(UTC):
            raise RuntimeError(f"the demo's jobs end in the future ({at.current}): start earlier")
    add_servers()
    add_dirmon_entries()
    return demo


def add_jobs(at: clock.FrozenClock) -> Demo:
    for n, (report, region) in enumerate((("sales", "EMEA"), ("inventory", "APAC"),
                                          ("payroll", "AMER"), ("sales", "APAC"))):
        MonthlyReportJob.create(description=f"{report.capitalize()} report {region} 2026-0{n + 1}",
                                report=report, region=region, priority=40 + n)
        at.advance(minutes=7)
    completed_batch = InvoiceImportJob(description="Invoices from supplier ACME, January")
    completed_batch.upload(invoice_lines(120))
    completed_batch.save()
    work_all("batch-01:4242:1")
    at.advance(minutes=12)

    failed_batch = InvoiceImportJob(description="Invoices from supplier Globex, February", priority=20)
    failed_batch.upload(invoice_lines(200, invalid=(31, 140)))
    failed_batch.save()
    EmailDigestJob.create(description="Daily digest for the finance team")
    EmailDigestJob.create(description="Weekly digest for the sales team")
    work_all("batch-01:4242:2")
    at.advance(minutes=20)

    # running: nine slices done by one worker (one of them failed), two held by another
    running_batch = InvoiceImportJob(description="Invoices from supplier Initech, March", priority=10)
    running_batch.upload(invoice_lines(400, invalid=(60,)))
    running_batch.save()
    running_batch.start("batch-01:4242:1")
    claims = iter(range(9))
    running_batch._work("batch-01:4242:1", WorkContext(
        should_stop=lambda: next(claims, None) is None, wait_for_upload=False))
    get_store().claim_slices(running_batch.id, "main", "batch-02:5151:1", clock.now(), 2)
    at.advance(minutes=3)
    MonthlyReportJob.create(description="Quarterly report for the board", report="board",
                            region="ALL", login="ada").start("batch-02:5151:3")

    at.advance(minutes=9)
    queued = MonthlyReportJob.create(description="Sales report EMEA 2026-05", priority=30, login="uma")
    at.advance(minutes=4)
    MonthlyReportJob.create(description="Inventory report AMER 2026-05", priority=50)
    at.advance(minutes=6)
    MonthlyReportJob.create(description="Payroll report APAC 2026-05", priority=60,
                            run_at=at.current + timedelta(hours=6))
    NightlyCleanupJob.create(description="Nightly clean-up of temporary files")
    for description in ("Sales report AMER 2026-04", "Inventory report EMEA 2026-04"):
        at.advance(minutes=5)
        MonthlyReportJob.create(description=description).pause()
    at.advance(minutes=8)
    MonthlyReportJob.create(description="Payroll report EMEA 2026-04 (superseded)").abort()
    return Demo(running_batch=running_batch.id, failed_batch=failed_batch.id,
                completed_batch=completed_batch.id, queued=queued.id)


def add_servers() -> None:
    """Four servers; the last stopped heart-beating 14 minutes ago: a zombie."""
    now = clock.now()
    for name, beat, state, workers in (
        ("batch-01:4242", now - timedelta(seconds=4), "running", [1, 2, 3, 4]),
        ("batch-02:5151", now - timedelta(seconds=11), "running", [1, 2, 3]),
        ("batch-03:6060", now - timedelta(seconds=8), "paused", [1, 2]),
        ("batch-04:7373", now - timedelta(minutes=14), "running", [1, 2]),
    ):
        host, pid = name.split(":")
        get_store().save_server({
            "name": name, "state": state, "max_workers": 4, "started_at": now - timedelta(hours=5),
            "heartbeat_at": beat, "heartbeat_seconds": 15, "zombie_heartbeats": 4,
            "hostname": host, "pid": int(pid),
            "workers": [{"name": f"{name}:{w}", "pid": int(pid) + w} for w in workers]})


def add_dirmon_entries() -> None:
    from rjbatch.jobs.dirmon import DirmonEntry

    DirmonEntry.create(name="Supplier invoices", pattern="/data/inbound/invoices/*.csv",
                       job_class_name="InvoiceImportJob", state="enabled",
                       properties={"description": "Invoices dropped by suppliers", "priority": 25})
    DirmonEntry.create(name="Monthly reports", pattern="/data/inbound/reports/**/*.txt",
                       job_class_name="MonthlyReportJob", state="disabled",
                       properties={"region": "EMEA"})


# -- serving and shooting ------------------------------------------------------------------
class ServerThread:
    """Mission Control served by uvicorn on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", access_log=False,
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("Mission Control did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def pages(demo: Demo) -> list[tuple[str, str]]:
    """(file name without .png, path) of every screenshot."""
    return [
        ("jobs-running", "/jobs?state=running"),
        ("jobs-all", "/jobs"),
        ("jobs-failed", "/jobs?state=failed"),
        ("job-batch", f"/jobs/{demo.running_batch}"),
        ("failed-records", f"/jobs/{demo.failed_batch}/failed"),
        ("servers", "/servers"),
        ("workers", "/workers"),
        ("dirmon", "/dirmon"),
        ("job-edit", f"/jobs/{demo.queued}/edit"),
        ("job-output", f"/jobs/{demo.completed_batch}/output"),
    ]


def shoot(base_url: str, shots: list[tuple[str, str]], out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                base_url=base_url, viewport={"width": WIDTH, "height": 800},
                http_credentials={"username": ADMIN[0], "password": ADMIN[1]})
            page = context.new_page()
            for name, path in shots:
                status = context.request.get(path).status
                if status != 200:
                    print(f"skipped {name}: GET {path} answered {status}")
                    continue
                page.goto(path)
                target = out / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
                print(f"wrote {target}")
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (default: %(default)s)")
    parser.add_argument("--chromium", default=os.environ.get("RJBATCH_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args(argv)
    if not os.path.exists(args.chromium):
        print(f"no Chromium at {args.chromium}: apt-get install chromium, or pass --chromium", file=sys.stderr)
        return 1
    from rjbatch.web import create_app, hash_password

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rjbatch-screenshots-") as folder:
        rjbatch.configure(database=f"sqlite:///{folder}/demo.db")
        logging.disable(logging.ERROR)  # the demo's failures are on purpose
        try:
            demo = build_demo(datetime.now(UTC) - timedelta(hours=3))
        finally:
            logging.disable(logging.NOTSET)
        app = create_app(users={ADMIN[0]: (hash_password(ADMIN[1]), "admin")})
        with ServerThread(app) as base_url:
            written = shoot(base_url, pages(demo), args.out, args.chromium)
    print(f"{len(written)} screenshots in {args.out}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
