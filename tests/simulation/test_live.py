"""Live mode end to end: a real ``fairslot serve`` on a free loopback port, prepared with
``prepare_target``, and the live agents over HTTP (without the floods, for time)."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from fairslot.bootstrap import bootstrap
from fairslot.config import Settings
from fairslot.simulation.live import prepare_target, run_live_agents
from fairslot.storage.migrate import upgrade

_SECRET = "live-test-0123456789abcdef-" + "x" * 24


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("live") / "live.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": _SECRET,
           "FAIRSLOT_DEV_OUTBOX_PAGE": "true"}  # the simulated phones read their codes there
    platform = bootstrap(Settings(database_url=url, secret_key=_SECRET))
    try:
        upgrade(platform.engine)
        prepare_target(platform, seed=7)
    finally:
        platform.engine.dispose()
    port = _free_port()
    fairslot = pathlib.Path(sys.executable).with_name("fairslot")
    proc = subprocess.Popen([str(fairslot), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/api/v1/hospitals", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("fairslot serve did not come up")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_live_agents_book_over_http_and_the_guard_answers_the_bot(server: str) -> None:
    report = run_live_agents(server, seed=7, floods=False)
    assert report.session_id is not None
    for agent in ("genuine-1", "genuine-2", "t1-bot", "t2-clicker", "t3-farm"):
        assert report.status(agent, "register") == [(201, "")]
    for agent in ("genuine-1", "genuine-2", "t1-bot", "t2-clicker"):
        assert report.status(agent, "add_patient") == [(201, "")]
    assert report.status("t1-bot", "book_without_token") == [(403, "token_missing")]
    assert report.status("t1-bot", "book_token_at_once") == [(403, "token_too_early")]
    # T2 clicks every 0.3 s: its first clicks come before the token's minimum age.
    clicks = report.status("t2-clicker", "click_book")
    assert clicks[0] == (403, "token_too_early")
    assert clicks[-1][0] in (201, 409)
    # T3's invented patients: one belongs to nobody, one has a wrong check digit.
    assert report.status("t3-farm", "add_invented") == [(422, "identity_not_verified")]
    assert report.status("t3-farm", "add_bad_checksum") == [(422, "invalid_id_number")]
    # Three slots, four takers: every booking step ran, and three of them got a slot.
    booked = [s for a in report.steps for s in report.status(a, "book")
              + report.status(a, "book_after_min_age") + report.status(a, "click_book")]
    assert sorted(code for code, _ in booked).count(201) == 3
    paid = [s for a in report.steps for s in report.status(a, "pay")]
    assert paid and all(code == 200 for code, _ in paid)
    assert report.sent < 120
