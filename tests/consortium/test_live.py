"""Two fairslot hospitals on this machine, each its own server, database and master secret
(A on SQLite, B on PostgreSQL), and a hub: a ring confirmed at A is refused at B after one
sync, a withdrawal at A stops applying at both, an appeal made at B reaches A, not one raw
identifier is in A's feed, and B keeps working from its last good state (and reads A through
the hub) when A is down."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import pathlib
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fairslot.clock import FixedClock, SystemClock
from fairslot.consortium import Action, Consortium
from fairslot.consortium.pseudonyms import EpochKey
from fairslot.crypto import Keyring
from fairslot.storage.database import make_engine
from fairslot.storage.keys import bind_keyring
from fairslot.storage.migrate import upgrade
from tests.conftest import PG_ADMIN_URL, wait_until_serving

# One story on one set of servers: under `pytest -n 2 --dist loadgroup` the tests of this
# module must run in order on one worker.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("consortium-live")]

RING_ID = "110101198805054321"
RING_PHONE = "13911112222"
RING_PAYER = "alipay:ring-hub-77@example.com"
RING_DEVICE = "dev-5f3a9c"
LONE_ID = "32010619700101003X"
APPEAL_ID = "440301199912120011"


@dataclasses.dataclass
class Hospital:
    code: str
    url: str
    db_url: str
    secret: str
    engine: sa.Engine
    process: subprocess.Popen[Any] | None = None

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("FAIRSLOT_")}
        return {**base, "FAIRSLOT_DATABASE_URL": self.db_url, "FAIRSLOT_SECRET_KEY": self.secret,
                "FAIRSLOT_SCHEDULER": "false"}

    def consortium(self, clock: Any = None) -> Consortium:
        # One process plays every hospital: each engine reads its PII under its own key.
        bind_keyring(self.engine, Keyring(self.secret.encode()))
        return Consortium(self.engine, clock or SystemClock())

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fairslot.cli", "consortium", *args],
                              env=self.env, capture_output=True, text=True, timeout=300,
                              input=stdin, check=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Live:
    a: Hospital
    b: Hospital
    hub: Hospital
    tmp: pathlib.Path


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
    hospitals = []
    for code, url in (("hosp-a", f"sqlite:///{tmp / 'a.db'}"), ("hosp-b", pg_url),
                      ("hub-east", f"sqlite:///{tmp / 'hub.db'}")):
        engine = make_engine(url)
        upgrade(engine)
        hospitals.append(Hospital(code, f"http://127.0.0.1:{_port()}", url,
                                  f"{code}-secret-" + uuid.uuid4().hex, engine))
    a, b, hub = hospitals
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
    b.consortium().set_policy("ring_member", Action.REFUSE, actor="setup")
    try:
        for h in (a, b):
            h.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "fairslot.web.asgi:app", "--port",
                 h.url.rsplit(":", 1)[1], "--log-level", "warning"], env=h.env)
        hub.process = subprocess.Popen(
            [sys.executable, "-m", "fairslot.cli", "consortium", "hub", "--port",
             hub.url.rsplit(":", 1)[1]], env=hub.env)
        for h in hospitals:
            assert h.process is not None
            wait_until_serving(h.url, h.process)
        yield Live(a, b, hub, tmp)
    finally:
        for h in hospitals:
            h.stop()
            h.engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_ring_confirmed_at_a_is_refused_at_b_after_one_sync(live: Live) -> None:
    folder = live.tmp / "investigation"
    folder.mkdir()
    with (folder / "suspects.csv").open("w", newline="") as handle:  # --pii clear output
        out = csv.writer(handle)
        out.writerow(["entity_type", "entity_id", "score", "ring_id", "reasons", "role"])
        out.writerows([("account", "812", "0.97", "R7", "", "holder"),
                       ("patient", RING_ID, "0.93", "R7", "", "held_identity"),
                       ("phone", RING_PHONE, "0.8", "R7", "", "member"),
                       ("payer", RING_PAYER, "0.95", "R7", "", "payment_hub"),
                       ("device", RING_DEVICE, "0.7", "R7", "", "member"),
                       ("patient", "110101199001010011", "0.6", "R8", "", "held_identity")])
    assert live.b.consortium().check(identity=RING_ID) == []
    published = ok(live.a.cli("publish", "ring", str(folder), "--ring", "R7"))
    assert "published 4 entries" in published and "1 account (not shared)" in published
    synced = ok(live.b.cli("sync"))
    assert "hosp-a: v4, 4 changes applied" in synced
    looked = ok(live.b.cli("inspect", "--identity", RING_ID, "--payer", RING_PAYER))
    assert looked.count("-> refuse") == 2
    b = live.b.consortium()
    assert {(m.subject_type.value, m.action) for m in b.check(
        identity=RING_ID, phone="+86 139 1111 2222", device=RING_DEVICE)} == {
        ("identity", Action.REFUSE), ("phone", Action.REFUSE), ("device", Action.REFUSE)}
    assert b.check(identity="110101199001010011") == []  # ring R8 was not confirmed


def test_a_withdrawal_at_a_stops_applying_at_a_and_at_b(live: Live) -> None:
    out = ok(live.a.cli("publish", "entry", "--kind", "ring_member", "--identity", "-",
                        "--days", "60", "--source", "case 88", stdin=LONE_ID + "\n"))
    ref = out.split()[1]
    ok(live.b.cli("sync"))
    assert "-> refuse" in ok(live.b.cli("inspect", "--identity", LONE_ID))
    assert "-> hold" in ok(live.a.cli("inspect", "--identity", LONE_ID))  # A's default
    ok(live.a.cli("withdraw", ref.split("/")[1], "--reason", "wrong person"))
    assert "1 changes applied" in ok(live.b.cli("sync"))
    for h in (live.a, live.b):
        assert "no entry in force" in ok(h.cli("inspect", "--identity", LONE_ID))
    # B's own feed is served by B's server as well: A pulls it.
    ok(live.b.cli("publish", "entry", "--kind", "no_show_suspension", "--identity",
                  APPEAL_ID, "--days", "30", "--source", "3rd no-show", "--severity", "3"))
    assert "hosp-b: v1, 1 changes applied" in ok(live.a.cli("sync", "--member", "hosp-b"))


def test_an_appeal_made_at_b_reaches_a_with_the_pseudonym_and_message_only(
        live: Live) -> None:
    out = ok(live.a.cli("publish", "entry", "--kind", "ring_member", "--identity", APPEAL_ID,
                        "--days", "90", "--source", "case 91"))
    entry = out.split()[1]
    ok(live.b.cli("sync"))
    bad = live.b.cli("appeal", "send", entry, "--identity", RING_ID, "--message", "x")
    assert bad.returncode == 2 and bad.stderr.startswith("error: entry hosp-a/")
    assert bad.stderr.count("\n") == 1
    sent = ok(live.b.cli("appeal", "send", entry, "--identity", APPEAL_ID, "--message",
                         "I was in hospital abroad that month."))
    assert ": delivered" in sent
    received = ok(live.a.cli("appeal", "list"))
    assert "from hosp-b about " + entry in received
    assert "I was in hospital abroad that month." in received
    [appeal] = live.a.consortium().store.appeals(direction="in")
    assert APPEAL_ID not in repr(dataclasses.astuple(appeal))


def _forms(value: str) -> set[str]:
    digits = "".join(c for c in value if c.isdigit())
    forms = {value, value.lower(), value.upper(), value.partition(":")[2]}
    if len(digits) == 11:
        forms |= {digits, "+86" + digits, "86" + digits}
    return {f for f in forms if len(f) >= 6}


def test_not_one_raw_identifier_is_in_a_feed_as_a_serves_it_or_the_hub_relays_it(
        live: Live) -> None:
    b = live.b.consortium()
    me = b.store.self_row()
    assert me is not None
    ok(live.hub.cli("sync"))
    secrets_ = set().union(*(_forms(v) for v in (RING_ID, RING_PHONE, RING_PAYER, RING_DEVICE,
                                                 LONE_ID, APPEAL_ID)))
    from fairslot.consortium.signing import sign_request

    for base in (live.a.url, live.hub.url):
        path = "/api/v1/consortium/feeds/hosp-a?since=0"
        with httpx.Client() as client:
            response = client.get(base + path, headers=sign_request(
                me.key, "GET", path, b"", dt.datetime.now(dt.UTC)))
        assert response.status_code == 200
        raw = response.content + b"\n" + b"\n".join(
            k + b": " + v for k, v in response.headers.raw)
        assert len(response.json()["changes"]) >= 7
        text = raw.decode("utf-8")
        for form in secrets_:
            assert form not in text, f"{form!r} found in the feed from {base}"
        for change in response.json()["changes"]:
            import json

            body = json.loads(change["body"])
            assert set(body) <= {"member", "version", "entry", "entry_version", "status",
                                 "kind", "role", "severity", "starts_at", "expires_at",
                                 "subject", "pseudonym", "epoch"}


def test_b_keeps_its_last_good_state_when_a_is_down_and_reads_a_through_the_hub(
        live: Live) -> None:
    ok(live.a.cli("publish", "entry", "--kind", "ring_member", "--phone", "13022223333",
                  "--days", "30", "--source", "case 95"))
    ok(live.hub.cli("sync"))  # the hub holds A's newest version
    live.a.stop()
    synced = ok(live.b.cli("sync"))
    assert "changes applied via hub hub-east" in synced
    b = live.b.consortium()
    assert b.check(phone="13022223333") and b.check(identity=RING_ID)
    assert "member: unreachable" in (b.store.member("hosp-a").error or "")  # type: ignore[union-attr]
    live.hub.stop()
    failed = live.b.cli("sync")
    assert failed.returncode == 1 and "hosp-a: not updated, kept v" in failed.stderr
    assert b.check(identity=RING_ID)  # the last good state keeps applying
    later = live.b.consortium(FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)))
    [status] = [s for s in later.status() if s.member.code == "hosp-a"]
    assert status.stale and status.entries >= 5
    listed = ok(live.b.cli("members", "list"))
    assert "last error: member: unreachable" in listed and "hub hub-east: unreachable" in listed
