"""Prometheus metrics at /metrics (summed over worker processes in multi-process mode) and
structured JSON logs."""

from __future__ import annotations

import importlib
import json
import logging
import os
import pathlib
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from fairslot.logs import JsonFormatter, uvicorn_log_config
from fairslot.web.app import create_app
from fairslot.web.metrics import MULTIPROC_ENV, metrics_response
from tests.conftest import World

SRC = pathlib.Path(__file__).resolve().parents[2] / "src"


def _value(text: str, prefix: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_count_requests_guard_decisions_and_committed_events(world: World) -> None:
    client = TestClient(create_app(world.platform))
    before = client.get("/metrics").text
    world.patient_account("counted")  # commits a registration and links
    assert client.get("/").status_code == 200
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text
    page = 'fairslot_requests_total{status="2xx",surface="page"}'
    assert _value(after, page) == _value(before, page) + 1  # "/" (/metrics is not a page)
    linked = 'fairslot_events_total{kind="patient.linked"}'
    assert _value(after, linked) == _value(before, linked) + 1
    assert "fairslot_request_seconds_bucket" in after
    assert "fairslot_guard_decisions_total" in after


_WORKER = """
import sys
sys.path.insert(0, {src!r})
from fairslot.web.metrics import observe_request
for _ in range({n}):
    observe_request("/api/v1/sessions", 200, 0.01)
"""


def test_several_workers_counters_are_added_up(tmp_path: pathlib.Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    for n in (3, 4):  # two worker processes, each with its own counters
        subprocess.run([sys.executable, "-c", _WORKER.format(src=str(SRC), n=n)], env=env,
                       check=True, timeout=60)
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    request = Request({"type": "http", "method": "GET", "path": "/metrics", "headers": []})
    text = bytes(metrics_response(request).body).decode()
    assert _value(text, 'fairslot_requests_total{status="2xx",surface="api"}') == 7


def test_json_logs_are_one_object_per_line_with_the_error_type() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("fairslot.monitoring", logging.WARNING, __file__, 1,
                                   "batch failed (%s)", ("ValueError",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "warning" and data["logger"] == "fairslot.monitoring"
    assert data["message"] == "batch failed (ValueError)" and data["exc_type"] == "ValueError"
    assert data["ts"].endswith("+00:00")
    # What every uvicorn worker applies: fairslot's and uvicorn's loggers in that format.
    config = uvicorn_log_config("INFO", "json")
    factory = config["formatters"]["main"]["()"]
    module, _, name = factory.rpartition(".")
    assert getattr(importlib.import_module(module), name) is JsonFormatter
    assert config["loggers"]["fairslot"]["handlers"] == ["main"]
