"""Issue 14's attacks, played through fairslot's own services (not only the format): each
one worked on the format-1 draw while `fairslot draw verify` still said OK, and each is
shown to fail now. The round document checked here is the one the API exports."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import pathlib
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.beacon import BeaconSource
from fairslot.bootstrap import Platform
from fairslot.clock import FixedClock
from fairslot.domain.accounts import Role
from fairslot.domain.draw.beacon import LOE_QUICKNET, Beacon, Chain
from fairslot.domain.draw.log import RoundLog, audit
from fairslot.domain.draw.signing import digest
from fairslot.domain.draw.statements import freeze_statement, frozen_entry
from fairslot.domain.draw.verify import verify_document
from fairslot.domain.schedule import Period
from fairslot.services import accounts, booking, catalog, release, rules
from fairslot.storage import tables as t
from fairslot.web.app import create_app
from tests.cli.test_draw_verify import run, write
from tests.integration.test_release import (
    CTX,
    DrawWorld,
    _close_and_draw,
    _draw_world,
    _enter_all,
    trust,
)


@pytest.fixture
def dw(platform: Platform, clock: FixedClock) -> DrawWorld:
    return _draw_world(platform, clock)


def _stage(dw: DrawWorld) -> release.DrawStage:
    return dw.platform.run(release.round_view, dw.round_id).stage


def _close(dw: DrawWorld) -> None:
    """The window closes and the scheduler's next tick freezes the list."""
    dw.clock.set(dw.platform.run(release.round_view, dw.round_id).round.closes_at)
    assert dw.platform.run_job(release.draw_due_rounds) == 0
    assert _stage(dw).stage == "frozen"


def _document(dw: DrawWorld) -> dict[str, Any]:
    return dw.platform.run(release.export_round_document, dw.round_id)


def _leaf_of(document: dict[str, Any], ref: str) -> str:
    return next(line for line in document["entries"] if line.split(" ")[0] == ref)


def test_a_late_suspension_after_the_close_does_not_change_the_frozen_list(
        dw: DrawWorld) -> None:
    """Attack 1: after the close, a desk account late-cancels an ordinary booking of an
    entrant, which suspends them. Before, the draw then left them out. Now eligibility is
    judged as of the close and the list is frozen and signed then: they stay in the draw."""
    world = dw.world
    today = dw.clock.now().astimezone(dw.platform.settings.zone).date()
    # An ordinary session the afternoon after the close, released already.
    (ordinary,) = dw.platform.run(catalog.schedule_sessions, world.doctor_id,
                                  [today + dt.timedelta(days=1)], [Period.AFTERNOON], 5, 5000,
                                  release_days_before=2)
    account, pid = dw.patients[0]
    held = dw.platform.run(booking.book, account, pid, ordinary.id or 0, CTX)
    dw.platform.run(booking.pay, account, held.booking.id or 0, "alipay:victim01", CTX)
    _enter_all(dw)
    victim = dw.platform.run(release.my_entries, account)[0].entry.ref
    _close(dw)
    before = _document(dw)
    assert _leaf_of(before, victim).split(" ")[2] == "in"

    dw.clock.advance(10)  # the beacon is not out yet; an insider acts now
    desk = world.staff[Role.REGISTRATION]
    cancelled = dw.platform.run(booking.cancel, desk, held.booking.id or 0, CTX)
    assert cancelled.booking.late_cancel, "the set-up must suspend the entrant"
    with dw.platform.uow() as uow:  # the suspension is real, from now on
        assert rules.suspended_at(uow, dw.platform.deps, pid, dw.clock.now())

    due = _stage(dw).beacon_due_at
    assert due is not None
    dw.clock.set(due)
    assert dw.platform.run_job(release.draw_due_rounds) == 1
    after = _document(dw)
    assert after["entries"] == before["entries"] and after["freeze"] == before["freeze"]
    drawn = [w.split(" ")[0] for w in after["results"]["winners"]] + after["results"]["waitlist"]
    assert victim in drawn
    report = verify_document(after, trust=trust(dw.platform))
    assert report.ok, report.reasons


def test_an_entrant_suspended_before_the_close_is_listed_excluded_with_the_reason(
        dw: DrawWorld) -> None:
    """Exclusions are in the signed list, with their reason, not silently left out."""
    world = dw.world
    _enter_all(dw)
    account, pid = dw.patients[1]
    made = dw.platform.run(booking.book, account, pid, world.session_ids[0], CTX)
    dw.platform.run(booking.pay, account, made.booking.id or 0, "alipay:absent02", CTX)
    dw.clock.advance(3600)  # the evening before the visit, before the close
    desk = world.staff[Role.REGISTRATION]
    assert dw.platform.run(booking.cancel, desk, made.booking.id or 0, CTX).booking.late_cancel
    ref = dw.platform.run(release.my_entries, account)[0].entry.ref
    _close_and_draw(dw)
    document = _document(dw)
    line = _leaf_of(document, ref).split(" ")
    assert line[2] == "excluded" and line[4] == "credit_suspended"
    assert ref not in json.dumps(document["results"])
    assert verify_document(document, trust=trust(dw.platform)).ok
    mine = dw.platform.run(release.my_entries, account)[0]
    assert mine.entry.outcome == "excluded"


def test_nobody_can_know_the_draw_key_before_the_close(dw: DrawWorld) -> None:
    """Attack 2: whoever held the seed knew every key while the window was open. Now the key
    needs the beacon of a drand round fixed at the opening after the close, which the chain
    has not produced yet, and the root of a list that cannot be frozen before the close."""
    _enter_all(dw)
    opening = _document(dw)["opening"]
    closes = dw.platform.run(release.round_view, dw.round_id).round.closes_at
    chain = Chain.from_json(opening["chain"])
    assert chain.round_time(opening["beacon_round"]) >= closes.timestamp() + 30
    dw.clock.set(closes - dt.timedelta(seconds=1))
    assert dw.platform.deps.beacons.fetch(opening["beacon_round"]) is None
    assert not dw.platform.run(release.freeze_round, dw.round_id)
    assert dw.platform.run_job(release.draw_due_rounds) == 0
    # And the operator's old way in, entering a beacon of their choice, is gone.
    client = TestClient(create_app(dw.platform))
    headers = {"Authorization": f"Bearer {dw.world.token(Role.OPERATOR)}"}
    put = client.put(f"/api/v1/admin/rounds/{dw.round_id}/beacon", headers=headers,
                     json={"beacon": "lottery-1"})
    assert put.status_code in (404, 405)


@dataclasses.dataclass
class Lying:
    """A beacon source (a relay, or an insider) that answers with what it likes."""

    chain: Chain
    answer: Beacon | None

    def fetch(self, round_: int) -> Beacon | None:
        return self.answer


def _with_source(dw: DrawWorld, source: BeaconSource | None) -> None:
    dw.platform.beacon_source = source
    dw.platform.__dict__.pop("deps", None)


def test_a_beacon_other_than_the_chains_signature_for_the_stated_round_is_refused(
        dw: DrawWorld) -> None:
    """Attack 3: the beacon was a free string chosen after the entries were seen. Now only
    the chain's BLS signature of the stated round is taken: another round's genuine beacon,
    a forged signature or a relabelled one leave the round waiting, with nothing stored."""
    _enter_all(dw)
    honest = dw.platform.deps.beacons
    _close(dw)
    opening = _document(dw)["opening"]
    stated = opening["beacon_round"]
    due = _stage(dw).beacon_due_at
    assert due is not None
    dw.clock.set(due + dt.timedelta(minutes=5))
    genuine_next = honest.fetch(stated + 1)
    assert genuine_next is not None
    for forged in (genuine_next,  # the chain's, but of a later round
                   Beacon(stated, genuine_next.signature),  # relabelled
                   Beacon(stated, bytes(48)),  # not a point
                   Beacon(stated, genuine_next.signature[:-1] + b"\x01")):
        _with_source(dw, Lying(honest.chain, forged))
        assert dw.platform.run_job(release.draw_due_rounds) == 0
        assert _stage(dw).stage == "frozen"
        with dw.platform.engine.connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(t.draw_beacons)) == 0
    _with_source(dw, None)
    assert dw.platform.run_job(release.draw_due_rounds) == 1
    document = _document(dw)
    assert document["beacon"]["round"] == stated
    assert verify_document(document, trust=trust(dw.platform)).ok


def test_a_round_whose_beacon_is_late_waits_and_says_so(dw: DrawWorld) -> None:
    """The draw runs with the stated beacon or not at all; meanwhile the round's public
    page and API say it is waiting, and, past the beacon's time, that the beacon is late."""
    _enter_all(dw)
    honest = dw.platform.deps.beacons
    _with_source(dw, Lying(honest.chain, None))  # every relay down
    _close(dw)
    stage = _stage(dw)
    assert stage.beacon_due_at is not None and not stage.beacon_late
    assert "draw runs when drand round" in stage.note
    dw.clock.set(stage.beacon_due_at + dt.timedelta(minutes=7))
    assert dw.platform.run_job(release.draw_due_rounds) == 0
    client = TestClient(create_app(dw.platform))
    api = client.get(f"/api/v1/rounds/{dw.round_id}").json()
    assert api["stage"] == "frozen" and api["beacon_late"] is True
    assert api["beacon_round"] == stage.beacon_round
    assert "late by 7 min" in api["note"] and "no other value" in api["note"]
    page = client.get(f"/rounds/{dw.round_id}")
    assert page.status_code == 200 and "信标迟到：抽签等待信标，不会改用其他值。" in page.text
    assert f"drand 第 {stage.beacon_round} 轮随机信标公布后即抽签" in page.text
    _with_source(dw, None)  # the beacon arrives
    assert dw.platform.run_job(release.draw_due_rounds) == 1
    assert client.get(f"/api/v1/rounds/{dw.round_id}").json()["stage"] == "drawn"


def test_every_write_returns_a_receipt_that_checks_against_the_frozen_list(
        dw: DrawWorld) -> None:
    """Entries, changes and withdrawals are signed; after the close each receipt is checked
    against the frozen list and the entry's inclusion proof against the signed root."""
    account, pid = dw.patients[0]
    first = dw.platform.run(release.enter, account, dw.round_id, pid, [dw.sessions[0]], CTX)
    changed = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    other, other_pid = dw.patients[1]
    kept = dw.platform.run(release.enter, other, dw.round_id, other_pid, dw.sessions, CTX)
    gone = dw.platform.run(release.withdraw, other, kept.id, CTX)
    again = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX,
                            idempotency_key=None)
    receipts = [first.receipt, changed.receipt, gone.receipt, again.receipt]
    assert all(r is not None for r in receipts)
    assert [(r["kind"], r["seq"]) for r in receipts if r] == [
        ("entry", 1), ("change", 2), ("withdrawal", 2), ("change", 3)]
    _close_and_draw(dw)
    document = _document(dw)
    for receipt, expected in ((again.receipt, "in the frozen list"),
                              (gone.receipt, "withdrawn"),
                              (first.receipt, "written again")):
        report = verify_document(document, trust=trust(dw.platform), receipt=receipt)
        assert report.ok, report.reasons
        assert any(expected in note for note in report.notes), report.notes
    proof = dw.platform.run(release.entry_proof, account, first.id)
    report = verify_document(document, trust=trust(dw.platform), proof=proof)
    assert report.ok, report.reasons


def test_a_dropped_entry_is_proven_by_its_receipt(dw: DrawWorld,
                                                   tmp_path: pathlib.Path) -> None:
    """Attack 5: an insider (holding the hospital's key) drops an entry and re-signs the
    freeze. The document alone may look consistent, but the patient's signed receipt proves
    the entry was accepted and is missing."""
    _enter_all(dw)
    account, _ = dw.patients[3]
    receipt = dw.platform.run(release.my_entries, account)[0].receipt
    assert receipt is not None
    _close_and_draw(dw)
    document = _document(dw)
    assert verify_document(document, trust=trust(dw.platform), receipt=receipt).ok
    forged = copy.deepcopy(document)
    opening = forged["opening"]
    kept = [line for line in forged["entries"] if line.split(" ")[0] != receipt["ref"]]
    lines = []
    for line in kept:
        ref, seq, status, choices, reason = line.split(" ")
        lines.append(frozen_entry(ref, int(seq), choices.split(","),
                                  withdrawn=status == "withdrawn",
                                  excluded=None if reason == "-" else reason))
    frozen, freeze = freeze_statement(dw.platform.deps.draw_key, opening, lines,
                                      dt.datetime.fromisoformat(
                                          document["freeze"]["frozen_at"]))
    forged["entries"], forged["freeze"] = list(frozen.leaves), freeze
    report = verify_document(forged, trust=trust(dw.platform), receipt=receipt)
    assert report.status == "fail"
    assert any("missing from the frozen list" in r and "dropped" in r
               for r in report.reasons), report.reasons
    # The same, as a patient runs it: `fairslot draw verify ROUND.json --receipt R.json`.
    chain = ["--chain-key", dw.platform.deps.beacons.chain.hash.hex()]
    receipt_file = write(tmp_path, receipt, "receipt.json")
    honest = run("verify", write(tmp_path, document), *chain, "--receipt", receipt_file)
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert honest.stdout.startswith("OK: ")
    dropped = run("verify", write(tmp_path, forged, "forged.json"), *chain,
                  "--receipt", receipt_file)
    assert dropped.returncode == 1 and "FAIL: " in dropped.stdout
    assert "the entry was dropped" in dropped.stdout


def test_a_split_view_is_caught_by_the_audit_and_the_log_cannot_be_rewritten(
        dw: DrawWorld) -> None:
    """Attack 4: different people shown different documents. The public log's signed
    checkpoints are kept by anyone; a newer one must extend the older one."""
    client = TestClient(create_app(dw.platform))
    old = client.get("/api/v1/draw/checkpoint").json()
    assert old["size"] == 1  # the round's opening
    _enter_all(dw)
    _close_and_draw(dw)
    new = client.get("/api/v1/draw/log", params={"from_size": old["size"]}).json()
    assert new["checkpoint"]["size"] == 3
    assert audit(old, new).ok
    whole = client.get("/api/v1/draw/log").json()
    assert audit(old, whole).ok
    kinds = [r["kind"] for r in whole["records"]]
    assert kinds == ["opened", "frozen", "drawn"]
    assert whole["records"][1]["root"] == _document(dw)["freeze"]["root"]
    # A second history for someone else: the same key, a different frozen root.
    records = copy.deepcopy(whole["records"])
    records[1]["root"] = digest("another list")
    fork = RoundLog(records)
    forked = fork.document(fork.checkpoint(dw.platform.deps.draw_key, dw.clock.now()))
    verdict = audit(whole["checkpoint"], forked)
    assert not verdict.ok and any("different histories" in r for r in verdict.reasons)
    # And the stored log refuses to be rewritten in place.
    with pytest.raises(sa.exc.DBAPIError), dw.platform.engine.begin() as conn:
        conn.execute(sa.update(t.draw_log_records).values(body="{}"))


def _schema(name: str) -> Any:
    import jsonschema_rs

    path = pathlib.Path(__file__).resolve().parents[2] / "docs" / "schemas"
    return jsonschema_rs.validator_for(json.loads(
        (path / f"{name}.schema.json").read_text(encoding="utf-8")))


def test_what_the_services_publish_matches_the_json_schemas_in_docs(dw: DrawWorld) -> None:
    """The round document at every stage, the receipts, the proof, the checkpoint and the
    log, as the API serves them, validated with docs/schemas/ (JSON Schema 2020-12)."""
    round_schema, receipt_schema = _schema("round"), _schema("receipt")
    inclusion_schema, log_schema = _schema("inclusion"), _schema("log")
    client = TestClient(create_app(dw.platform))
    account, pid = dw.patients[0]
    entered = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    withdrawn = dw.platform.run(release.withdraw, account, entered.id, CTX)
    _enter_all(dw)
    receipts = [entered.receipt, withdrawn.receipt,
                *(v.receipt for a, _ in dw.patients for v in dw.platform.run(
                    release.my_entries, a))]
    for receipt in receipts:
        assert receipt is not None
        receipt_schema.validate(receipt)
    assert not receipt_schema.is_valid({k: v for k, v in receipts[0].items() if k != "at"})
    assert not receipt_schema.is_valid({**receipts[0], "seq": "1"})
    stages = [client.get(f"/api/v1/rounds/{dw.round_id}/export").json()]
    _close(dw)
    stages.append(client.get(f"/api/v1/rounds/{dw.round_id}/export").json())
    due = _stage(dw).beacon_due_at
    assert due is not None
    dw.clock.set(due)
    assert dw.platform.run_job(release.draw_due_rounds) == 1
    stages.append(client.get(f"/api/v1/rounds/{dw.round_id}/export").json())
    for document in stages:
        round_schema.validate(document)
    assert [d["entries"] is None for d in stages] == [True, False, False]
    assert [d["result"] is None for d in stages] == [True, True, False]
    assert not round_schema.is_valid({**stages[-1], "extra": 1})
    token = dw.platform.run(accounts.issue_token, account.id or 0)
    proof = client.get(f"/api/v1/entries/{entered.id}/proof",
                       headers={"Authorization": f"Bearer {token}"})
    assert proof.status_code == 200, proof.text
    inclusion_schema.validate(proof.json())
    checkpoint = client.get("/api/v1/draw/checkpoint").json()
    log_schema.validate(checkpoint)
    log_schema.validate(client.get("/api/v1/draw/log").json())
    log_schema.validate(client.get("/api/v1/draw/log", params={"from_size": 1}).json())
    assert client.get("/api/v1/draw/log", params={"from_size": 99}).json()["code"] == "bad_size"


def test_the_patients_page_gives_the_receipt_and_after_the_close_the_proof(
        dw: DrawWorld) -> None:
    account, pid = dw.patients[0]
    view = dw.platform.run(release.enter, account, dw.round_id, pid, dw.sessions, CTX)
    client = TestClient(create_app(dw.platform))
    client.cookies.set("fs_session", dw.platform.run(accounts.issue_token, account.id or 0))
    page = client.get("/me")
    receipt_url = f"/me/entries/{view.id}/receipt.json"
    proof_url = f"/me/entries/{view.id}/proof.json"
    assert receipt_url in page.text and proof_url not in page.text
    assert client.get(receipt_url).json() == view.receipt
    _close(dw)
    client.cookies.set("fs_session", dw.platform.run(accounts.issue_token, account.id or 0))
    assert proof_url in client.get("/me").text
    proof = client.get(proof_url)
    assert proof.status_code == 200 and "attachment" in proof.headers["content-disposition"]
    report = verify_document(_document(dw), trust=trust(dw.platform), proof=proof.json(),
                             receipt=view.receipt)
    assert report.status == "pending", report.reasons
    other, _ = dw.patients[1]
    client.cookies.set("fs_session", dw.platform.run(accounts.issue_token, other.id or 0))
    assert client.get(receipt_url).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_in_production_a_round_names_the_league_of_entropy_chain(
        platform: Platform, clock: FixedClock) -> None:
    """With ``FAIRSLOT_DRAW_CHAIN=quicknet`` the opening names quicknet, which every verifier
    trusts without being told: the document needs nothing from fairslot but drand's key."""
    platform.settings.draw_chain = "quicknet"
    dw = _draw_world(platform, clock)
    _enter_all(dw)
    document = _document(dw)
    assert document["opening"]["chain"]["hash"] == LOE_QUICKNET.hash.hex()
    report = verify_document(document)  # the default trust: the League of Entropy's chains
    assert report.status == "pending", report.reasons
    closes = dw.platform.run(release.round_view, dw.round_id).round.closes_at
    due = LOE_QUICKNET.round_time(document["opening"]["beacon_round"])
    assert 0 <= due - (closes.timestamp() + 30) < LOE_QUICKNET.period
