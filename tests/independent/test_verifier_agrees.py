"""Issue 14: a verifier written from docs/draw.md alone (``draw_verifier``, which imports
nothing from fairslot) agrees with fairslot on rounds played through the HTTP API, and
refuses each document, receipt, proof or log someone changed.

The main round: two draw doctors of one department (four sessions, one round), hundreds of
patients entering with one to three choices, some changing their entry once or twice, some
withdrawing, some suspended for a late cancellation after they entered (so excluded at the
close, or still listed withdrawn if they had withdrawn), and one refused for the
departments-per-week quota (so not listed at all). Then leftover rounds: a draw with fewer
entries than slots, and the short rounds of what it left, one of them empty. The clock is
injected: the test moves it to the close, then to the beacon's time, and lets the
scheduler's job freeze and draw. Everything the verifier reads comes from the public API."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import random
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, catalog, release
from fairslot.web.app import create_app
from tests.conftest import World, api_book, api_cancel, api_pay, build_world, make_settings
from tests.independent.draw_verifier import (
    Problem,
    Verdict,
    audit,
    check_receipt,
    parse_lines,
    verify_round,
)

# The guard's rate limits would stop one test client entering hundreds of patients in a
# few seconds; they are not what this test is about.
_OPEN = "1000000/minute"
GUARD_OFF = {group: {key: _OPEN for key in ("ip", "prefix", "device", "account", "patient",
                                            "payer")}
             for group in ("screens", "entering", "booking", "payment")}
PEOPLE_PER_ACCOUNT = 5
CAPACITY = 12  # per session: four sessions, 48 slots for a few hundred entries
FAMILIES = {"sqlite": 60, "postgres": 24}  # accounts of five patients, each enters
EXAMPLE_BEACON = ("86d8ca1d8a10ffca0c339b10952837f3ef37b6c4fc1a6ff1d172bde13b3d68319c614d89e6"
                  "eb5c97026278b8e8a2ec52")  # draw.md section 2: the example chain's beacon


@pytest.fixture
def platform(engine: sa.Engine, clock: FixedClock) -> Platform:
    return bootstrap(make_settings(database_url=str(engine.url), guard_limits=GUARD_OFF),
                     clock=clock, engine=engine)


@dataclasses.dataclass
class Entrant:
    """One patient who entered, and what the test did with the entry since."""

    account_id: int
    token: str
    patient_id: int
    entry_id: int
    ref: str
    seq: int
    choices: list[str]
    withdrawn: bool = False
    suspended: bool = False
    receipts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def expected_line(self) -> str:
        """Section 3, with section 6's rule that a withdrawal is listed ``withdrawn``."""
        status = ("withdrawn" if self.withdrawn else "excluded" if self.suspended else "in")
        reason = "credit_suspended" if status == "excluded" else "-"
        return f"{self.ref} {self.seq} {status} {','.join(self.choices)} {reason}"


@dataclasses.dataclass
class Played:
    round_id: int
    entrants: list[Entrant]
    sessions: list[int]
    chain_key: str


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _enter(client: TestClient, clock: FixedClock, token: str, round_id: int,
           patient_id: int, choices: list[int]) -> Any:
    """Enter (or change an entry) the way the app does: the entry screen, then the post."""
    screen = client.get(f"/api/v1/rounds/{round_id}/entry-screen", headers=_headers(token))
    assert screen.status_code == 200, screen.text
    clock.advance(2)
    return client.post(f"/api/v1/rounds/{round_id}/entries",
                       json={"patient_id": patient_id, "choices": choices},
                       headers={**_headers(token),
                                screen.json()["token_header"]: screen.json()["action_token"]})


def _draw_round(platform: Platform, clock: FixedClock, world: World) -> tuple[int, list[int]]:
    """Two hot draw doctors of the world's department, their four sessions released at
    the same moment: one round, open now."""
    today = clock.now().astimezone(platform.settings.zone).date()
    sessions: list[int] = []
    for name in ("张华", "王芳"):
        doctor = platform.run(catalog.create_doctor, world.department_id, name, "主任医师",
                              "心衰", release_policy=ReleasePolicy.DRAW, hot=True)
        made = platform.run(catalog.schedule_sessions, doctor.id or 0,
                            [today + dt.timedelta(days=2)], [Period.MORNING, Period.AFTERNOON],
                            CAPACITY, 30000, release_days_before=1)
        sessions += [s.id or 0 for s in made]
    assert platform.run_job(release.open_due_rounds) == 1
    return 0, sessions


def _round_of(client: TestClient, sessions: list[int]) -> int:
    (found,) = [r for r in client.get("/api/v1/rounds").json()
                if {s["session_id"] for s in r["sessions"]} == set(sessions)]
    return int(found["id"])


def _other_departments_booked(platform: Platform, clock: FixedClock, world: World,
                              client: TestClient, token: str, patient_id: int) -> None:
    """Book the patient into three other departments within the week of the round's
    visit, so that entering the round (a fourth department) breaks the quota."""
    today = clock.now().astimezone(platform.settings.zone).date()
    for n in range(3):
        department = platform.run(catalog.create_department, world.hospital_id, f"D{n}",
                                  f"科室{n}")
        doctor = platform.run(catalog.create_doctor, department.id or 0, f"医生{n}",
                              "主治医师", "常见病")
        (session,) = platform.run(catalog.schedule_sessions, doctor.id or 0,
                                  [today + dt.timedelta(days=3)], [Period.MORNING], 5, 3000,
                                  release_days_before=7)
        booked = api_book(client, token, session.id or 0, patient_id, clock)
        assert booked.status_code == 201, booked.text


def _suspend(client: TestClient, clock: FixedClock, world: World, entrant: Entrant,
             payer: str) -> None:
    """A late cancellation (less than 24 h before the visit, still allowed online) is an
    offence: the patient is suspended from now on, so excluded at the close."""
    booked = api_book(client, entrant.token, world.session_ids[0], entrant.patient_id, clock)
    assert booked.status_code == 201, booked.text
    booking_id = booked.json()["id"]
    assert api_pay(client, entrant.token, booking_id, payer, clock).status_code == 200
    cancelled = api_cancel(client, entrant.token, booking_id, clock)
    assert cancelled.status_code == 200, cancelled.text
    entrant.suspended = True


def play_round(platform: Platform, clock: FixedClock, client: TestClient, *,
               families: int, seed: int) -> Played:
    rng = random.Random(seed)
    world = build_world(platform, residents=families * PEOPLE_PER_ACCOUNT + 10)
    _, sessions = _draw_round(platform, clock, world)
    round_id = _round_of(client, sessions)
    opened = client.get(f"/api/v1/rounds/{round_id}/export").json()
    chain_key = opened["opening"]["chain"]["public_key"]
    entrants: list[Entrant] = []
    for a in range(families):
        account, patients, token = world.patient_account(f"family{a:03d}",
                                                         patients=PEOPLE_PER_ACCOUNT)
        for pid in patients:
            choices = rng.sample(sessions, rng.randint(1, 3))
            answer = _enter(client, clock, token, round_id, pid, choices)
            assert answer.status_code == 201, answer.text
            body = answer.json()
            receipt = body["receipt"]
            entrants.append(Entrant(account.id or 0, token, pid, body["id"], body["ref"],
                                    receipt["seq"], [str(s) for s in choices],
                                    receipts=[receipt]))
    # Changes (some twice) and withdrawals (some after a change).
    for entrant in rng.sample(entrants, len(entrants) // 5):
        for _ in range(rng.choice((1, 1, 2))):
            choices = rng.sample(sessions, rng.randint(1, 3))
            answer = _enter(client, clock, entrant.token, round_id, entrant.patient_id,
                            choices)
            assert answer.status_code == 201, answer.text
            receipt = answer.json()["receipt"]
            assert answer.json()["id"] == entrant.entry_id and receipt["kind"] == "change"
            entrant.seq, entrant.choices = receipt["seq"], [str(s) for s in choices]
            entrant.receipts.append(receipt)
    for entrant in rng.sample(entrants, len(entrants) // 12):
        answer = client.delete(f"/api/v1/entries/{entrant.entry_id}",
                               headers=_headers(entrant.token))
        assert answer.status_code == 200, answer.text
        receipt = answer.json()["receipt"]
        assert receipt["kind"] == "withdrawal"
        entrant.seq, entrant.withdrawn = receipt["seq"], True
        entrant.receipts.append(receipt)
    for n, entrant in enumerate(rng.sample([e for e in entrants if not e.withdrawn], 4)):
        _suspend(client, clock, world, entrant, f"alipay:late{seed}{n:02d}")
    # One who withdrew is suspended too: the withdrawal receipt says ``withdrawn``.
    _suspend(client, clock, world, next(e for e in entrants if e.withdrawn),
             f"alipay:late{seed}99")
    # The suspension is in force (booking is refused); a patient over the departments
    # quota cannot enter at all, so is not listed.
    suspended = next(e for e in entrants if e.suspended and not e.withdrawn)
    refused = api_book(client, suspended.token, world.session_ids[1], suspended.patient_id,
                       clock)
    assert refused.status_code == 403 and refused.json()["code"] == "credit_suspended"
    _, (busy,), busy_token = world.patient_account("busy")
    _other_departments_booked(platform, clock, world, client, busy_token, busy)
    refused = _enter(client, clock, busy_token, round_id, busy, sessions[:1])
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "quota_departments_per_week"
    return Played(round_id, entrants, sessions, chain_key)


def close_and_draw(platform: Platform, clock: FixedClock, client: TestClient,
                   played: Played, *, drawn_rounds: int = 1
                   ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Move the clock to the close (the scheduler freezes the list), fetch the frozen
    document and some patients' inclusion proofs, then move it to the beacon's time (the
    scheduler draws). Also returns the log's checkpoint as it was while frozen."""
    view = client.get(f"/api/v1/rounds/{played.round_id}").json()
    clock.set(dt.datetime.fromisoformat(view["closes_at"]))
    assert platform.run_job(release.draw_due_rounds) == 0
    frozen = client.get(f"/api/v1/rounds/{played.round_id}").json()
    assert frozen["stage"] == "frozen" and frozen["beacon_due_at"] is not None
    document = client.get(f"/api/v1/rounds/{played.round_id}/export").json()
    proofs = []
    for entrant in played.entrants[::40]:
        token = platform.run(accounts.issue_token, entrant.account_id)  # a new log-in
        answer = client.get(f"/api/v1/entries/{entrant.entry_id}/proof",
                            headers=_headers(token))
        assert answer.status_code == 200, answer.text
        proofs.append(answer.json())
    checkpoint = client.get("/api/v1/draw/checkpoint").json()
    clock.set(dt.datetime.fromisoformat(frozen["beacon_due_at"]))
    assert platform.run_job(release.draw_due_rounds) == drawn_rounds
    return dict(document), proofs, checkpoint


@dataclasses.dataclass
class Drawn:
    played: Played
    frozen: dict[str, Any]
    document: dict[str, Any]
    proofs: list[dict[str, Any]]
    log: dict[str, Any]
    published: dict[str, Any]
    checkpoint: dict[str, Any]
    extension: dict[str, Any]
    raw: bytes  # the export's bytes as served


def draw_through_the_api(platform: Platform, clock: FixedClock, families: int) -> Drawn:
    with TestClient(create_app(platform)) as client:
        played = play_round(platform, clock, client, families=families, seed=14)
        frozen, proofs, checkpoint = close_and_draw(platform, clock, client, played)
        exported = client.get(f"/api/v1/rounds/{played.round_id}/export")
        document = exported.json()
        log = client.get("/api/v1/draw/log").json()
        published = client.get(f"/api/v1/rounds/{played.round_id}").json()
        extension = client.get(f"/api/v1/draw/log?from_size={checkpoint['size']}").json()
    return Drawn(played, frozen, document, proofs, log, published, checkpoint, extension,
                 exported.content)


def _verify(drawn: Drawn, document: dict[str, Any] | None = None, **kwargs: Any) -> Verdict:
    return verify_round(drawn.document if document is None else document,
                        trust=[drawn.played.chain_key], **kwargs)


def test_the_independent_verifier_agrees_with_fairslot_and_refuses_each_change(
        platform: Platform, clock: FixedClock, backend: str) -> None:
    # 300 entries on SQLite, 120 on PostgreSQL (the same paths, in a third of the time).
    drawn = draw_through_the_api(platform, clock, FAMILIES[backend])
    _agrees(drawn)
    _refuses_changed_documents(drawn)
    _checks_receipts_and_proofs(drawn)
    _audits_the_log(drawn)


def _audits_the_log(drawn: Drawn) -> None:
    """The checkpoint a patient kept while the round was frozen is extended by the log
    after the draw (by the consistency proof and by the whole log); a changed proof or a
    changed record is caught."""
    assert audit(drawn.checkpoint, drawn.extension).ok
    assert audit(drawn.checkpoint, drawn.log).ok
    assert drawn.extension["checkpoint"]["size"] > drawn.checkpoint["size"]
    bent = copy.deepcopy(drawn.extension)
    bent["proof"][0] = "0" * 64
    assert audit(drawn.checkpoint, bent).status == "fail"
    rewritten = copy.deepcopy(drawn.log)
    rewritten["records"][0]["round_id"] = "rewritten"
    assert audit(drawn.checkpoint, rewritten).status == "fail"


def _agrees(drawn: Drawn) -> None:
    played, document = drawn.played, drawn.document
    receipts = [r for e in played.entrants for r in e.receipts]
    verdict = verify_round(drawn.raw, trust=[played.chain_key], receipts=receipts,
                           proofs=drawn.proofs, log=drawn.log)
    assert verdict.ok, verdict.reason
    # The round's API names the same commitment, root, seed and beacon.
    page = drawn.published
    assert page["commitment"] == document["opening"]["commitment"]
    assert page["entries_digest"] == document["freeze"]["root"]
    assert page["seed"] == document["result"]["seed"]
    assert page["beacon"] == document["beacon"]["signature"]
    assert page["beacon_round"] == document["opening"]["beacon_round"]
    # The list is what the patients did: every entry, at its last write, with its status.
    assert sorted(document["entries"]) == sorted(e.expected_line() for e in played.entrants)
    assert len(document["entries"]) == len(played.entrants) >= 120
    counts = {s: sum(line.split(" ")[2] == s for line in document["entries"])
              for s in ("in", "withdrawn", "excluded")}
    assert counts["withdrawn"] == len(played.entrants) // 12 and counts["excluded"] == 4
    # The recomputed draw is the one published, in the document and on the round's page.
    assert list(verdict.winners) == document["results"]["winners"]
    assert list(verdict.waitlist) == document["results"]["waitlist"]
    assert len(verdict.winners) == 4 * CAPACITY
    assert len(verdict.winners) + len(verdict.waitlist) == counts["in"]
    # The round's public page lists the drawn entries with their outcome and position:
    # the winners first, then the waitlist, each in draw order.
    published = sorted(drawn.published["entries"], key=lambda e: e["position"])
    winners = [w.split(" ")[0] for w in verdict.winners]
    assert [e["ref"] for e in published] == winners + list(verdict.waitlist)
    assert [e["outcome"] for e in published] == (["won"] * len(winners)
                                                + ["waitlist"] * len(verdict.waitlist))
    # While frozen, the same verifier found the list checked and the draw pending.
    assert _verify(drawn, drawn.frozen, receipts=receipts).status == "pending"


def _refuses_changed_documents(drawn: Drawn) -> None:
    document = drawn.document
    entries = document["entries"]
    # One entry changed: its choices, its status.
    i = next(n for n, line in enumerate(entries) if line.split(" ")[2] == "in")
    ref, seq, _, choices, _ = entries[i].split(" ")
    other = next(s for s in document["opening"]["capacities"] if s not in choices.split(","))
    for line in (f"{ref} {seq} in {other} -", f"{ref} {seq} withdrawn {choices} -"):
        changed = copy.deepcopy(document)
        changed["entries"][i] = line
        verdict = _verify(drawn, changed)
        assert verdict.status == "fail" and "frozen root" in verdict.reason, verdict
    # One entry dropped.
    dropped = copy.deepcopy(document)
    del dropped["entries"][i]
    verdict = _verify(drawn, dropped)
    assert verdict.status == "fail" and "frozen root" in verdict.reason, verdict
    # The beacon: another round's number, or a signature the chain did not make.
    later = copy.deepcopy(document)
    later["beacon"]["round"] += 1
    assert _verify(drawn, later).status == "fail"
    # A beacon value that is a valid signature, but of another chain's round (the worked
    # example's), and bytes that are no point at all.
    for signature in (EXAMPLE_BEACON, document["opening"]["chain"]["public_key"][:96]):
        forged = copy.deepcopy(document)
        forged["beacon"]["signature"] = signature
        verdict = _verify(drawn, forged)
        assert verdict.status == "fail" and "chain's signature" in verdict.reason, verdict
    # Two winners swapped, a winner moved to the waitlist.
    swapped = copy.deepcopy(document)
    w = swapped["results"]["winners"]
    w[0], w[1] = w[1], w[0]
    assert "results do not hash" in _verify(drawn, swapped).reason
    # A chain nobody said to trust.
    assert verify_round(document).status == "fail"


def _checks_receipts_and_proofs(drawn: Drawn) -> None:
    played = drawn.played
    changed = next(e for e in played.entrants if len(e.receipts) > 1)
    # An earlier receipt of an entry written again later is fine; the last one matches.
    assert _verify(drawn, receipts=changed.receipts[:1]).ok
    # A receipt altered after signing.
    for field, value in (("seq", changed.seq + 1), ("choices", ["1"]), ("ref", "0" * 16)):
        altered = dict(changed.receipts[-1], **{field: value})
        verdict = _verify(drawn, receipts=[altered])
        assert verdict.status == "fail" and "receipt" in verdict.reason, (field, verdict)
    # A list that dropped the entry, or its last write, contradicts the genuine receipt.
    # (In a whole document the changed list breaks the signed root first, section 8.)
    lines = parse_lines(drawn.document["entries"], drawn.document["opening"]["capacities"],
                        drawn.document["opening"]["max_choices"])
    by_ref = {line.ref: line for line in lines}
    receipt = changed.receipts[-1]
    check_receipt(receipt, drawn.document, by_ref)
    for listed in ({}, {changed.ref: dataclasses.replace(by_ref[changed.ref],
                                                         seq=changed.seq - 1)}):
        with pytest.raises(Problem) as refused:
            check_receipt(receipt, drawn.document, listed)
        assert refused.value.status == "fail"
    withdrawn = next(e for e in played.entrants if e.withdrawn)
    relisted = {withdrawn.ref: dataclasses.replace(by_ref[withdrawn.ref], status="in")}
    with pytest.raises(Problem):
        check_receipt(withdrawn.receipts[-1], drawn.document, relisted)
    # A proof with another leaf, or another path.
    proof = drawn.proofs[0]
    assert _verify(drawn, proofs=[proof]).ok
    other_leaf = dict(proof, leaf=drawn.proofs[1]["leaf"])
    assert _verify(drawn, proofs=[other_leaf]).status == "fail"
    bent = dict(proof, path=list(reversed(proof["path"])))
    assert _verify(drawn, proofs=[bent]).status == "fail"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_independent_verifier_agrees_on_leftover_rounds(platform: Platform,
                                                            clock: FixedClock) -> None:
    """Fewer entries than slots: everyone wins, and each session's slots left over go to a
    short round of its own (kind ``leftover``), drawn and published the same way; an empty
    one too (its list is empty, its root SHA-256 of nothing)."""
    world = build_world(platform, residents=40)
    _, sessions = _draw_round(platform, clock, world)
    with TestClient(create_app(platform)) as client:
        round_id = _round_of(client, sessions)
        chain_key = client.get(f"/api/v1/rounds/{round_id}/export").json()[
            "opening"]["chain"]["public_key"]
        account, patients, token = world.patient_account("first", patients=5)
        patient_of = {}
        for pid in patients:
            answer = _enter(client, clock, token, round_id, pid, sessions[:2])
            assert answer.status_code == 201, answer.text
            patient_of[answer.json()["ref"]] = pid
        close_and_draw(platform, clock, client, Played(round_id, [], sessions, chain_key))
        first = client.get(f"/api/v1/rounds/{round_id}/export").json()
        verdict = verify_round(first, trust=[chain_key])
        assert verdict.ok and not verdict.waitlist and len(verdict.winners) == 5
        leftovers = [r for r in client.get("/api/v1/rounds").json() if r["kind"] == "leftover"]
        assert len(leftovers) == len(sessions)
        busy, *_ = leftovers
        (session,) = [s["session_id"] for s in busy["sessions"]]
        capacity = busy["sessions"][0]["capacity"]
        # A winner cannot enter a short round of the session it holds a slot in.
        winner = next(patient_of[w.split(" ")[0]] for w in first["results"]["winners"]
                      if w.split(" ")[1] == str(session))
        refused = _enter(client, clock, platform.run(accounts.issue_token, account.id or 0),
                         busy["id"], winner, [session])
        assert refused.status_code == 409 and refused.json()["code"] == "already_booked"
        for family in ("second", "third"):
            _, others, other_token = world.patient_account(family, patients=5)
            for pid in others:
                answer = _enter(client, clock, other_token, busy["id"], pid, [session])
                assert answer.status_code == 201, answer.text
        close_and_draw(platform, clock, client, Played(busy["id"], [], [session], chain_key),
                       drawn_rounds=len(leftovers))
        documents = [client.get(f"/api/v1/rounds/{r['id']}/export").json() for r in leftovers]
    for document in documents:
        verdict = verify_round(document, trust=[chain_key])
        assert verdict.ok, verdict.reason
        assert document["parameters"]["kind"] == "leftover"
        assert list(verdict.winners) == document["results"]["winners"]
        assert list(verdict.waitlist) == document["results"]["waitlist"]
    assert len(documents[0]["entries"]) == 10
    assert len(verdict.winners) == 0 and documents[-1]["entries"] == []
    verdict = verify_round(documents[0], trust=[chain_key])
    assert len(verdict.winners) == capacity and len(verdict.waitlist) == 10 - capacity
