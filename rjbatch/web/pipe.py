"""A download streamed from a writer thread: ``job.download`` writes, the response reads.

A pipe, not a temporary file: the first bytes leave at once, nothing is written to the
server's disk, and memory holds at most a few chunks however large the output.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

log = logging.getLogger("rjbatch.web.output")


class DownloadCancelled(Exception):
    """The client went away: the writing thread stops at its next write."""


END = object()


class Pipe(io.RawIOBase):
    """The file object ``job.download`` writes into, in its own thread; the response reads it.

    Writes are gathered into chunks of CHUNK bytes and handed over through a queue of at
    most DEPTH chunks, so a slow client slows the writer instead of filling memory.
    ``tell`` counts the bytes written, which lets zip and xlsx stream without seeking.
    """

    CHUNK = 1 << 18
    DEPTH = 8

    def __init__(self) -> None:
        super().__init__()
        self._queue: queue.Queue[Any] = queue.Queue(self.DEPTH)
        self._buffer = bytearray()
        self._written = 0
        self._cancelled = threading.Event()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self._cancelled.is_set():
            raise DownloadCancelled("the client went away")
        size = len(data)
        self._buffer += data
        self._written += size
        if len(self._buffer) >= self.CHUNK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return size

    def tell(self) -> int:
        return self._written

    def _put(self, item: Any) -> None:
        while True:
            if self._cancelled.is_set():
                raise DownloadCancelled("the client went away")
            try:
                self._queue.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def run(self, write: Any) -> None:
        """In the writing thread: ``write(self)``, then the end (or the error) for the reader."""
        try:
            write(self)
            if self._buffer:
                self._put(bytes(self._buffer))
                self._buffer.clear()
            self._put(END)
        except DownloadCancelled:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which reports it
            try:
                self._put(exc)
            except DownloadCancelled:
                return

    def take(self, wait: float | None = None) -> Any:
        """The next chunk, ``END``, or None when ``wait`` passed; the writer's error is raised."""
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        self._cancelled.set()


async def _drain(pipe: Pipe, first: Any, job_id: str, file_name: str) -> Any:
    try:
        item = first
        while item is not END:
            if item:
                yield item
            item = await run_in_threadpool(pipe.take, 0.5)
    except Exception:
        log.exception("download of %s for job %s failed after it started: the client got part of it",
                      file_name, job_id)
        raise
    finally:
        pipe.cancel()


class PipeResponse(StreamingResponse):
    """Streams a ``Pipe``; however the response ends (done, failed, client gone), the writer stops."""

    def __init__(self, pipe: Pipe, first: Any, job_id: str, file_name: str, *, media_type: str,
                 headers: dict[str, str]) -> None:
        super().__init__(_drain(pipe, first, job_id, file_name), media_type=media_type, headers=headers)
        self.pipe = pipe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.pipe.cancel()
