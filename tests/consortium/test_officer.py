"""The blacklist officer (docs/consortium.md, "The blacklist officer"): the services the
CLI and the page share refuse a role that may not publish and change nothing; the page
(``/consortium``) in both languages: an investigator publishes a patient of this hospital
and withdraws the entry, decides an appeal another hospital forwarded, and sees the matches
here, masked; an operator reads it and can change nothing; the desk cannot open it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import re
import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fairslot.bootstrap import Platform
from fairslot.consortium import EntryKind, NewEntry, RingRole, SubjectType
from fairslot.consortium.pseudonyms import EpochKey, pseudonym
from fairslot.domain.accounts import Role
from fairslot.domain.errors import Forbidden, InvalidInput
from fairslot.domain.identity import mask_id_number
from fairslot.services import booking, shared_list
from fairslot.services.context import RequestContext
from fairslot.services.shared_list import ConsortiumRefused
from fairslot.storage import tables as t
from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade
from fairslot.web.app import create_app
from tests.conftest import World, build_world
from tests.consortium.conftest import Pair
from tests.web.test_pages import HTML, alert, fields, submit

CTX = RequestContext(ip="203.0.113.79")
EVIDENCE = "case 2026-44: one payer behind 19 bookings"


@pytest.fixture
def hb(pair: Pair, platform: Platform) -> World:
    return build_world(dataclasses.replace(platform, consortium=pair.b))


def _officer_events(platform: Platform) -> int:
    with platform.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t.events).where(
            t.events.c.kind == "consortium.officer")).scalar_one()


def test_a_role_that_may_not_publish_is_refused_and_nothing_changes(
        pair: Pair, hb: World) -> None:
    run = hb.platform.run
    patient, _, _ = hb.patient_account("family21")
    [pid] = hb.patient_account("family22")[1]
    audit = len(pair.b.store.audit_log(1000))
    for role in (Role.OPERATOR, Role.REGISTRATION):
        staff = hb.staff[role]
        with pytest.raises(Forbidden):
            run(shared_list.publish, staff, kind=EntryKind.RING_MEMBER,
                role=RingRole.MEMBER, severity=2, days=30, source=EVIDENCE, patient_id=pid)
        with pytest.raises(Forbidden):
            run(shared_list.withdraw, staff, 1, "mistake")
        with pytest.raises(Forbidden):
            run(shared_list.decide_appeal, staff, str(uuid.uuid4()), withdraw=True,
                note="x")
        with pytest.raises(Forbidden):
            run(shared_list.lookup, staff, identity="110101199003074477")
    for nobody in (patient, hb.staff[Role.REGISTRATION]):
        with pytest.raises(Forbidden):
            run(shared_list.officer_view, nobody)
    assert pair.b.store.own_entries() == []
    assert len(pair.b.store.audit_log(1000)) == audit
    assert _officer_events(hb.platform) == 0

    # The officer may; the operator then reads the page's view, without appeals' words.
    investigator = hb.staff[Role.INVESTIGATOR]
    [entry] = run(shared_list.publish, investigator, kind=EntryKind.RING_MEMBER,
                  role=RingRole.HOLDER, severity=3, days=30, source=EVIDENCE,
                  patient_id=pid)
    assert entry.issuer == "hosp-b" and _officer_events(hb.platform) == 1
    _receive_appeal(pair, entry.entry_no, hb, pid, "not me: my card was stolen")
    view = run(shared_list.officer_view, hb.staff[Role.OPERATOR])
    assert not view.may_publish and [a.message for a in view.appeals] == [""]
    assert run(shared_list.officer_view, investigator).appeals[0].message.startswith("not me")
    [row] = [r for r in pair.b.store.audit_log(10) if r["action"] == "entry.published"]
    assert row["actor"] == "staff:staff-investigator"


def _receive_appeal(pair: Pair, entry_no: int, hb: World, pid: int, message: str) -> str:
    """Another member (A) forwards a patient's appeal about B's entry, as its sync would."""
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    ref = str(uuid.uuid4())
    pair.b.receive_appeal("hosp-a", {
        "ref": ref, "issuer": "hosp-b", "entry_no": entry_no, "message": message,
        "pseudonym": pseudonym(pair.epoch, SubjectType.IDENTITY, patient.id_number)})
    return ref


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_officer_page_publishes_withdraws_decides_and_shows_matches(
        pair: Pair, hb: World, lang: str) -> None:
    account, (pid,), _ = hb.patient_account("family23")
    [other] = hb.patient_account("family24")[1]
    with hb.platform.uow() as uow:
        patient, listed = uow.patients.get(pid), uow.patients.get(other)
    assert patient is not None and listed is not None
    # Another hospital's entry names a patient here: the booking is refused and recorded.
    now = pair.clock.now()
    pair.a.publish([NewEntry(EntryKind.RING_MEMBER, RingRole.BOOKER, 2, now,
                             now + dt.timedelta(days=90), SubjectType.IDENTITY,
                             patient.id_number, "A's own evidence")], actor="zhao")
    pair.b.sync()
    with pytest.raises(ConsortiumRefused):
        hb.platform.run(booking.book, account, pid, hb.session_ids[0], CTX)

    client = TestClient(create_app(hb.platform), headers=HTML)
    client.cookies.set("fs_lang", lang)
    client.cookies.set("fs_session", hb.token(Role.INVESTIGATOR))
    en = lang == "en"
    home = client.get("/").text
    assert 'href="/consortium"' in home
    page = client.get("/consortium").text
    assert ("Matches here and what was done" if en else "本院命中及处理") in page
    assert "hosp-a/1" in page, page[page.find("matches"):page.find("feeds")]
    assert ("Refused" if en else "不予预约") in page
    assert mask_id_number(patient.id_number) in page and patient.id_number not in page
    assert "A's own evidence" not in page
    feeds = page[page.index('id="feeds"'):]
    assert ("Latest entries received" if en else "最近收到的条目") in feeds
    assert "hosp-a/1 v1" in feeds

    r = submit(client, "/consortium", "/consortium/entries", kind="ring_member",
               role="payer", subject="phone", identifier="138 0013 8000", patient=str(other),
               severity="3", days="0", source=EVIDENCE)
    assert r.status_code == 422 and ("3650" in alert(r.text))
    # What was typed, but no identifier (the page's random hex tokens, such as the forms'
    # CSRF values, are left out of the search: one held "0013" once).
    assert EVIDENCE in r.text and "0013" not in re.sub(r"[0-9a-f]{32,}", "", r.text)
    r = submit(client, "/consortium", "/consortium/entries", kind="ring_member",
               role="payer", subject="phone", identifier="138 0013 8000", patient=str(other),
               severity="3", days="180", source=EVIDENCE)
    assert r.status_code == 303, alert(r.text)
    page = client.get(r.headers["location"]).text
    assert ("Published on the shared list" if en else "已发布到共享名单") in page
    assert "hosp-b/1" in page and "hosp-b/2" in page and EVIDENCE in page
    assert listed.id_number not in page and "13800138000" not in page
    assert len(pair.b.check(identity=listed.id_number)) == 1
    # The audit log names each event in the page's language, its key kept in a code tag.
    audit = page[page.index('id="audit"'):]
    assert ("Entry published" if en else "已发布条目") in audit
    assert '<code class="code-tag" lang="en">entry.published</code>' in audit
    assert audit.count("entry.published") == audit.count(">entry.published</code>")

    ref = _receive_appeal(pair, 2, hb, other, "Not me: police report 2026-0311.")
    page = client.get("/consortium").text
    assert "police report" in page
    audit = page[page.index('id="audit"'):]
    assert ("Appeal received" if en else "收到申诉") in audit
    assert '<code class="code-tag" lang="en">appeal.in.received</code>' in audit
    r = submit(client, "/consortium", "/consortium/appeals", ref=ref, decision="withdraw",
               note="identity theft confirmed")
    assert r.status_code == 303, alert(r.text)
    assert pair.b.check(identity=listed.id_number) == []
    assert pair.b.store.appeal(ref).status == "withdrawn"  # type: ignore[union-attr]
    r = submit(client, "/consortium", "/consortium/withdraw", entry="1", reason="")
    assert r.status_code == 422
    r = submit(client, "/consortium", "/consortium/withdraw", entry="1",
               reason="the phone was reassigned")
    assert r.status_code == 303, alert(r.text)
    assert [o.entry.withdrawn for o in pair.b.store.own_entries()] == [True, True]
    audit = client.get("/consortium").text.split('id="audit"', 1)[1]
    # A shared-list entry, not a draw entry (登记): the audit log says which.
    assert ("List entry withdrawn" if en else "条目已撤回") in audit
    assert "已撤回登记" not in audit
    actions = [r["action"] for r in pair.b.store.audit_log(20)]
    assert actions.count("entry.withdrawn") == 2 and "entry.published" in actions
    assert _officer_events(hb.platform) == 3  # published, appeal decided, withdrawn
    # A form posted without the page's token changes nothing.
    forged = client.post("/consortium/withdraw", data={"entry": "1", "reason": "x"},
                         follow_redirects=False)
    assert forged.status_code == 403

    # The operator reads the page and can change nothing; the desk cannot open it.
    client.cookies.set("fs_session", hb.token(Role.OPERATOR))
    page = client.get("/consortium")
    assert page.status_code == 200 and "hosp-b/2" in page.text
    assert 'action="/consortium/entries"' not in page.text and "police report" not in page.text
    assert EVIDENCE not in page.text
    data = fields(client.get("/consortium").text, "/logout") | {
        "kind": "ring_member", "subject": "identity", "identifier": listed.id_number,
        "days": "30", "source": EVIDENCE}
    refused = client.post("/consortium/entries", data=data, follow_redirects=False)
    assert refused.status_code == 403 and len(pair.b.store.own_entries()) == 2
    client.cookies.set("fs_session", hb.token(Role.REGISTRATION))
    assert client.get("/consortium").status_code == 403


def test_a_ring_from_an_investigation_goes_through_the_same_service(
        pair: Pair, hb: World, tmp_path: pathlib.Path) -> None:
    account, [pid], _ = hb.patient_account("ring-holder2", phone="13700004321")
    with hb.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    keys = hb.platform.keyring
    (tmp_path / "suspects.csv").write_text(
        "entity_type,entity_id,score,ring_id,reasons,role\n"
        f"account,{account.id},0.9,R4,,holder\n"
        f"patient,{keys.pseudonym('id_number', patient.id_number)},0.9,R4,,held_identity\n"
        f"patient,h:{'0' * 24},0.9,R4,,held_identity\n")
    run = hb.platform.run
    with pytest.raises(Forbidden):
        run(shared_list.publish_ring, hb.staff[Role.OPERATOR], tmp_path, ["R4"])
    with pytest.raises(InvalidInput) as unresolved:
        run(shared_list.publish_ring, hb.staff[Role.INVESTIGATOR], tmp_path, ["R4"])
    assert unresolved.value.code == "consortium_unresolved"
    assert pair.b.store.own_entries() == []
    done = run(shared_list.publish_ring, hb.staff[Role.INVESTIGATOR], tmp_path, ["R4"],
               days=90, skip_unresolved=True)
    assert [e.subject_type for e in done.published] == [SubjectType.IDENTITY]
    assert done.skipped == {"account (not shared)": 1} and done.unresolved == 1
    assert pair.b.check(identity=patient.id_number)[0].ref == done.published[0].ref


@pytest.mark.slow
def test_the_cli_acts_through_the_services_as_the_machines_user(
        tmp_path: pathlib.Path) -> None:
    from tests.cli.test_cli import fairslot
    from tests.conftest import TEST_SECRET

    url = f"sqlite:///{tmp_path / 'h.db'}"
    engine = make_engine(url)
    upgrade(engine)
    env = {"FAIRSLOT_DATABASE_URL": url, "FAIRSLOT_SECRET_KEY": TEST_SECRET}

    def cli(*args: str, stdin: str | None = None) -> str:
        r = fairslot("consortium", *args, cwd=tmp_path, env=env, input=stdin)
        assert r.returncode == 0, r.stderr
        return str(r.stdout)

    cli("keys", "--member", "hosp-c")
    cli("epoch", "add", "1", stdin=EpochKey.new(1).text() + "\n")
    out = cli("publish", "entry", "--kind", "ring_member", "--phone", "-", "--days", "30",
              "--source", EVIDENCE, stdin="13800138000\n")
    assert "published hosp-c/1 (ring_member, phone)" in out
    assert "withdrew hosp-c/1" in cli("withdraw", "1", "--reason", "reassigned number")
    with engine.connect() as conn:
        events = conn.execute(sa.select(t.events.c.detail).where(
            t.events.c.kind == "consortium.officer")).scalars().all()
        actors = conn.execute(sa.select(t.consortium_audit.c.actor).where(
            t.consortium_audit.c.action.like("entry.%"))).scalars().all()
    engine.dispose()
    assert [e["action"] for e in events] == ["published", "withdrawn"]
    assert all(a.startswith("cli:") for a in actors) and len(actors) == 2
    assert "13800138000" not in repr(events)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_demo_gives_the_officer_something_to_see(platform: Platform) -> None:
    from fairslot.services.demo import DEMO_USERS, seed_demo

    passwords = {name: "demo-password-1" for name in DEMO_USERS}
    seed_demo(platform.units, platform.deps, passwords, families=3)
    c = platform.consortium
    assert c is not None
    own = c.store.own_entries()
    assert [o.entry.withdrawn for o in own] == [False, False, True]
    assert [a.status for a in c.store.appeals()] == ["received"]
    assert [r.status for r in c.store.reviews()] == ["pending"]
    with platform.uow() as uow:
        investigator = uow.accounts.by_username("demo-investigator")
    assert investigator is not None
    view = platform.run(shared_list.officer_view, investigator)
    assert [m.outcome for m in view.matches] == ["hold"]
    assert not seed_demo(platform.units, platform.deps, passwords).created
