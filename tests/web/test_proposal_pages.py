"""The operator's page of hot-doctor draw proposals: a doctor whose fcfs session sold out
within minutes is listed, an operator accepts (the doctor moves to the draw) or declines,
once; other roles and a post without the page's CSRF token are refused."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import World
from tests.web.test_pages import HTML, SQLITE_ONLY, alert, fields, platform

__all__ = ["platform"]

CTX = RequestContext(ip="203.0.113.31")


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


def _sell_out(world: World, clock: FixedClock) -> int:
    """A one-slot fcfs session of the world's doctor, taken 45 ms after its release; the
    scheduler's job then proposes the doctor for the draw. Returns the proposal's id."""
    platform = world.platform
    today = clock.now().astimezone(platform.settings.zone).date()
    (session,) = platform.run(catalog.schedule_sessions, world.doctor_id,
                              [today + dt.timedelta(days=3)], [Period.MORNING], 1, 5000,
                              release_days_before=3)
    account, (pid,), _ = world.patient_account("fast.bot")
    clock.set(session.release_at + dt.timedelta(milliseconds=45))
    platform.run(booking.book, account, pid, session.id or 0, CTX)
    assert platform.run_job(release.propose_draw_policy) == 1
    with platform.uow() as uow:
        (event,) = uow.events.recent(5, "doctor.draw_proposed")
    return int(event.id)


@SQLITE_ONLY
def test_an_operator_accepts_a_draw_proposal_and_the_doctor_moves_to_the_draw(
        client: TestClient, world: World, clock: FixedClock) -> None:
    proposal = _sell_out(world, clock)
    client.cookies.set("fs_session", world.token(Role.OPERATOR))
    home = client.get("/operator").text
    assert 'href="/operator/proposals"' in home and "抽签提议" in home
    page = client.get("/operator/proposals").text
    assert f'id="proposal-{proposal}"' in page and "李明" in page
    action = f"/operator/proposals/{proposal}"
    data = fields(page, action) | {"decision": "accepted"}
    # Without the page's CSRF token nothing changes.
    refused = client.post(action, data=data | {"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert world.platform.run(catalog.doctor, world.doctor_id).release_policy \
        is ReleasePolicy.FCFS
    r = client.post(action, data=data, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    shown = client.get(r.headers["location"]).text
    assert "已接受提议" in shown and "已接受：放号改为抽签" in shown
    assert world.platform.run(catalog.doctor, world.doctor_id).release_policy \
        is ReleasePolicy.DRAW
    # Decided once: a second decision is refused and changes nothing.
    again = client.post(action, data=data | {"decision": "declined"},
                        follow_redirects=False)
    assert again.status_code == 409
    assert world.platform.run(catalog.doctor, world.doctor_id).release_policy \
        is ReleasePolicy.DRAW


@SQLITE_ONLY
def test_a_declined_proposal_keeps_the_policy_and_only_operators_decide(
        client: TestClient, world: World, clock: FixedClock) -> None:
    proposal = _sell_out(world, clock)
    action = f"/operator/proposals/{proposal}"
    client.cookies.set("fs_session", world.token(Role.REGISTRATION))
    assert client.get("/operator/proposals").status_code == 403
    # The desk's own valid CSRF token (from its own page) does not make it an operator.
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/desk").text)
    assert csrf is not None
    desk = client.post(action, data={"csrf": csrf.group(1), "decision": "accepted"},
                       follow_redirects=False)
    assert desk.status_code == 403 and "表单已失效" not in desk.text  # the role, not the form
    assert world.platform.run(catalog.doctor, world.doctor_id).release_policy \
        is ReleasePolicy.FCFS
    client.cookies.set("fs_session", world.token(Role.OPERATOR))
    page = client.get("/operator/proposals").text
    r = client.post(action, data=fields(page, action) | {"decision": "declined"},
                    follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    assert "已拒绝提议" in client.get(r.headers["location"]).text
    assert world.platform.run(catalog.doctor, world.doctor_id).release_policy \
        is ReleasePolicy.FCFS
    bogus = client.post(action, data=fields(page, action) | {"decision": "maybe"},
                        follow_redirects=False)
    assert bogus.status_code == 422
