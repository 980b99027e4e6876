"""Telling people: a webhook (the hospital's chat or ticket system) and e-mail (SMTP), for
alerts that open or escalate at or above a severity.

Sending happens on a background thread, so a slow mail server never holds up detection; a
failed send is retried a few times with growing pauses, then logged and counted. Messages
carry what the alert carries (scenario, entity, figures, sample events): pseudonymous ids,
IPs and blind indexes, never an ID number, a name or a phone number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import queue
import smtplib
import ssl
import threading
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from fairslot.monitoring.alerts import AlertChange
from fairslot.monitoring.scenarios.base import severity_rank

__all__ = [
    "Notification",
    "Notifications",
    "Notifier",
    "SmtpNotifier",
    "WebhookNotifier",
    "notification_for",
]

_log = logging.getLogger("fairslot.monitoring.notify")


@dataclasses.dataclass(frozen=True, slots=True)
class Notification:
    subject: str
    text: str
    payload: dict[str, Any]


def notification_for(change: AlertChange, console_url: str = "") -> Notification:
    alert = change.alert
    what = "opened" if change.opened else "escalated"
    link = f"{console_url.rstrip('/')}/console/alerts/{alert.id}" if console_url else ""
    figures = ", ".join(f"{k}={v}" for k, v in alert.figures.items())
    lines = [
        f"Alert {alert.id} {what}: {alert.scenario} ({alert.severity})",
        "",
        alert.summary,
        "",
        f"Entity:     {alert.entity}",
        f"Related:    {', '.join(str(e) for e in alert.related) or '-'}",
        f"Figures:    {figures}",
        f"First seen: {alert.first_seen.isoformat(timespec='seconds')}",
        f"Last seen:  {alert.last_seen.isoformat(timespec='seconds')}",
    ]
    if link:
        lines += ["", f"Review it: {link}"]
    return Notification(
        subject=f"[fairslot] {alert.severity.upper()} {alert.scenario}: {alert.entity}",
        text="\n".join(lines) + "\n",
        payload={"event": f"alert.{what}", "alert": alert.as_dict(), "url": link or None})


class Notifier(Protocol):
    name: str

    def send(self, note: Notification) -> None:
        """Deliver, or raise."""
        ...


class WebhookNotifier:
    """POSTs the alert as JSON. With a secret, ``X-Fairslot-Signature: sha256=<hex>`` is the
    HMAC-SHA256 of the body, so the receiver can tell the message came from fairslot."""

    name = "webhook"

    def __init__(self, url: str, secret: bytes | None = None, *, timeout: float = 5.0,
                 client: httpx.Client | None = None) -> None:
        self.url = url
        self._secret = secret
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, note: Notification) -> None:
        body = json.dumps(note.payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-Fairslot-Signature"] = f"sha256={digest}"
        self._client.post(self.url, content=body, headers=headers).raise_for_status()

    def close(self) -> None:
        self._client.close()


class SmtpNotifier:
    """Plain-text mail through an SMTP server, with STARTTLS and log-in when configured."""

    name = "smtp"

    def __init__(self, host: str, port: int, *, sender: str, recipients: Sequence[str],
                 starttls: bool = True, username: str | None = None,
                 password: str | None = None, timeout: float = 10.0) -> None:
        if not recipients:
            raise ValueError("SMTP notifications need at least one recipient "
                             "(FAIRSLOT_MONITOR_SMTP_TO)")
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def send(self, note: Notification) -> None:
        message = EmailMessage()
        message["Subject"] = note.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(note.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


class Notifications:
    """Queues notifications for alerts that opened or escalated and sends them on a thread.
    ``notify`` never blocks: when the queue is full the notification is dropped and
    counted (the alert itself is in the database either way)."""

    def __init__(self, notifiers: Sequence[Notifier], *, min_severity: str = "high",
                 console_url: str = "", retries: int = 3, backoff: float = 1.0,
                 capacity: int = 10_000) -> None:
        self.notifiers = list(notifiers)
        self.min_severity = min_severity
        self.console_url = console_url
        self.retries = retries
        self.backoff = backoff
        self._queue: queue.Queue[Notification | None] = queue.Queue(maxsize=capacity)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def notify(self, changes: Sequence[AlertChange]) -> int:
        if not self.notifiers:
            return 0
        queued = 0
        floor = severity_rank(self.min_severity)
        for change in changes:
            if not (change.opened or change.escalated):
                continue
            if severity_rank(change.alert.severity) < floor:
                continue
            try:
                self._queue.put_nowait(notification_for(change, self.console_url))
                queued += 1
            except queue.Full:
                self.dropped += 1
        return queued

    def start(self) -> None:
        if self._thread is None and self.notifiers:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fairslot-monitor-notify",
                                            daemon=True)
            self._thread.start()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued notification was sent or given up on."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            note = self._queue.get()
            try:
                if note is None:
                    return
                for notifier in self.notifiers:
                    self._deliver(notifier, note)
            finally:
                self._queue.task_done()

    def _deliver(self, notifier: Notifier, note: Notification) -> None:
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            try:
                notifier.send(note)
                self.sent += 1
                return
            except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
                if attempt == self.retries or self._stop.is_set():
                    self.failed += 1
                    _log.warning("%s notification failed after %d attempt(s): %s",
                                 notifier.name, attempt, type(exc).__name__)
                    return
                self._stop.wait(delay)
                delay *= 2
