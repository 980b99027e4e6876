"""Review of fair release against the draw's specification (docs/draw.md): cases a review
found the services getting wrong, kept as tests of the fixed behaviour. Each test states
the rule it checks."""

from __future__ import annotations

import datetime as dt

import pytest

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.services import booking
from tests.integration.test_release import (
    CTX,
    DrawWorld,
    _close_and_draw,
    _draw_world,
    _enter_all,
    _waitlist,
)


@pytest.fixture
def dw(platform: Platform, clock: FixedClock) -> DrawWorld:
    return _draw_world(platform, clock)


def test_a_suspended_patient_is_not_offered_a_freed_slot(dw: DrawWorld) -> None:
    """A no-show suspends booking (docs/draw.md, credit); a waitlist offer is a held booking,
    so the waitlist must skip a suspended patient (``draw.next_in_line``: 'suspended')."""
    world = dw.world
    # Every entrant also books and pays an earlier ordinary session, then does not show up.
    for account, pid in dw.patients:
        view = dw.platform.run(booking.book, account, pid, world.session_ids[0], CTX)
        dw.platform.run(booking.pay, account, view.booking.id or 0, f"alipay:p{pid:06d}", CTX)
    ends = view.session.ends_at
    _enter_all(dw)
    _close_and_draw(dw)
    dw.clock.set(max(dw.clock.now(), ends + dt.timedelta(hours=1)))
    assert dw.platform.run_job(booking.record_no_shows) == len(dw.patients)
    waiting = [pid for pid, _, _ in _waitlist(dw)]
    with dw.platform.uow() as uow:
        held = [b for sid in dw.sessions for b in uow.bookings.of_session(sid)]
        starts = min(uow.schedule.session(sid).starts_at  # type: ignore[union-attr]
                     for sid in dw.sessions)
        holder_account = uow.accounts.get(held[0].account_id)
    assert dw.clock.now() < starts and holder_account is not None
    dw.platform.run(booking.cancel, holder_account, held[0].id or 0, CTX)
    with dw.platform.uow() as uow:
        offered = [pid for pid in waiting
                   if uow.bookings.active_for(pid, held[0].session_id) is not None]
    assert not offered, f"suspended patients {offered} were offered the freed slot"
