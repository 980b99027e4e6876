"""The access log: one event per API or page request (time, client IP, account, device,
method, path, status, user agent), which monitoring, investigation and the records export
read. Requests only enqueue; a background thread writes batches, so logging costs the
request path almost nothing."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fairslot.clock import Clock
from fairslot.guard.events import GuardEvent
from fairslot.logsafe import describe
from fairslot.monitoring.request_log import access_row, guard_row
from fairslot.web.metrics import observe_guard, observe_request

__all__ = ["AccessLog", "AccessLogMiddleware", "GuardEventLog"]

log = logging.getLogger("fairslot.access")
_SKIP = ("/healthz", "/readyz", "/static/", "/favicon.ico")


class AccessLog:
    """``write`` stores one batch of event rows (``storage``'s ``EventLogWriter.write``)."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], None], clock: Clock, *,
                 batch: int = 500, interval: float = 0.5) -> None:
        self._write = write
        self._clock = clock
        # A deque, not a ``queue.Queue``: appending is atomic and wakes nobody (the writer
        # polls every ``interval``), where a Queue takes a lock and signals a condition
        # variable on every put: 4 % of a booking's server CPU in a py-spy profile.
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._capacity = 100_000
        self._batch = batch
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="fairslot-access-log",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def now(self) -> dt.datetime:
        return self._clock.now()

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def record(self, row: dict[str, Any]) -> None:
        if len(self._queue) >= self._capacity:
            # Under a flood the log must not become the bottleneck; the guard's own events
            # still say what happened.
            self.dropped += 1
            return
        self._queue.append(row)

    def flush(self) -> int:
        rows: list[dict[str, Any]] = []
        while len(rows) < self._batch:
            try:
                rows.append(self._queue.popleft())
            except IndexError:
                break
        if rows:
            try:
                self._write(rows)
            except Exception as exc:  # never take the server down; say what was lost
                log.error("could not write %d access events: %s", len(rows), describe(exc))
        return len(rows)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            while self.flush() == self._batch:
                pass


class GuardEventLog:
    """The guard's event sink: each decision (allows aggregated by the guard) becomes an
    event in the log, through the same batched writer as the access log."""

    def __init__(self, access_log: AccessLog) -> None:
        self._log = access_log

    def __call__(self, event: GuardEvent) -> None:
        observe_guard(event.decision, event.reason, event.count or 1)
        self._log.record(guard_row(event))


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, access_log: AccessLog) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_SKIP):
            await self.app(scope, receive, send)
            return
        status = 500
        started = self.access_log.now()
        began = self.access_log.monotonic()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            state = scope.get("state") or {}
            ua = ""
            for name, value in scope.get("headers") or ():
                if name == b"user-agent":
                    ua = value[:300].decode("latin-1")
            client = scope.get("client")
            observe_request(scope["path"], status, self.access_log.monotonic() - began)
            self.access_log.record(access_row(
                started, account_id=state.get("account_id"),
                ip=state.get("client_ip") or (client[0] if client else None),
                device_id=state.get("device_id"), method=scope["method"],
                path=scope["path"], status=status, user_agent=ua))
