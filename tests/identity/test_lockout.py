"""The limits on the real-name check and on consent codes cannot be turned against a person.

Before: failed real-name checks were counted per ID number from any account, so five wrong
names typed by anyone locked the person out of linking or claiming their own identity for
a day; and consent codes shared the phone's one budget (5 an hour), so strangers asking to
link a person used up the codes that person needed for their own phone, and one account
could send 20 consent texts a day to them."""

from __future__ import annotations

import pytest

from fairslot.clock import FixedClock
from fairslot.domain.errors import FairslotError
from fairslot.services import accounts, messaging
from fairslot.services.context import RequestContext
from tests.conftest import PASSWORD, World
from tests.identity.helpers import last_code

CTX = RequestContext(ip="198.51.100.33")


def _code(call: object, *args: object, **kwargs: object) -> str:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except FairslotError as exc:
        return exc.code
    return "ok"


def test_strangers_failing_on_a_number_do_not_lock_its_person_out(world: World) -> None:
    run = world.platform.run
    target = world.residents.pop()
    # A stranger fails on the number as often as they may, and then some.
    stranger, _, _ = world.patient_account("name.guesser", patients=0)
    tries = [_code(run, accounts.add_patient, stranger, target.id_number, wrong, None, CTX)
             for wrong in ("王小二", "王小三", "王小四", "王小五", "王小六", "王小七")]
    assert tries == ["identity_not_verified"] * 5 + ["identity_checks_limited"]
    # The person (or their relative) types the right name from their own account: linked.
    person, _, _ = world.patient_account("the.person", patients=0)
    linked = run(accounts.add_patient, person, target.id_number, target.name, None, CTX)
    assert linked.id is not None


def test_a_ring_guessing_one_number_from_many_accounts_gets_one_try_each_past_the_cap(
        world: World) -> None:
    run = world.platform.run
    cap = world.platform.settings.identity_failures_per_id_number_all
    per_account = world.platform.settings.identity_failures_per_id_number
    target = world.residents.pop()
    wrong = iter(f"王{chr(0x4E00 + n)}{chr(0x4E50 + n)}" for n in range(200))
    ring = [world.patient_account(f"ring{n:02d}", patients=0)[0]
            for n in range(cap // per_account + 1)]
    failed = 0
    for account in ring[:-1]:
        for _ in range(per_account):
            assert _code(run, accounts.add_patient, account, target.id_number, next(wrong),
                         None, CTX) == "identity_not_verified"
            failed += 1
    assert failed == cap
    # The last ring account fails once; past the cap it gets no second try, the right
    # name included (it could be a lucky guess).
    last = ring[-1]
    assert _code(run, accounts.add_patient, last, target.id_number, next(wrong), None,
                 CTX) == "identity_not_verified"
    assert _code(run, accounts.add_patient, last, target.id_number, target.name, None,
                 CTX) == "identity_checks_limited"
    # An account that never failed on it is still checked: the person gets through.
    person, _, _ = world.patient_account("real.person", patients=0)
    assert _code(run, accounts.add_patient, person, target.id_number, target.name, None,
                 CTX) == "ok"


def test_consent_codes_are_limited_per_asker_and_identity_and_per_phone(
        world: World) -> None:
    run = world.platform.run
    settings = world.platform.settings
    victim_phone = "+8613300000001"
    victim, (patient_id,), _ = world.patient_account("victim.family", phone=victim_phone)
    with world.platform.uow() as uow:
        patient = uow.patients.get(patient_id)
    assert patient is not None

    def ask(account: object) -> str:
        return _code(run, accounts.add_patient, account, patient.id_number, patient.name,
                     None, CTX)

    # One asker: a few codes about this person a day, not twenty.
    pest, _, _ = world.patient_account("pest.one", patients=0)
    per_identity = settings.consent_codes_per_identity
    assert [ask(pest) for _ in range(per_identity + 2)] == \
        ["consent_required"] * per_identity + ["codes_rate_limited"] * 2
    # More askers: the phone receives at most its day's consent codes from all of them.
    per_phone = settings.consent_codes_per_phone_per_day
    answers = []
    for n in range(per_phone):  # more than enough askers to reach the cap
        asker, _, _ = world.patient_account(f"pest.{n:02d}", patients=0)
        answers.append(ask(asker))
    assert answers.count("consent_required") == per_phone - per_identity
    assert set(answers[per_phone - per_identity:]) == {"codes_rate_limited"}
    with world.platform.uow() as uow:
        to_victim = [m for m in messaging.dev_outbox(uow, limit=500)
                     if m.recipient == victim_phone and m.kind == "link.consent"]
    assert len(to_victim) == per_phone
    # The phone's own codes are counted apart: a second account of the family on that
    # phone still gets its verification code.
    second = run(accounts.register, "victim.spouse", PASSWORD, victim_phone, CTX)
    assert second.phone == victim_phone
    assert last_code(world.platform, victim_phone, "phone.code")
    # A day later the askers' counts are spent.
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(86400 + 60)
    assert ask(pest) == "consent_required"
    assert victim.phone == victim_phone


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_relatives_consent_still_works_within_the_limits(world: World) -> None:
    run = world.platform.run
    son, (mother_id,), _ = world.patient_account("son.k", phone="+8613300000011")
    daughter, _, _ = world.patient_account("daughter.k", patients=0)
    with world.platform.uow() as uow:
        mother = uow.patients.get(mother_id)
    assert mother is not None and son.id is not None
    assert _code(run, accounts.add_patient, daughter, mother.id_number, mother.name, None,
                 CTX) == "consent_required"
    code = last_code(world.platform, "+8613300000011", "link.consent")
    assert run(accounts.add_patient, daughter, mother.id_number, mother.name, None, CTX,
               consent_code=code).id == mother_id
