"""Prometheus metrics for the hospital's own monitoring (``GET /metrics``).

With several uvicorn workers, ``fairslot serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a
fresh directory before the workers start; each worker writes its counters there and
``/metrics`` (served by any worker) adds them up (prometheus-client's multi-process mode).
Without it (one process), the process's own registry is served.

Labels are low-cardinality on purpose: no path, account or address is ever a label.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["MULTIPROC_ENV", "count_events", "metrics_response", "observe_alerts",
           "observe_guard", "observe_request"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("fairslot_requests_total", "HTTP requests served",
                   ["surface", "status"])
REQUEST_SECONDS = Histogram("fairslot_request_seconds", "Time to serve a request",
                            ["surface"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
GUARD = Counter("fairslot_guard_decisions_total", "The guard's decisions (allows are "
                "aggregated: one event stands for several)", ["decision", "reason"])
EVENTS = Counter("fairslot_events_total", "Platform events committed, by kind", ["kind"])
ALERTS = Counter("fairslot_monitor_alerts_total", "Monitoring alerts opened or escalated",
                 ["scenario", "severity", "change"])
DECISIONS = Counter("fairslot_monitor_decisions_total", "Monitoring decisions made",
                    ["action", "by"])


def _surface(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path == "/metrics":
        return "metrics"
    return "page"


# ``labels(...)`` looks its child up under a lock on every call (2 % of a booking's server
# CPU in a py-spy profile); the few children a request can touch are kept here instead.
_request_children: dict[tuple[str, int], tuple[Any, Any]] = {}


def observe_request(path: str, status: int, seconds: float) -> None:
    surface = _surface(path)
    key = (surface, status // 100)
    children = _request_children.get(key)
    if children is None:
        children = (REQUESTS.labels(surface, f"{status // 100}xx"),
                    REQUEST_SECONDS.labels(surface))
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def observe_guard(decision: str, reason: str, count: int = 1) -> None:
    GUARD.labels(decision, reason or "none").inc(max(1, count))


def count_events(rows: Sequence[Any]) -> None:
    """A commit hook: count each committed event by kind."""
    for row in rows:
        EVENTS.labels(row.kind).inc()


def observe_alerts(changes: Sequence[Any], decisions: Sequence[Any]) -> None:
    for change in changes:
        if change.opened or change.escalated:
            ALERTS.labels(change.alert.scenario, change.alert.severity,
                          "opened" if change.opened else "escalated").inc()
    for decision in decisions:
        DECISIONS.labels(decision.action,
                         "monitor" if decision.created_by == "monitor" else "hand").inc()


def metrics_response(request: Request) -> Response:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, media_type=CONTENT_TYPE_LATEST)
