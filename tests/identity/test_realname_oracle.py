"""The real-name check is not an oracle. Before, ``POST /api/v1/me/patients`` had no guard
and logged nothing on failure: 400 name guesses for a known ID number took 4.0 s and found
the name. Now failures are counted per account and per (account, ID number) like failed
log-ins, and each is a monitoring event."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.clock import FixedClock
from fairslot.domain.residents import make_name
from fairslot.monitoring.scenarios.identity import BadIdentities
from fairslot.services import accounts
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.conftest import World


def _guesses(n: int) -> list[str]:
    import random

    rng = random.Random(5)
    return [make_name(rng) for _ in range(n)]


def test_guessing_a_known_id_numbers_name_stops_after_five_failures(world: World) -> None:
    client = TestClient(create_app(world.platform))
    guesser_account, _, token = world.patient_account("guesser", patients=0)
    headers = {"Authorization": f"Bearer {token}"}
    target = world.residents.pop()
    answers = []
    wrong = [n for n in _guesses(60) if n != target.name][:40]
    for name in [*wrong, target.name]:
        r = client.post("/api/v1/me/patients", headers=headers,
                        json={"id_number": target.id_number, "name": name})
        answers.append(r.json().get("code", "ok") if r.status_code != 201 else "ok")
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) > 0
    assert answers[:5] == ["identity_not_verified"] * 5
    assert set(answers[5:]) == {"identity_checks_limited"}  # the right name too: no oracle
    # The guesser's failures do not lock the person out: another account that has not
    # failed on the number is still checked (tests/identity/test_lockout.py).
    _, _, other = world.patient_account("guesser2", patients=0)
    r = client.post("/api/v1/me/patients", headers={"Authorization": f"Bearer {other}"},
                    json={"id_number": target.id_number, "name": target.name})
    assert r.status_code == 201, r.text
    # A day later the guesser may check again.
    clock = world.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(86400 + 60)
    guesser = world.platform.run(accounts.issue_token, guesser_account.id or 0)  # 12 h
    r = client.post("/api/v1/me/patients", headers={"Authorization": f"Bearer {guesser}"},
                    json={"id_number": target.id_number, "name": wrong[0]})
    assert r.status_code == 422 and r.json()["code"] == "identity_not_verified"


def test_one_account_trying_many_numbers_is_limited_too(world: World) -> None:
    client = TestClient(create_app(world.platform))
    _, _, token = world.patient_account("farm.linker", patients=0)
    headers = {"Authorization": f"Bearer {token}"}
    people = [world.residents.pop() for _ in range(7)]
    codes = [client.post("/api/v1/me/patients", headers=headers,
                         json={"id_number": p.id_number, "name": p.name + "伟"}).json()["code"]
             for p in people]
    assert codes == ["identity_not_verified"] * 5 + ["identity_checks_limited"] * 2


def test_each_failed_check_is_a_monitoring_event_without_pii(world: World) -> None:
    client = TestClient(create_app(world.platform))
    _, _, token = world.patient_account("typo", patients=0)
    headers = {"Authorization": f"Bearer {token}"}
    target = world.residents.pop()
    client.post("/api/v1/me/patients", headers=headers,
                json={"id_number": target.id_number, "name": "王小二"})
    client.post("/api/v1/me/patients", headers=headers,
                json={"id_number": "110105199001011235", "name": "王小二"})
    with world.platform.engine.connect() as conn:
        rows = conn.execute(sa.select(t.events.c.kind, t.events.c.account_id,
                                      t.events.c.detail)
                            .where(t.events.c.kind == "identity.rejected")
                            .order_by(t.events.c.id)).all()
    assert [r.detail["reason"] for r in rows] == ["identity_not_verified", "invalid_id_number"]
    assert rows[0].detail["tried"] and rows[0].detail["name_tried"]
    text = json.dumps([r.detail for r in rows], ensure_ascii=False)
    assert target.id_number not in text and "王小二" not in text
    # The monitoring scenario for made-up identities reads exactly these events.
    assert "identity.rejected" in BadIdentities.kinds
