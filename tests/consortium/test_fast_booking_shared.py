"""The shared list on PostgreSQL's fast booking path, run as ``POST /bookings`` runs it
(autocommit until the first locked message): a held or refused booking commits its match
(and review) and nothing else, and leaves no transaction or lock behind; a lowered quota
holds under parallel requests, with the match written with the one booking let through."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from fairslot.bootstrap import Platform
from fairslot.consortium import Action, SubjectType
from fairslot.services.shared_list import ConsortiumHeld, ConsortiumRefused
from tests.conftest import World, build_world
from tests.consortium.conftest import Pair
from tests.consortium.test_enforcement import listed
from tests.integration.test_fast_booking_races import _assert_clean, _book, _count
from tests.integration.test_quotas_parallel import _race

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
"""The fast path exists on PostgreSQL only."""


@pytest.fixture
def hb(pair: Pair, platform: Platform) -> World:
    return build_world(dataclasses.replace(platform, consortium=pair.b))


def _matched(platform: Platform) -> int:
    with platform.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM events WHERE kind = 'consortium.matched'")).scalar_one())


def _listed_patient(pair: Pair, hb: World, name: str) -> tuple[object, int]:
    account, (pid,), _ = hb.patient_account(name)
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    listed(pair, SubjectType.IDENTITY, patient.id_number)
    return account, pid


@pytest.mark.parametrize(("action", "error"), [(Action.HOLD, ConsortiumHeld),
                                               (Action.REFUSE, ConsortiumRefused)])
def test_a_held_or_refused_fast_booking_commits_its_match_only(
        pair: Pair, hb: World, action: Action, error: type) -> None:
    pair.b.set_policy("ring_member", action, actor="test")
    account, pid = _listed_patient(pair, hb, "shared-fast")
    with pytest.raises(error):
        _book(hb.platform, account, pid, hb.session_ids[0])
    assert _matched(hb.platform) == 1 and _count(hb.platform, "bookings") == 0
    _assert_clean(hb.platform)


def test_a_lowered_quota_holds_under_parallel_fast_bookings(pair: Pair, hb: World) -> None:
    pair.b.set_policy("ring_member", Action.LOWER_QUOTA, actor="test")
    account, pid = _listed_patient(pair, hb, "shared-lowered")
    outcomes = _race([(lambda s=s: _book(hb.platform, account, pid, s))
                      for s in hb.session_ids * 3])
    assert outcomes["ok"] == 1, outcomes
    assert set(outcomes) <= {"ok", "already_booked", "quota_active_bookings"}
    assert _count(hb.platform, "bookings") == 1
    _assert_clean(hb.platform)
