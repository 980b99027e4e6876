"""The pages a person needs for their identity: the holder's page lists what another account
did under it, and cancels, withdraws and removes from there; a family member is added with
the consent code typed into the form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.services import accounts, booking, identities
from fairslot.services.context import RequestContext
from fairslot.web.app import create_app
from tests.conftest import World
from tests.identity.helpers import last_code
from tests.web.test_pages import HTML, after_min_age, alert, fields, log_in, submit
from tests.web.test_pages import platform as pages_platform  # noqa: F401 (fixture)

CTX = RequestContext(ip="198.51.100.9")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def platform(pages_platform: Platform) -> Platform:  # noqa: F811
    return pages_platform


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.platform), headers=HTML) as test_client:
        yield test_client


@SQLITE_ONLY
def test_the_holder_cancels_and_removes_a_squatter_from_the_identity_page(
        client: TestClient, world: World) -> None:
    run = world.platform.run
    person = world.residents.pop()
    squatter, _, _ = world.patient_account("gang07", patients=0)
    world.patient_account("owner", patients=0)
    squatted = run(accounts.add_patient, squatter, person.id_number, person.name, None, CTX)
    held = run(booking.book, squatter, squatted.id or 0, world.session_ids[0], CTX)
    asked = run(identities.claim_at_desk, world.staff[Role.REGISTRATION], person.id_number,
                person.name, "owner", CTX)
    run(identities.approve_desk_claim, world.staff[Role.OPERATOR], asked.claim.id, CTX)

    log_in(client, "owner")
    page = client.get("/me/identity")
    assert page.status_code == 200 and "其他账户所约" in page.text
    after_min_age(world)  # read the page, then press cancel
    action = f"/bookings/{held.booking.id}/cancel"
    r = client.post(action, data=fields(page.text, action), follow_redirects=False)
    assert r.status_code == 303, alert(r.text)
    assert run(booking.get_booking, squatter, held.booking.id or 0).booking.status.value \
        == "cancelled"
    r = submit(client, "/me/identity",
               f"/me/identity/{squatted.id}/links/{squatter.id}/remove")
    assert r.status_code == 303 and run(accounts.list_patients, squatter) == []


@SQLITE_ONLY
def test_a_relative_is_added_with_the_consent_code_typed_into_the_form(
        client: TestClient, world: World) -> None:
    _, (pid,), _ = world.patient_account("first.son", phone="+8613900000099")
    world.patient_account("second.son", patients=0)
    with world.platform.uow() as uow:
        person = uow.patients.get(pid)
    assert person is not None
    log_in(client, "second.son")
    r = submit(client, "/me", "/me/patients", name=person.name, id_number=person.id_number)
    # Pages speak Chinese by default: "a code was sent to that phone".
    assert r.status_code == 403 and "验证码已发送" in alert(r.text)
    assert fields(r.text, "/me/patients")["name"] == person.name  # what was typed stays
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    r = submit(client, "/me", "/me/patients", name=person.name, id_number=person.id_number,
               consent_code=last_code(world.platform, "+8613900000099", "link.consent"))
    assert r.status_code == 303, alert(r.text)
