"""The officer's page (``/consortium``) against hostile and malformed posts: every form
refuses a role that may not change the list (operator, desk, patient) and a post without
the page's token; a malformed number or choice is a clear 4xx refusal that writes nothing
(never a server error); what was typed as an identifier is not echoed."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Role
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.conftest import World, build_world
from tests.consortium.conftest import Pair
from tests.web.test_pages import HTML, fields

EVIDENCE = "case 2026-45: one payer behind 12 bookings"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def hb(pair: Pair, platform: Platform) -> World:
    return build_world(dataclasses.replace(platform, consortium=pair.b))


def _written(pair: Pair, platform: Platform) -> tuple[int, int]:
    with platform.engine.connect() as conn:
        events = conn.execute(sa.select(sa.func.count()).select_from(t.events).where(
            t.events.c.kind == "consortium.officer")).scalar_one()
    return len(pair.b.store.own_entries()), events


FORMS = {"/consortium/entries": {"kind": "ring_member", "role": "payer", "subject": "phone",
                                 "identifier": "13800138000", "severity": "2", "days": "30",
                                 "source": EVIDENCE},
         "/consortium/withdraw": {"entry": "1", "reason": "mistake"},
         "/consortium/appeals": {"ref": "x", "decision": "withdraw", "note": "n"},
         "/consortium/rings": {"job": "x", "rings": "R1", "days": "30"}}


@SQLITE_ONLY
def test_every_form_refuses_a_role_that_may_not_change_the_list(pair: Pair, hb: World) -> None:
    client = TestClient(create_app(hb.platform), headers=HTML)
    client.cookies.set("fs_session", hb.token(Role.INVESTIGATOR))
    token = fields(client.get("/consortium").text, "/consortium/entries")["csrf"]
    _, _, patient_token = hb.patient_account("redteam-patient")
    for who in (hb.token(Role.OPERATOR), hb.token(Role.REGISTRATION), patient_token):
        client.cookies.set("fs_session", who)
        for action, data in FORMS.items():
            # The investigator's token (bound to another session) and a fresh one alike.
            r = client.post(action, data={**data, "csrf": token}, follow_redirects=False)
            assert r.status_code == 403, (action, r.status_code)
    assert _written(pair, hb.platform) == (0, 0)
    client.cookies.set("fs_session", hb.token(Role.INVESTIGATOR))
    for action, data in FORMS.items():
        r = client.post(action, data=data, follow_redirects=False)  # no token
        assert r.status_code == 403, action
        r = client.post(action, data={**data, "csrf": token}, headers={
            "origin": "https://evil.example"}, follow_redirects=False)
        assert r.status_code == 403, action
    assert _written(pair, hb.platform) == (0, 0)


BAD_NUMBERS = ["\u00b2", "\u2460", "1\u00b9", "-1", "1e3", " ", "\u0663\u0660",
               "99999999999"]


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_a_malformed_number_is_a_clear_refusal_that_writes_nothing(
        pair: Pair, hb: World, bad: str) -> None:
    client = TestClient(create_app(hb.platform), headers=HTML, raise_server_exceptions=False)
    client.cookies.set("fs_session", hb.token(Role.INVESTIGATOR))
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/consortium/entries", {**FORMS["/consortium/entries"], "days": bad}),
        ("/consortium/entries", {**FORMS["/consortium/entries"], "severity": bad}),
        ("/consortium/entries", {**FORMS["/consortium/entries"], "identifier": "",
                                 "patient": bad}),
        ("/consortium/withdraw", {"entry": bad, "reason": "mistake"})]
    token = fields(client.get("/consortium").text, "/consortium/entries")["csrf"]
    for action, data in cases:
        r = client.post(action, data={**data, "csrf": token}, follow_redirects=False)
        assert 400 <= r.status_code < 500, (action, data, r.status_code)
        assert "13800138000" not in r.text
    assert _written(pair, hb.platform) == (0, 0)


@SQLITE_ONLY
@pytest.mark.parametrize(("subject", "value"), [
    ("identity", "abc"), ("identity", "110101199003074478"), ("identity", "\x00"),
    ("device", "dev\x00ice"), ("phone", "138\x000013\x008000")])
def test_an_identifier_that_can_never_match_is_refused_and_nothing_is_published(
        pair: Pair, hb: World, subject: str, value: str) -> None:
    """An ID number that is no valid resident ID (every patient's is one) or a value with a
    control character would be published as an entry that never names anyone."""
    client = TestClient(create_app(hb.platform), headers=HTML, raise_server_exceptions=False)
    client.cookies.set("fs_session", hb.token(Role.INVESTIGATOR))
    token = fields(client.get("/consortium").text, "/consortium/entries")["csrf"]
    r = client.post("/consortium/entries", data={
        **FORMS["/consortium/entries"], "subject": subject, "identifier": value,
        "csrf": token}, follow_redirects=False)
    assert r.status_code == 422, r.status_code
    assert _written(pair, hb.platform) == (0, 0)
    assert value not in r.text
