"""Every quota counts draw entries as well as bookings, and counts history, not just the
links and phones of now. Before: two accounts on one phone entered 10 patients in one round
(limit 5), and unlinking a patient and linking another reset the per-account cap."""

from __future__ import annotations

import pytest

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.errors import FairslotError
from fairslot.services import accounts, release
from fairslot.services.context import RequestContext
from tests.identity.helpers import last_code
from tests.integration.test_release import _draw_world

CTX = RequestContext(ip="198.51.100.8")
PHONE = "+8613800000777"


def _refused(call: object, *args: object) -> str:
    with pytest.raises(FairslotError) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.code


def test_two_accounts_on_one_phone_cannot_enter_more_than_five_patients(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=0)
    run = platform.run
    first, firsts, _ = dw.world.patient_account("phone.a", patients=5, phone=PHONE)
    second, seconds, _ = dw.world.patient_account("phone.b", patients=5, phone=PHONE)
    for pid in firsts:
        run(release.enter, first, dw.round_id, pid, dw.sessions, CTX)
    # No booking anywhere: the five entries alone fill the phone's quota.
    assert _refused(run, release.enter, second, dw.round_id, seconds[0], dw.sessions,
                    CTX) == "quota_phone_patients"
    # Withdrawing does not give the room back (history counts, not what is live now).
    mine = run(release.my_entries, first)
    run(release.withdraw, first, mine[0].id, CTX)
    assert _refused(run, release.enter, second, dw.round_id, seconds[0], dw.sessions,
                    CTX) == "quota_phone_patients"


def test_moving_an_account_to_another_phone_does_not_reset_the_phone_quota(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=0)
    run = platform.run
    mover, pids, _ = dw.world.patient_account("mover.a", patients=5)
    # The mover verifies the shared phone, enters five patients, then moves to a new number.
    run(accounts.change_phone, mover, PHONE)
    mover = run(accounts.verify_phone, mover, last_code(platform, PHONE), CTX)
    for pid in pids:
        run(release.enter, mover, dw.round_id, pid, dw.sessions, CTX)
    run(accounts.change_phone, mover, "+8613800000888")
    run(accounts.verify_phone, mover, last_code(platform, "+8613800000888"), CTX)
    stay, (other,), _ = dw.world.patient_account("stayer", patients=1, phone=PHONE)
    assert _refused(run, release.enter, stay, dw.round_id, other, dw.sessions,
                    CTX) == "quota_phone_patients"


def test_unlinking_then_linking_does_not_reset_the_accounts_entries(
        platform: Platform, clock: FixedClock) -> None:
    dw = _draw_world(platform, clock, people=0)
    run = platform.run
    churn, pids, _ = dw.world.patient_account("churner", patients=5)
    for pid in pids:
        run(release.enter, churn, dw.round_id, pid, dw.sessions, CTX)
    run(accounts.remove_patient, churn, pids[0], CTX)
    newcomer = dw.world.residents.pop()
    assert _refused(run, accounts.add_patient, churn, newcomer.id_number, newcomer.name,
                    None, CTX) == "quota_patients_per_account"
    # Thirty days on, the old links and entries have aged out.
    clock.advance(31 * 86400)
    assert run(accounts.add_patient, churn, newcomer.id_number, newcomer.name, None,
               CTX).id is not None
