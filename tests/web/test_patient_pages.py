"""A patient's draw journey on the pages: the round page with the odds, withdrawing and
entering again, the result with the won booking's true status after a refund, the check-in
QR code, and the credit standing."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from fairslot.web.pages import checkin
from tests.conftest import World
from tests.web.test_pages import (
    HTML,
    SQLITE_ONLY,
    after_min_age,
    alert,
    fields,
    log_in,
    platform,
    submit,
)

__all__ = ["platform"]


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


def _open_round(world: World, clock: FixedClock, *, days: int = 20) -> tuple[int, int, int]:
    """A hot draw doctor with one session ``days`` ahead and its round open."""
    platform = world.platform
    doctor = platform.run(catalog.create_doctor, world.department_id, "周正", "主任医师",
                          "心律失常", release_policy=ReleasePolicy.DRAW, hot=True)
    today = clock.now().astimezone(platform.settings.zone).date()
    (session,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                              [today + dt.timedelta(days=days)], [Period.MORNING], 2, 30000,
                              release_days_before=days - 1)
    clock.set(session.release_at - dt.timedelta(hours=1))
    assert platform.run_job(release.open_due_rounds) == 1
    with platform.uow() as uow:
        round_id = uow.rounds.round_of_session(session.id or 0) or 0
    return doctor.id or 0, session.id or 0, round_id


def _close_and_draw(world: World, clock: FixedClock, round_id: int) -> None:
    """Close the round's window (the scheduler's job freezes the entry list), then let the
    clock reach the beacon round's time (the same job draws), as the scheduler would."""
    platform = world.platform
    clock.set(platform.run(release.round_view, round_id).round.closes_at)
    assert platform.run_job(release.draw_due_rounds) == 0  # frozen, no beacon yet
    frozen = platform.run(release.round_view, round_id).stage
    assert frozen.stage == "frozen" and frozen.beacon_due_at is not None
    clock.set(frozen.beacon_due_at)
    assert platform.run_job(release.draw_due_rounds) == 1


@SQLITE_ONLY
def test_the_round_page_shows_odds_withdraw_and_the_result(
        client: TestClient, world: World, clock: FixedClock) -> None:
    platform = world.platform
    # The session lies 20 days ahead, beyond the doctor page's 15 days: the enter button
    # shows anyway while its round is open.
    doctor_id, session_id, round_id = _open_round(world, clock, days=20)
    others = [world.patient_account(f"other{n}") for n in range(3)]
    for account, patients, _token in others:
        platform.run(release.enter, account, round_id, patients[0], [session_id],
                     RequestContext(ip="198.51.100.7"))
    world.patient_account("he.ping")
    log_in(client, "he.ping")
    doctor_page = client.get(f"/doctors/{doctor_id}").text
    assert f'href="/rounds/{round_id}/enter?session_id={session_id}"' in doctor_page

    page = client.get(f"/rounds/{round_id}").text
    # 2 slots, 3 first choices so far: about 67 in 100.
    assert "周正" in page and "约 67%" in page
    form = client.get(f"/rounds/{round_id}/enter?session_id={session_id}").text
    data = fields(form, f"/rounds/{round_id}/enter") | {"choice1": str(session_id)}
    after_min_age(world)
    r = client.post(f"/rounds/{round_id}/enter", data=data, follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    page = client.get(f"/rounds/{round_id}").text
    assert "等待抽签" in page and "/withdraw" in page
    # Withdraw from the round page; the entry stays listed as withdrawn.
    entry_action = re.search(r'action="(/entries/\d+/withdraw)"', page).group(1)
    r = submit(client, f"/rounds/{round_id}", entry_action)
    assert r.status_code == 303, alert(r.text)
    page = client.get(r.headers["location"]).text
    assert "已撤回" in page and "/withdraw" not in page
    # Enter again, then the draw runs.
    form = client.get(f"/rounds/{round_id}/enter").text
    data = fields(form, f"/rounds/{round_id}/enter") | {"choice1": str(session_id)}
    after_min_age(world)
    assert client.post(f"/rounds/{round_id}/enter", data=data,
                       follow_redirects=False).status_code == 303
    _close_and_draw(world, clock, round_id)
    page = client.get(f"/rounds/{round_id}").text
    assert "共 4 人登记" in page
    assert f'href="/api/v1/rounds/{round_id}/export"' in page and "fairslot draw verify" in page
    mine = client.get("/me").text
    assert re.search(r"中签|候补", mine[mine.index('id="entries"'):])
    # The result is in the account's messages, in its language, linked from its page.
    assert 'href="/me/inbox"' in mine
    inbox = client.get("/me/inbox").text
    assert re.search(r'lang="zh-CN">抽签结果：(中签|候补)</strong>', inbox), inbox


@SQLITE_ONLY
def test_a_won_booking_shows_its_true_status_after_a_refund_and_the_qr_code(
        client: TestClient, world: World, clock: FixedClock) -> None:
    platform = world.platform
    _doctor_id, session_id, round_id = _open_round(world, clock, days=5)
    account, (patient_id,), _token = world.patient_account("wu.lan")
    platform.run(release.enter, account, round_id, patient_id, [session_id],
                 RequestContext(ip="198.51.100.8"))
    _close_and_draw(world, clock, round_id)
    (entry,) = platform.run(release.my_entries, account)
    assert entry.entry.booking_id is not None  # alone in the round: won
    booking_id = entry.entry.booking_id
    platform.run(booking.pay, account, booking_id, "alipay:wu@example.com",
                 RequestContext(ip="198.51.100.8"))
    log_in(client, "wu.lan")
    me = client.get("/me").text
    code = checkin.code_for(platform.deps, booking_id)
    assert code in me and '<svg role="img"' in me and "签到二维码" in me
    assert checkin.booking_of(platform.deps, code) == booking_id
    assert checkin.booking_of(platform.deps, code.replace(f"FS1-{booking_id}-",
                                                          f"FS1-{booking_id + 1}-")) is None
    platform.run(booking.cancel, account, booking_id, RequestContext(ip="198.51.100.8"))
    me = client.get("/me").text
    entries = me[me.index('id="entries"'):me.index("</section>", me.index('id="entries"'))]
    assert "中签" in entries and "已退款" in entries
    assert code not in me  # no QR code for a refunded booking
    # A cancellation days before the visit is no offence.
    assert "信用良好</span>" in me and "暂停预约至" not in me
