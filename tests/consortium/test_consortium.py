"""A hospital publishes, another applies, both follow a withdrawal; what a subscriber must
refuse (a rewritten or rolled-back feed, a withdrawn entry coming back, a stranger reading,
an appeal that probes); a confirmed ring published from a pseudonymised investigation."""

from __future__ import annotations

import csv
import datetime as dt
import pathlib

import pytest
import sqlalchemy as sa

from fairslot.consortium import Action, Consortium, EntryKind, NewEntry, RingRole, SubjectType
from fairslot.consortium.feed import Head, Page, change_body, verify_page
from fairslot.consortium.rings import read_ring
from fairslot.consortium.signing import MemberKey, sign_request
from fairslot.domain.errors import FairslotError
from fairslot.storage import tables as t
from tests.conftest import World
from tests.consortium.conftest import Pair, sqlite_engine

ID = "110101199003071234"
OTHER_ID = "110101199003072235"


def ring_entry(pair: Pair, value: str = ID, subject: SubjectType = SubjectType.IDENTITY,
               days: int = 90) -> NewEntry:
    now = pair.clock.now()
    return NewEntry(EntryKind.RING_MEMBER, RingRole.PAYMENT_HUB, 3, now,
                    now + dt.timedelta(days=days), subject, value, "case 2026-17")


def test_an_entry_published_at_a_is_refused_at_b_after_one_sync(pair: Pair) -> None:
    assert pair.b.check(identity=ID) == []
    [published] = pair.a.publish([ring_entry(pair)], actor="investigator")
    [result] = pair.b.sync()
    assert result.ok and result.applied == 1 and result.version == 1
    [match] = pair.b.check(identity=ID, phone="13900001111")
    assert (match.issuer, match.entry_no, match.action) == ("hosp-a", published.entry_no,
                                                            Action.REFUSE)
    assert pair.b.check(identity=OTHER_ID) == []


def test_a_withdrawal_at_a_stops_the_entry_applying_at_a_and_at_b(pair: Pair) -> None:
    [published] = pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.b.sync()
    assert pair.a.check(identity=ID) and pair.b.check(identity=ID)
    pair.a.withdraw(published.entry_no, "identity was stolen", actor="investigator")
    assert pair.a.check(identity=ID) == []
    [result] = pair.b.sync()
    assert result.applied == 1 and result.version == 2
    assert pair.b.check(identity=ID) == []
    assert pair.b.sync()[0].applied == 0  # nothing new: idempotent


def test_an_entry_stops_applying_when_it_expires(pair: Pair) -> None:
    pair.a.publish([ring_entry(pair, days=10)], actor="investigator")
    pair.b.sync()
    assert pair.b.check(identity=ID)
    pair.clock.advance(11 * 86400)
    assert pair.b.check(identity=ID) == []


def test_another_worker_sees_a_sync_after_its_refresh(pair: Pair) -> None:
    worker = Consortium(pair.b.store.engine, pair.clock)
    assert worker.check(identity=ID) == []  # its index is built now
    pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.b.sync()
    assert worker.check(identity=ID) == []  # memory only, until it refreshes
    worker.refresh()
    assert [m.action for m in worker.check(identity=ID)] == [Action.REFUSE]


def test_a_hospital_policy_decides_per_kind_and_ignore_hides_the_match(pair: Pair) -> None:
    pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.b.sync()
    pair.b.set_policy("ring_member:payment_hub", Action.LOWER_QUOTA, actor="operator")
    assert [m.action for m in pair.b.check(identity=ID)] == [Action.LOWER_QUOTA]
    pair.b.set_policy("ring_member:payment_hub", Action.IGNORE, actor="operator")
    assert pair.b.check(identity=ID) == []


def forked_a(pair: Pair, tmp_path: pathlib.Path, values: list[str]) -> Consortium:
    """Hospital A's key on another database: a restored backup, or a forged history."""
    engine = sqlite_engine(tmp_path / f"a-{len(values)}-{values[-1]}.db")
    other = Consortium(engine, pair.clock)
    other.store.set_self(MemberKey.from_secret("hosp-a", pair.a_key.secret()), "A",
                         pair.clock.now(), "test")
    other.store.add_epoch(pair.epoch, pair.clock.now(), "test")
    other.add_member("hosp-b", "http://hosp-b.test", pair.b_key.public_text, actor="test")
    for value in values:
        other.publish([ring_entry(pair, value)], actor="test")
    return other


def serve_from(pair: Pair, other: Consortium) -> None:
    pair.client.app.state.consortium = other  # type: ignore[attr-defined]


def test_a_feed_rewritten_at_the_same_version_is_refused_and_the_good_state_kept(
        pair: Pair, tmp_path: pathlib.Path) -> None:
    pair.a.publish([ring_entry(pair, ID)], actor="investigator")
    pair.a.publish([ring_entry(pair, OTHER_ID)], actor="investigator")
    pair.b.sync()
    serve_from(pair, forked_a(pair, tmp_path, [ID, "110101199003073236"]))
    [result] = pair.b.sync()
    assert not result.ok and "fork refused" in result.errors[0]
    assert pair.b.check(identity=OTHER_ID) and not pair.b.check(identity="110101199003073236")
    actions = [r["action"] for r in pair.b.store.audit_log(5)]
    assert "feed.refused" in actions
    assert pair.b.store.member("hosp-a").error  # type: ignore[union-attr]


def test_a_feed_older_than_what_was_applied_is_refused_as_a_rollback(
        pair: Pair, tmp_path: pathlib.Path) -> None:
    pair.a.publish([ring_entry(pair, ID)], actor="investigator")
    pair.a.publish([ring_entry(pair, OTHER_ID)], actor="investigator")
    pair.b.sync()
    serve_from(pair, forked_a(pair, tmp_path, [ID]))  # yesterday's backup of A
    [result] = pair.b.sync()
    assert not result.ok and "rollback refused" in result.errors[0]
    assert pair.b.check(identity=OTHER_ID) and pair.b.store.member("hosp-a").version == 2  # type: ignore[union-attr]


def test_an_issuer_cannot_bring_a_withdrawn_entry_back(pair: Pair) -> None:
    [e] = pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.a.withdraw(e.entry_no, "mistake", actor="investigator")
    pair.b.sync()
    member = pair.b.store.member("hosp-a")
    assert member is not None
    # A third change, signed by A, re-activating the entry under a higher version.
    body = change_body(3, type(e)(e.issuer, e.entry_no, 3, e.kind, e.role, e.severity,
                                  e.starts_at, e.expires_at, e.subject_type, e.pseudonym,
                                  e.epoch))
    from fairslot.consortium.feed import chain
    head = Head("hosp-a", 3, chain(member.chain, body), 3, pair.clock.now())
    verified = verify_page("hosp-a", pair.a_key.private.public_key(), 2, member.chain,
                           Page(head, head.sign(pair.a_key), [(3, body)]))
    with pytest.raises(FairslotError, match="goes back on entry"):
        pair.b.store.apply("hosp-a", verified, pair.clock.now(), "test")
    pair.b.refresh()
    assert pair.b.check(identity=ID) == []


def test_only_pinned_members_can_read_a_feed(pair: Pair) -> None:
    pair.a.publish([ring_entry(pair)], actor="investigator")
    path = "/api/v1/consortium/feeds/hosp-a?since=0"
    unsigned = pair.client.get(path)
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    assert unsigned.json()["code"] == "consortium_unsigned"
    stranger = MemberKey.generate("hosp-b")  # claims B's code with another key
    forged = pair.client.get(path, headers=sign_request(stranger, "GET", path, b"",
                                                        pair.clock.now()))
    assert forged.json()["code"] == "consortium_bad_signature"
    old = sign_request(pair.b_key, "GET", path, b"", pair.clock.now() - dt.timedelta(hours=1))
    assert pair.client.get(path, headers=old).json()["code"] == "consortium_bad_date"
    good = pair.client.get(path, headers=sign_request(pair.b_key, "GET", path, b"",
                                                      pair.clock.now()))
    assert good.status_code == 200 and len(good.json()["changes"]) == 1


def test_an_appeal_reaches_the_issuer_and_a_probe_with_another_pseudonym_does_not(
        pair: Pair) -> None:
    [e] = pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.b.sync()
    with pytest.raises(FairslotError, match="does not name"):
        pair.b.appeal("hosp-a", e.entry_no, SubjectType.IDENTITY, OTHER_ID, "not me",
                      actor="desk")
    sent = pair.b.appeal("hosp-a", e.entry_no, SubjectType.IDENTITY, ID,
                         "My ID card was stolen in 2025.", actor="desk")
    assert sent.status == "delivered"
    [received] = pair.a.store.appeals(direction="in")
    assert (received.member, received.entry_no, received.message) == (
        "hosp-b", e.entry_no, "My ID card was stolen in 2025.")
    assert received.pseudonym == e.pseudonym
    # A member fishing with a pseudonym the entry does not name learns nothing.
    body = (f'{{"ref":"00000000-0000-4000-8000-000000000001","issuer":"hosp-a",'
            f'"entry_no":{e.entry_no},"pseudonym":"{"0" * 32}","message":"x"}}').encode()
    path = "/api/v1/consortium/appeals"
    probe = pair.client.post(path, content=body, headers=sign_request(
        pair.b_key, "POST", path, body, pair.clock.now()))
    assert probe.status_code == 404 and probe.json()["code"] == "consortium_no_entry"
    decided = pair.a.decide_appeal(received.ref, withdraw=True, note="theft confirmed",
                                   actor="investigator")
    assert decided.status == "withdrawn"
    pair.b.sync()
    assert pair.b.check(identity=ID) == []
    assert pair.b.store.appeal(sent.ref).status == "withdrawn"  # type: ignore[union-attr]


def test_rekeying_moves_entries_to_the_new_epoch_and_retiring_the_old_one_keeps_them(
        pair: Pair) -> None:
    from fairslot.consortium.pseudonyms import EpochKey

    pair.a.publish([ring_entry(pair)], actor="investigator")
    pair.b.sync()
    new = EpochKey.new(2)
    for c in (pair.a, pair.b):
        c.store.add_epoch(new, pair.clock.now(), "coordinator")
    assert pair.a.rekey(actor="operator") == 1
    pair.b.sync()
    for c in (pair.a, pair.b):
        c.store.retire_epoch(1, pair.clock.now(), "coordinator")
        c.refresh()
    assert [m.issuer for m in pair.b.check(identity=ID)] == ["hosp-a"]
    assert pair.b.store.entry("hosp-a", 1).epoch == 2  # type: ignore[union-attr]


def test_a_confirmed_ring_from_a_pseudonymised_investigation_is_published_from_this_hospitals_records(  # noqa: E501
        world: World, pair: Pair, tmp_path: pathlib.Path) -> None:
    platform = world.platform
    account, [patient_id], _ = world.patient_account("ring-holder", phone="13700001234")
    with platform.engine.connect() as conn:
        id_number = conn.execute(sa.select(t.patients.c.id_number)
                                 .where(t.patients.c.id == patient_id)).scalar_one()
    keys = platform.keyring
    folder = tmp_path / "case"
    folder.mkdir()
    rows = [("account", str(account.id), "R1", "holder"),
            ("patient", keys.pseudonym("id_number", id_number), "R1", "held_identity"),
            ("phone", keys.pseudonym("phone", "+8613700001234"), "R1", "member"),
            ("patient", keys.pseudonym("id_number", "110101199003079999"), "R1", "buyer"),
            ("ip", "203.0.113.9", "R1", "member"),
            ("patient", keys.pseudonym("id_number", OTHER_ID), "R2", "held_identity")]
    with (folder / "suspects.csv").open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["entity_type", "entity_id", "score", "ring_id", "reasons", "role"])
        out.writerows([(kind, value, "0.9", ring, "", role) for kind, value, ring, role in rows])
    now = pair.clock.now()
    found = read_ring(folder, ["R1"], engine=platform.engine, keyring=keys, starts_at=now,
                      expires_at=now + dt.timedelta(days=365))
    assert found.unresolved == 0
    assert sorted((e.subject_type.value, e.identifier) for e in found.entries) == [
        ("identity", id_number), ("phone", "+8613700001234")]
    assert found.skipped == {"account (not shared)": 1, "buyer (a customer)": 1,
                             "ip (not shared)": 1}
    pair.b.publish(found.entries, actor="investigator")  # B is the test's platform
    assert {m.subject_type for m in pair.b.check(identity=id_number, phone="13700001234")} == {
        SubjectType.IDENTITY, SubjectType.PHONE}
    # What B's feed carries is the consortium pseudonym, not the clear value.
    with platform.engine.connect() as conn:
        bodies = " ".join(conn.execute(sa.select(t.consortium_changes.c.body)).scalars())
    assert id_number not in bodies and "13700001234" not in bodies
