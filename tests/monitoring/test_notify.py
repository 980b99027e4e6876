"""Notifications reach a real SMTP server (aiosmtpd) and a real HTTP receiver on this
machine, only for alerts that open or escalate at or above the configured severity, with a
signature the receiver can check, and with retries when the receiver fails."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import hashlib
import hmac
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from fairslot.monitoring.alerts import Alert, AlertChange
from fairslot.monitoring.notify import Notifications, SmtpNotifier, WebhookNotifier
from fairslot.monitoring.scenarios import Entity

AT = dt.datetime(2026, 3, 2, 7, 31, tzinfo=dt.UTC)


def alert(severity: str = "high", **changes: Any) -> Alert:
    base = Alert(
        7, "payer_fanout", severity, Entity("payer", "k3xblind"),
        "payer k3xblind acted for 31 distinct patients in 365 days (threshold 10)",
        {"patients": 31, "threshold": 10}, [Entity("account", "42")], ["p1", "p2"],
        [{"id": "e1", "kind": "booking.paid", "at": AT.isoformat(), "payer": "k3xblind"}],
        AT, AT, "open", AT, AT)
    return dataclasses.replace(base, **changes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        self.received.set()
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, failures: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.failures = failures
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        self.attempts = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.attempts += 1
        if self.server.failures > 0:
            self.server.failures -= 1
            self.send_response(500)
        else:
            self.server.bodies.append((dict(self.headers.items()), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, "param", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_opened_alert_is_mailed_through_the_smtp_server(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    notifier = SmtpNotifier("127.0.0.1", port, sender="monitor@hospital.example",
                            recipients=["duty@hospital.example", "security@hospital.example"],
                            starttls=False)
    notes = Notifications([notifier], min_severity="high",
                          console_url="https://fairslot.hospital.example")
    notes.start()
    assert notes.notify([AlertChange(alert(), opened=True)]) == 1
    assert notes.drain(10)
    notes.stop()
    (message,) = inbox.messages
    assert message["Subject"] == "[fairslot] HIGH payer_fanout: payer:k3xblind"
    assert message["To"] == "duty@hospital.example, security@hospital.example"
    body = message.get_payload()
    assert "31 distinct patients" in body
    assert "https://fairslot.hospital.example/console/alerts/7" in body
    assert notes.sent == 1 and notes.failed == 0


def test_only_opened_or_escalated_alerts_at_the_severity_are_sent(receiver: Receiver) -> None:
    notes = Notifications([WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/hook")],
                          min_severity="high")
    notes.start()
    queued = notes.notify([
        AlertChange(alert("medium"), opened=True),       # below the severity
        AlertChange(alert("high")),                       # only new evidence
        AlertChange(alert("critical", id=8), escalated=True),
    ])
    assert queued == 1
    assert notes.drain(10)
    notes.stop()
    (headers, body) = receiver.bodies[0]
    payload = json.loads(body)
    assert payload["event"] == "alert.escalated"
    assert payload["alert"]["id"] == 8 and payload["alert"]["entity"] == "payer:k3xblind"
    assert "X-Fairslot-Signature" not in headers


def test_a_signed_webhook_can_be_checked_by_its_receiver(receiver: Receiver) -> None:
    secret = b"shared-with-the-ticket-system"
    notes = Notifications([WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/",
                                           secret)])
    notes.start()
    notes.notify([AlertChange(alert(), opened=True)])
    assert notes.drain(10)
    notes.stop()
    (headers, body) = receiver.bodies[0]
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert headers["X-Fairslot-Signature"] == f"sha256={expected}"


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_failing_receiver_is_retried_until_it_answers(receiver: Receiver) -> None:
    notes = Notifications([WebhookNotifier(f"http://127.0.0.1:{receiver.server_port}/")],
                          retries=3, backoff=0.05)
    notes.start()
    notes.notify([AlertChange(alert(), opened=True)])
    assert notes.drain(10)
    notes.stop()
    assert receiver.attempts == 3
    assert len(receiver.bodies) == 1
    assert (notes.sent, notes.failed) == (1, 0)


def test_a_receiver_that_never_answers_is_given_up_on_and_counted() -> None:
    notes = Notifications([WebhookNotifier(f"http://127.0.0.1:{free_port()}/", timeout=1)],
                          retries=2, backoff=0.05)
    notes.start()
    notes.notify([AlertChange(alert(), opened=True)])
    assert notes.drain(10)
    notes.stop()
    assert (notes.sent, notes.failed) == (0, 1)
