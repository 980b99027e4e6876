"""Two fairslot hospitals on this machine, each its own server, database and master secret
(A on SQLite, B on PostgreSQL), and a hub. The servers start once, with a feed interval of
one second (``FAIRSLOT_CONSORTIUM_SYNC_SECONDS``), and the story runs on them in order:

- a ring an investigator at A confirms (one command) is refused at B's registration and
  booking within one feed interval, and at A's own;
- a patient's appeal made on B's API reaches A; A withdraws the entry, and it stops applying
  at both within one feed interval;
- not one raw ID number, phone or payer is in any byte of a feed, as its issuer serves it or
  the hub relays it;
- when A is down, B reads A's feed through the hub, and when the hub is down too B keeps
  enforcing its last good state.

Set-up (keys, members, the hospitals' records) runs in this process on each hospital's own
database; everything a patient does goes through the servers' HTTP API."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import multiprocessing
import os
import pathlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import Result
from pydantic import SecretStr
from typer.testing import CliRunner

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock, SystemClock
from fairslot.consortium import Action, Consortium
from fairslot.consortium.pseudonyms import EpochKey
from fairslot.consortium.signing import sign_request
from fairslot.storage.database import make_engine
from fairslot.storage.migrate import upgrade
from tests.conftest import PG_ADMIN_URL, World, build_world, make_settings, wait_until_serving

# One story on one set of servers: under `pytest -n 2 --dist loadgroup` the tests of this
# module run in order on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("consortium-live")]

FEED_INTERVAL = 1.0
# One feed interval, plus what one sync and one look-up take on this shared, loaded machine
# (the figures printed are the ones measured).
WITHIN = FEED_INTERVAL + 4.0
RING_PHONE = "13911112222"
RING_PAYER = "alipay:ring-hub-77@example.com"
RING_DEVICE = "dev-5f3a9c"
OTHER_RING_ID = "110101199001010011"


@dataclasses.dataclass
class Hospital:
    code: str
    url: str
    db_url: str
    secret: str
    platform: Platform
    tmp: pathlib.Path
    process: _ForkedServer | None = None
    world: World | None = None
    thread_server: _HubServer | None = None

    @property
    def env(self) -> dict[str, str]:
        return _server_env(self.db_url, self.secret)

    def consortium(self, clock: Any = None) -> Consortium:
        """A fresh look at this hospital's consortium state (its index built from its
        database now)."""
        return Consortium(self.platform.engine, clock or SystemClock())

    def cli(self, *args: str) -> Result:
        """``fairslot consortium ...`` as this hospital's operator runs it (in this process:
        the command reads its settings from the environment it is given)."""
        from fairslot.cli.main import app

        env = {k: v for k, v in self.env.items() if k.startswith("FAIRSLOT_")}
        return CliRunner().invoke(app, ["consortium", *args], env=env)

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + "/api/v1" + path, timeout=30,
                             headers={"Authorization": f"Bearer {token}",
                                      **kwargs.pop("headers", {})}, **kwargs)

    def book(self, token: str, session_id: int, patient_id: int) -> httpx.Response:
        screen = self.api("GET", f"/sessions/{session_id}/booking-screen", token)
        assert screen.status_code == 200, screen.text
        body = screen.json()
        return self.api("POST", "/bookings", token,
                        json={"session_id": session_id, "patient_id": patient_id},
                        headers={body["token_header"]: body["action_token"]})

    def stop(self) -> None:
        if self.thread_server is not None:
            self.thread_server.stop()
        if self.process is not None:
            self.process.stop()


def _server_env(db_url: str, secret: str) -> dict[str, str]:
    return {"FAIRSLOT_DATABASE_URL": db_url, "FAIRSLOT_SECRET_KEY": secret,
            "FAIRSLOT_SCHEDULER": "false", "FAIRSLOT_GUARD_LEDGER_PATH": "",
            "FAIRSLOT_CONSORTIUM_SYNC_SECONDS": str(FEED_INTERVAL),
            "FAIRSLOT_GUARD_TOKEN_MIN_AGE_SECONDS": "0",
            "FAIRSLOT_PASSWORD_HASH_TIME_COST": "1", "FAIRSLOT_PASSWORD_HASH_MEMORY_KIB": "32"}


def _serve(env: dict[str, str], port: int) -> None:
    """A hospital's server: ``fairslot serve``'s app under uvicorn, with its own settings."""
    code = 0
    try:
        import uvicorn

        from fairslot.config import Settings
        from fairslot.web.app import create_app

        for key in [k for k in os.environ if k.startswith("FAIRSLOT_")]:
            del os.environ[key]
        os.environ.update(env)
        uvicorn.run(create_app(bootstrap(Settings())), host="127.0.0.1", port=port,
                    log_level="warning")
    except BaseException:
        code = 1
        raise
    finally:
        os._exit(code)  # nothing of the parent's to clean up here


class _ForkedServer:
    """A server process forked from this one, with the ``poll`` that
    ``wait_until_serving`` asks of a process."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(env, port), daemon=True)
        self.process.start()

    def poll(self) -> int | None:
        return None if self.process.is_alive() else self.process.exitcode

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=1)
        if self.process.is_alive():  # a test server: no state worth waiting for
            self.process.kill()
            self.process.join(timeout=10)


class _HubServer:
    """``fairslot consortium hub``'s app, served by uvicorn on a thread of this process."""

    def __init__(self, hub: Hospital) -> None:
        import uvicorn

        from fairslot.consortium.hub import create_hub_app

        app = create_hub_app(hub.platform.engine, SystemClock())
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=int(hub.url.rsplit(":", 1)[1]), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "hub did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclasses.dataclass
class Patient:
    account_id: int
    patient_id: int
    id_number: str
    token: str


@dataclasses.dataclass
class Live:
    a: Hospital
    b: Hospital
    hub: Hospital
    tmp: pathlib.Path
    ring_at_a: Patient
    ring_at_b: Patient
    other_at_b: Patient
    notes: dict[str, float] = dataclasses.field(default_factory=dict)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _patient(world: World, username: str) -> Patient:
    account, (pid,), token = world.patient_account(username)
    with world.platform.uow() as uow:
        patient = uow.patients.get(pid)
    assert patient is not None
    return Patient(account.id or 0, pid, patient.id_number, token)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("consortium")
    pg_name = f"fairslot_consortium_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{pg_name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is unreachable at {PG_ADMIN_URL}: {exc.orig}", pytrace=False)
    pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}"
    admin.dispose()
    urls = {"hosp-a": f"sqlite:///{tmp / 'a.db'}", "hosp-b": pg_url,
            "hub-east": f"sqlite:///{tmp / 'hub.db'}"}
    for url in urls.values():
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    ports = {code: _port() for code in urls}
    secrets = {code: f"{code}-secret-" + uuid.uuid4().hex for code in urls}
    # The two hospitals' servers are forked from this process, which has imported fairslot
    # already: they start in a moment instead of importing the web app anew, and they hold
    # no connection of this process's (every engine here is made after the fork).
    forked = {code: _ForkedServer(_server_env(urls[code], secrets[code]), ports[code])
              for code in ("hosp-a", "hosp-b")}
    hospitals = []
    for code, url in urls.items():
        platform = bootstrap(make_settings(database_url=url,
                                           secret_key=SecretStr(secrets[code])))
        hospitals.append(Hospital(code, f"http://127.0.0.1:{ports[code]}", url, secrets[code],
                                  platform, tmp, forked.get(code)))
    a, b, hub = hospitals
    try:
        # The hub (a relay, no patients) serves from a thread of this process: a third
        # server process would only cost another start-up.
        hub.thread_server = _HubServer(hub)
        # The same residents live in both cities; the ring's member is a patient at both.
        a.world, b.world = build_world(a.platform), build_world(b.platform)
        ring_at_a, ring_at_b = _patient(a.world, "ringer"), _patient(b.world, "ringer")
        assert ring_at_a.id_number == ring_at_b.id_number
        other_at_b = _patient(b.world, "bystander")
        epoch = EpochKey.new(1)
        keys = {}
        for h in hospitals:
            c = h.consortium()
            keys[h.code] = c.create_key(h.code, h.code.upper(), actor="setup").public_text
            if h is not hub:
                c.store.add_epoch(epoch, c.clock.now(), "setup")
        for h in hospitals:
            c = h.consortium()
            for other in hospitals:
                if other is not h:
                    c.add_member(other.code, other.url, keys[other.code],
                                 hub=other is hub and h is not hub, actor="setup")
            if h is not hub:
                c.set_policy("ring_member", Action.REFUSE, actor="setup")
        hub.thread_server.start()
        for h in (a, b):
            assert h.process is not None
            wait_until_serving(h.url, h.process)
        yield Live(a, b, hub, tmp, ring_at_a, ring_at_b, other_at_b)
    finally:
        for h in hospitals:
            h.stop()
            h.platform.engine.dispose()
        admin = sa.create_engine(
            PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()


def _until(what: str, ready: Callable[[], bool], seconds: float) -> float:
    """Poll until ``ready``; the seconds it took. Fails after ``seconds``."""
    start = time.monotonic()
    while not ready():
        if time.monotonic() - start > seconds:
            pytest.fail(f"{what}: not within {seconds:.1f} s")
        time.sleep(0.05)
    return time.monotonic() - start


def _listed(h: Hospital, p: Patient) -> list[dict[str, Any]]:
    r = h.api("GET", "/me/shared-list", p.token)
    assert r.status_code == 200, r.text
    return list(r.json())


def test_a_ring_banned_at_a_is_refused_at_b_within_one_feed_interval(live: Live) -> None:
    a, b, ring = live.a, live.b, live.ring_at_b
    assert b.world is not None and a.world is not None
    assert _listed(b, ring) == []
    folder = live.tmp / "investigation"
    folder.mkdir()
    with (folder / "suspects.csv").open("w", newline="") as handle:  # --pii clear output
        out = csv.writer(handle)
        out.writerow(["entity_type", "entity_id", "score", "ring_id", "reasons", "role"])
        out.writerows([("account", "812", "0.97", "R7", "", "holder"),
                       ("patient", ring.id_number, "0.93", "R7", "", "held_identity"),
                       ("phone", RING_PHONE, "0.8", "R7", "", "member"),
                       ("payer", RING_PAYER, "0.95", "R7", "", "payment_hub"),
                       ("device", RING_DEVICE, "0.7", "R7", "", "member"),
                       ("patient", OTHER_RING_ID, "0.6", "R8", "", "held_identity")])
    published = a.cli("publish", "ring", str(folder), "--ring", "R7")  # the one command
    assert published.exit_code == 0, published.output
    assert "published 4 entries" in published.stdout
    assert "1 account (not shared)" in published.stdout
    took = _until("B lists A's entry", lambda: bool(_listed(b, ring)), WITHIN)
    live.notes["ban reached B (s)"] = took
    print(f"\nA's ring reached B's enforcement {took:.2f} s after it was published "
          f"(feed interval {FEED_INTERVAL:.0f} s)")
    [item] = _listed(b, ring)
    assert (item["issuer"], item["kind"], item["action"]) == ("hosp-a", "ring_member", "refuse")

    refused = b.book(ring.token, b.world.session_ids[0], ring.patient_id)
    assert refused.status_code == 403 and refused.json()["code"] == "consortium_refused"
    assert "hosp-a/" in refused.text and "case" not in refused.text
    signup = httpx.post(b.url + "/api/v1/auth/register", timeout=30, json={
        "username": "ringphone", "password": "correct horse battery",
        "phone": "+86 139 1111 2222"})
    assert signup.status_code == 403 and signup.json()["code"] == "consortium_refused"
    assert b.book(live.other_at_b.token, b.world.session_ids[0],
                  live.other_at_b.patient_id).status_code == 201
    # The issuer's own entries apply at the issuer too, once its server has read what the
    # command stored (its next tick). Registering with the ring's phone shows when: until
    # then it makes an account, after it is refused.
    # Each probe is a whole registration (a password hash, a code sent), so under the
    # suite's busiest minute a few of them can outlast WITHIN: a clean-clone CI run once
    # failed at 5 s here while B had applied the entry in 0.13 s. A's bound is its own.
    attempts = iter(range(100))
    live.notes["A applied its own entry (s)"] = _until(
        "A's own server applies its entry", lambda: httpx.post(
            a.url + "/api/v1/auth/register", timeout=30, json={
                "username": f"probe{next(attempts)}", "password": "correct horse battery",
                "phone": RING_PHONE}).status_code == 403, WITHIN + 10.0)
    at_a = a.book(live.ring_at_a.token, a.world.session_ids[0], live.ring_at_a.patient_id)
    assert at_a.status_code == 403 and at_a.json()["code"] == "consortium_refused"


def test_an_appeal_at_b_reaches_a_and_a_withdrawal_stops_applying_at_both(live: Live) -> None:
    a, b, ring = live.a, live.b, live.ring_at_b
    assert a.world is not None and b.world is not None
    [item] = _listed(b, ring)
    sent = b.api("POST", "/me/shared-list/appeals", ring.token, json={
        "entry": item["entry"], "message": "My ID card was stolen; police report 2026-0113."})
    assert sent.status_code == 201 and sent.json()["status"] == "delivered", sent.text
    [received] = a.consortium().store.appeals(direction="in")
    assert received.member == "hosp-b" and "police report" in received.message
    assert ring.id_number not in repr(dataclasses.astuple(received))
    a.consortium().decide_appeal(received.ref, withdraw=True, note="theft confirmed",
                                 actor="investigator")
    took = _until("the withdrawal reaches B", lambda: _listed(b, ring) == [], WITHIN)
    live.notes["withdrawal reached B (s)"] = took
    print(f"\nA's withdrawal stopped applying at B {took:.2f} s after it was made")
    assert b.book(ring.token, b.world.session_ids[0], ring.patient_id).status_code == 201
    _until("the withdrawal applies at A's own server",
           lambda: a.book(live.ring_at_a.token, a.world.session_ids[0],  # type: ignore[union-attr]
                          live.ring_at_a.patient_id).status_code == 201, WITHIN)
    [appeal] = b.consortium().store.appeals(direction="out")
    assert appeal.status == "withdrawn"
    for h in (a, b):
        log = h.consortium().store.audit_log(200)
        assert {"appeal.updated"} <= {r["action"] for r in log}
        assert not any(ring.id_number in repr(r) for r in log)


# -- every byte of a feed ----------------------------------------------------------------------

# Any resident ID number or mainland mobile number, whoever's, not inside a longer run of hex
# (pseudonyms and hashes are hex) or letters and digits (signatures are base64).
_ID_NUMBER = re.compile(rb"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(rb"(?<![0-9A-Za-z])(?:\+?86)?1[3-9]\d{9}(?![0-9A-Za-z])")
_PAYER = re.compile(rb"(?i)alipay|wechat|wxid|unionpay|card:|@")


def _forms(value: str) -> set[bytes]:
    digits = "".join(c for c in value if c.isdigit())
    forms = {value, value.lower(), value.upper(), value.partition(":")[2]}
    if len(digits) == 11:
        forms |= {digits, "+86" + digits, "86" + digits, "0086" + digits}
    encoded = {f.encode() for f in forms if len(f) >= 6}
    return encoded | {f.hex().encode() for f in encoded}


def _feed_bytes(base: str, member: str, reader: Hospital) -> tuple[bytes, int]:
    """Every page of ``member``'s feed as ``base`` serves it to ``reader``, bytes and
    headers, and the number of changes."""
    me = reader.consortium().store.self_row()
    assert me is not None
    raw, since, changes = b"", 0, 0
    with httpx.Client(timeout=30) as client:
        while True:
            path = f"/api/v1/consortium/feeds/{member}?since={since}"
            r = client.get(base + path, headers=sign_request(
                me.key, "GET", path, b"", dt.datetime.now(dt.UTC)))
            assert r.status_code == 200, r.text
            raw += r.content + b"\n" + b"\n".join(k + b": " + v for k, v in r.headers.raw)
            page = r.json()
            changes += len(page["changes"])
            for change in page["changes"]:
                assert set(json.loads(change["body"])) <= {
                    "member", "version", "entry", "entry_version", "status", "kind", "role",
                    "severity", "starts_at", "expires_at", "subject", "pseudonym", "epoch"}
            if page["head"]["version"] >= page["head"]["latest"]:
                return raw, changes
            since = page["head"]["version"]


def test_not_one_raw_identifier_is_in_any_byte_of_a_feed(live: Live) -> None:
    a, b, hub = live.a, live.b, live.hub
    # B publishes too (a no-show suspension and a payer), so that both directions are read.
    b_only = b.consortium()
    now = b_only.clock.now()
    from fairslot.consortium import EntryKind, NewEntry, SubjectType

    b_only.publish([NewEntry(EntryKind.NO_SHOW_SUSPENSION, None, 3, now,
                             now + dt.timedelta(days=30), SubjectType.IDENTITY,
                             live.other_at_b.id_number, "3rd no-show"),
                    NewEntry(EntryKind.RING_MEMBER, None, 2, now, now + dt.timedelta(days=30),
                             SubjectType.PAYER, "wechat:wxid_ring_b", "case B-4")],
                   actor="setup")
    assert hub.consortium().sync()[0].ok
    secrets = set().union(*(_forms(v) for v in (
        live.ring_at_b.id_number, live.other_at_b.id_number, OTHER_RING_ID, RING_PHONE,
        RING_PAYER, RING_DEVICE, "wechat:wxid_ring_b")))
    read = [(a.url, "hosp-a", b), (hub.url, "hosp-a", b), (b.url, "hosp-b", a),
            (hub.url, "hosp-b", a)]
    for base, member, reader in read:
        raw, changes = _feed_bytes(base, member, reader)
        assert changes >= 2, (base, member)
        where = f"{member}'s feed from {base}"
        for form in secrets:
            assert form not in raw, f"{form!r} found in {where}"
        assert not _ID_NUMBER.search(raw), f"an ID number in {where}"
        assert not _MOBILE.search(raw), f"a mobile number in {where}"
        assert not _PAYER.search(raw), f"a payer in {where}"
        assert b"case" not in raw and b"no-show" not in raw  # the issuer's evidence


def test_b_reads_a_through_the_hub_when_a_is_down_and_keeps_its_last_good_state(
        live: Live) -> None:
    a, b, hub = live.a, live.b, live.hub
    from fairslot.consortium import EntryKind, NewEntry, SubjectType

    c = a.consortium()
    now = c.clock.now()
    c.publish([NewEntry(EntryKind.RING_MEMBER, None, 2, now, now + dt.timedelta(days=30),
                        SubjectType.PHONE, "13022223333", "case 95")], actor="investigator")
    assert hub.consortium().sync()[0].ok  # the hub holds A's newest version
    a.stop()
    [result] = b.consortium().sync(["hosp-a"])
    assert result.ok and result.source == "hub hub-east", result
    bc = b.consortium()
    assert bc.check(phone="13022223333") and bc.check(phone=RING_PHONE)

    def a_recorded_unreachable() -> bool:
        # B's own server syncs every feed interval too: one that fetched from A just before
        # it went down may record its success after this sync's error; its next sync finds
        # A down as well.
        member = bc.store.member("hosp-a")
        return member is not None and "member: unreachable" in (member.error or "")

    _until("B records A as unreachable", a_recorded_unreachable, WITHIN)
    hub.stop()
    [failed] = b.consortium().sync(["hosp-a"])
    assert not failed.ok
    assert b.consortium().check(phone=RING_PHONE)  # the last good state keeps applying
    signup = httpx.post(b.url + "/api/v1/auth/register", timeout=30, json={
        "username": "ringphone2", "password": "correct horse battery", "phone": RING_PHONE})
    assert signup.status_code == 403 and signup.json()["code"] == "consortium_refused"
    later = b.consortium(FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)))
    [status] = [s for s in later.status() if s.member.code == "hosp-a"]
    assert status.stale and status.entries >= 4
