"""Live mode for the monitor: the ring tactics T1 to T9 (and genuine people: a patient
entering a draw round, six patients at the hospital's lobby kiosk, a family booking three
generations) over HTTP against a running fairslot, with an operator reading the alerts
through the API, so the monitor can be watched catching each tactic on a real server
(docs/monitoring.md, "Live run").

The agents, each with its own account(s), device and (through ``X-Forwarded-For``, which
the server believes only from its ``FAIRSLOT_TRUSTED_PROXIES``) address:

- ``genuine``: a person entering a draw round at a person's pace; ``kiosk``: six patients
  booking one after another at a kiosk on the hospital's own network (one device, one
  address, 1.6 s from screen to booking); ``family``: one account booking and paying for a
  grandmother, her daughter and her grandson at a person's pace;
- ``t1-api-bot``: an API client polling its session 20 times a second up to the release,
  then taking two slots for its preloaded patients within two seconds of it;
- ``t2-clicker``: an auto-clicker refreshing the doctor's page every 0.3 s and clicking
  "confirm" every 0.4 s until the guard takes the screen's token, for two patients;
- ``t3-farm``: an account on a virtual number entering made-up patients (names that are
  numbers, ID numbers with a wrong check digit);
- ``t4-launder``: books a slot for one patient, cancels it, and the ring's spare account
  (same address) books the freed slot for another patient (the buyer) seconds later; after
  the ``launder`` alert its hold for review meets the ring's next booking, which is held
  and cannot be paid;
- ``t5-spread``: one identity entering the draw rounds of four departments;
- ``t6-hub``: four accounts, twelve patients, one payment account paying for all of them;
- ``t8-crew``: two accounts booking the same three sessions in the same seconds after each
  one's release;
- ``t7-proxy``: two accounts booking eight ID numbers, every request leaving from the next
  exit of a twelve-network proxy pool;
- ``t9-broker``: a broker's phone (one device) registering two accounts and putting four
  of its clients' patients on each.

At most ``MAX_REQUESTS`` requests and ``MAX_SECONDS`` seconds; loopback targets only.

For each tactic the run records the moment the tactic became visible in what the agent did
(its *first event*: the bot's 120th request in a minute, the clicker's second booking
confirmed within 2.5 s of its screen, the farm's third made-up patient refused, the
rebooking, the fourth department's entry, the tenth patient's payment, the proxy ring's
request from its tenth network, the crew's third shared release, the seventh patient on
the broker's device) and the moment the operator, polling ``GET /api/v1/monitor/alerts``
every 0.2 s, first sees an alert of a scenario answering the tactic that names one of the
agent's accounts, patients, addresses or devices (a device is the id in the signed
``fs_device`` cookie the server minted; for the payer hub, whose blind index the client
cannot know, the first ``payer_fanout`` alert counts). Both on the client's clock.

``prepare_tactics`` makes what the agents need on the server's database before it serves
(``fairslot simulate --prepare-live``): two open first-come sessions (the T4 ring's and
everyone else's), one session released every ``SNIPE_EVERY_S`` seconds from 20 s after the
preparation for ten minutes (T1 and T2), three sessions released
seconds after the preparation (``lockstep`` counts actions within 10 minutes of a release,
so run the agents within ten minutes of preparing), four departments whose draw rounds are
open, the agents' residents in the identity registry, and an operator account."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import pathlib
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from fairslot.bootstrap import Platform
from fairslot.domain.accounts import Role
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_residents
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.guard.service import POW_HEADER
from fairslot.scheduler import run_due_jobs
from fairslot.services import accounts, catalog
from fairslot.simulation.live import LIVE_HOSPITAL, LiveRunRefused, check_target

__all__ = ["TACTICS", "TacticReport", "prepare_tactics", "run_tactics", "serve_stack",
           "solve_pow", "tactic_identities"]

MAX_REQUESTS = 3000
MAX_SECONDS = 150.0
SNIPE_EVERY_S = 15.0
"""The T1 and T2 sessions' releases are this far apart."""
ALERT_WAIT_S = 20.0
"""How long the operator keeps looking for a tactic's alert after its first event."""
_POLL_S = 0.2
_MIN_AGE = 1.6  # a little over the guard's minimum action-token age (1.5 s)
_IDENTITIES = 56
_PAYER = "alipay:hub-live@pay.example"
TACTICS: dict[str, tuple[str, ...]] = {
    "T1": ("release_snipe", "fast_action", "rate_account", "rate_device", "early_tokens",
           "guard_refusals"),
    "T2": ("fast_action", "release_snipe", "rate_account", "rate_device"),
    "T3": ("bad_identities", "bad_identity_burst", "fanout_phone", "surge_registrations",
           "surge_links"),
    "T4": ("launder",),
    "T5": ("identity_spread",),
    "T6": ("payer_fanout",),
    "T7": ("ip_rotation", "fanout_ip", "rate_ip_prefix", "guard_refusals"),
    "T8": ("lockstep",),
    "T9": ("fanout_device", "fanout_account"),
}
"""The tactics the live run plays, and the scenarios whose alert answers each."""


def tactic_identities(seed: int) -> list[Identity]:
    """The residents the tactic agents add as patients (same seed, same people)."""
    return make_residents(random.Random(f"live-tactics:{seed}"), _IDENTITIES)


def prepare_tactics(platform: Platform, seed: int, *, crew_release_in_s: float = 5.0,
                    snipe_from_s: float = 20.0) -> tuple[str, str]:
    """On a migrated database the server will serve: the tactic agents' sessions, rounds
    and residents, and an operator account. Returns the operator's username and password
    (a fresh one each time). Run it again for a fresh set (departments ``TAC<n>…``)."""
    with platform.uow() as uow:
        for identity in tactic_identities(seed):
            platform.verifier.register(uow, identity)
        uow.commit()
    hospital = platform.run(catalog.create_hospital, LIVE_HOSPITAL, "Simulator live target")
    with platform.uow() as uow:
        run = 1 + sum(1 for d in uow.schedule.departments(hospital.id or 0)
                      if d.code.startswith("TAC") and d.code.endswith("OPEN"))
    zone = platform.settings.zone
    now = platform.clock.now().astimezone(zone)

    def department(kind: str) -> int:
        made = platform.run(catalog.create_department, hospital.id or 0, f"TAC{run}{kind}",
                            f"Live {kind.lower()}")
        return made.id or 0

    def sessions(dep: int, doctor: str, release: dt.datetime, capacity: int,
                 policy: ReleasePolicy, *, hot: bool = False) -> None:
        doc = platform.run(catalog.create_doctor, dep, doctor, "Chief physician", "live",
                           release_policy=policy, hot=hot)
        visit = release.date() + dt.timedelta(days=3)
        platform.run(catalog.schedule_sessions, doc.id or 0, [visit], [Period.MORNING],
                     capacity, 30000, release_days_before=3,
                     release_time=release.time().replace(tzinfo=None, microsecond=0),
                     release_policy=policy)

    # Released a day ago, first come first served: T4 launders here.
    sessions(department("OPEN"), "Dr Open", now - dt.timedelta(days=1), 40,
             ReleasePolicy.FCFS)
    # Another open clinic: everyone but the T4 ring books here. (``launder``
    # pairs any cancellation with the next booking of the same session by another account
    # within 30 s, free slots or not: a family booking Dr Open's half-empty session in the
    # seconds after the T4 ring's cancellation is named in the ring's alert.)
    sessions(department("GEN"), "Dr General", now - dt.timedelta(days=1), 40,
             ReleasePolicy.FCFS)
    # Three sessions released together a few seconds from now: the T8 crew's releases.
    crew = department("CREW")
    release = now + dt.timedelta(seconds=crew_release_in_s + 1)
    for k in range(3):
        sessions(crew, f"Dr Crew {k + 1}", release, 4, ReleasePolicy.FCFS)
    # One session released every SNIPE_EVERY_S seconds for ten minutes from
    # ``snipe_from_s`` on: the T1 bot and the T2 clicker each take the first release far
    # enough ahead of them to wait for it, as they do for a real one.
    snipe = department("SNIPE")
    first = now.replace(microsecond=0) + dt.timedelta(seconds=snipe_from_s)
    for k in range(int(600 // SNIPE_EVERY_S)):
        sessions(snipe, f"Dr Snipe {k + 1}", first + dt.timedelta(seconds=k * SNIPE_EVERY_S),
                 4, ReleasePolicy.FCFS)
    # Four departments with a hot doctor each, released by draw in two hours: their
    # request windows are open now (T5 and the genuine entrant).
    for k in range(4):
        sessions(department(f"DRAW{k + 1}"), f"Dr Draw {k + 1}",
                 now + dt.timedelta(hours=2), 3, ReleasePolicy.DRAW, hot=True)
    run_due_jobs(platform)  # opens the draw rounds' windows
    username, password = f"simliveop{run}", secrets.token_urlsafe(18)
    platform.run(accounts.create_user, username, password, Role.OPERATOR)
    return username, password


@dataclasses.dataclass
class TacticReport:
    target: str
    workers: int | None = None
    first_event: dict[str, float] = dataclasses.field(default_factory=dict)
    """Per tactic: seconds from the run's start to the tactic's first event."""
    first_alert: dict[str, tuple[float, str, str]] = dataclasses.field(default_factory=dict)
    """Per tactic: seconds from the run's start to the first alert naming it, its scenario
    and entity."""
    steps: dict[str, list[tuple[str, int, str]]] = dataclasses.field(default_factory=dict)
    hold: list[str] = dataclasses.field(default_factory=list)
    genuine_alerts: list[str] = dataclasses.field(default_factory=list)
    """Alerts (scenario, entity) naming the genuine patient's account or patient."""
    """What the launder ring's next booking met after its alert."""
    sent: int = 0
    seconds: float = 0.0

    def delay(self, tactic: str) -> float | None:
        if tactic not in self.first_event or tactic not in self.first_alert:
            return None
        return self.first_alert[tactic][0] - self.first_event[tactic]

    def status(self, agent: str, step: str) -> list[tuple[int, str]]:
        return [(s, c) for name, s, c in self.steps.get(agent, []) if name == step]

    def render(self) -> str:
        lines = [f"live tactics against {self.target}: {self.sent} requests in "
                 f"{self.seconds:.1f} s",
                 "tactic  first event (s)  first alert (s)  event -> alert (s)  scenario, entity"]
        for tactic in TACTICS:
            event = self.first_event.get(tactic)
            alert = self.first_alert.get(tactic)
            delay = self.delay(tactic)
            lines.append(
                f"{tactic:<7} {'-' if event is None else f'{event:.2f}':>15}  "
                f"{'-' if alert is None else f'{alert[0]:.2f}':>15}  "
                f"{'-' if delay is None else f'{delay:.2f}':>18}  "
                f"{'no alert' if alert is None else f'{alert[1]}, {alert[2]}'}")
        lines.append(f"alerts naming genuine people (entrant, kiosk, family): "
                     f"{len(self.genuine_alerts)}"
                     + (f" ({', '.join(self.genuine_alerts[:6])})" if self.genuine_alerts
                        else ""))
        lines.append("after the launder alert, the ring's next booking: "
                     + (", ".join(self.hold) or "not tried"))
        for agent, steps in self.steps.items():
            refused = [f"{n} {s}{' ' + c if c else ''}" for n, s, c in steps if s >= 400]
            if refused:
                lines.append(f"{agent} refused: {', '.join(refused[:8])}")
        return "\n".join(lines)


class _OutOfBudget(Exception):
    pass


class _Run:
    """What the agents share: the clock, the budget, the report, the entities they own."""

    def __init__(self, base: str, report: TacticReport) -> None:
        self.base = base
        self.report = report
        self.started = time.monotonic()
        self.sent = 0
        self.lock = threading.Lock()
        self.owned: dict[str, set[str]] = {t: set() for t in TACTICS}
        self.genuine: set[str] = set()
        self.alert_seen = threading.Event()  # the launder alert, for the hold step
        self.errors: list[BaseException] = []

    def thread(self, fn: Callable[..., None], *args: Any) -> threading.Thread:
        """A thread for one agent; what it raises is kept for the run to raise (running
        out of budget only ends the agent)."""
        def go() -> None:
            try:
                fn(*args)
            except _OutOfBudget:
                pass
            except BaseException as exc:  # raised by run_tactics after the join
                with self.lock:
                    self.errors.append(exc)
        return threading.Thread(target=go)

    def at(self) -> float:
        return time.monotonic() - self.started

    def take(self) -> bool:
        with self.lock:
            if self.sent >= MAX_REQUESTS or self.at() > MAX_SECONDS:
                return False
            self.sent += 1
            return True

    def event(self, tactic: str) -> None:
        with self.lock:
            self.report.first_event.setdefault(tactic, self.at())


class _Agent:
    def __init__(self, run: _Run, name: str, address: str, rng: random.Random) -> None:
        self.run = run
        self.name = name
        self.rng = rng
        run.report.steps[name] = []
        # The device is the one the server mints (its cookie, kept by the client).
        self.client = httpx.Client(base_url=f"{run.base}/api/v1", timeout=60.0,
                                   headers={"X-Forwarded-For": address})
        self.auth: dict[str, str] = {}
        self.account_id: int | None = None
        self.solved = 0
        self.credentials: tuple[str, str] | None = None
        self.pool: list[str] = []
        """A proxy pool's exit addresses: each request leaves from the next one."""
        self.used: list[str] = []
        self.answered: list[float] = []
        """When each of its requests was answered (one client: one device)."""

    def device(self) -> str | None:
        """The device the server minted for this client (its signed cookie names it)."""
        value = self.client.cookies.get("fs_device")
        return f"device:{value.split('.')[0]}" if value else None

    def send(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.run.take():
            raise _OutOfBudget
        headers = {**self.auth, **kwargs.pop("headers", {})}
        if self.pool:
            headers["X-Forwarded-For"] = self.pool[len(self.used) % len(self.pool)]
            self.used.append(headers["X-Forwarded-For"])
        answer = self.client.request(method, path, headers=headers, **kwargs)
        self.answered.append(time.monotonic())
        if self.pool and len(set(self.used)) == 10 and self.used[-1] not in self.used[:-1]:
            self.run.event("T7")  # the request from the pool's tenth network answered
        code = ""
        if answer.status_code >= 400:
            try:
                code = str(answer.json().get("code", ""))
            except ValueError:
                code = ""
        self.run.report.steps[self.name].append((step, answer.status_code, code))
        return answer

    def log_in(self, username: str, password: str) -> bool:
        for _ in range(2):
            token = self.send("login", "POST", "/auth/login",
                              json={"username": username, "password": password})
            if token.status_code == 200:
                self.auth = {"Authorization": f"Bearer {token.json()['token']}"}
                me = self.send("me", "GET", "/me")
                if me.status_code == 200:
                    self.account_id = int(me.json()["id"])
                return True
            if token.status_code != 429:
                return False
            time.sleep(min(float(token.headers.get("Retry-After", "5")), 10.0))
        return False

    def sign_up(self, phone_prefix: str = "+86138") -> bool:
        name = f"simt{self.name.replace('-', '')}{self.rng.randrange(10**8):08d}"
        password = f"pw-{self.rng.randrange(10**12)}-{self.rng.randrange(10**12)}"
        self.credentials = (name, password)
        phone = f"{phone_prefix}{self.rng.randrange(10**8):08d}"
        made = self.send("register", "POST", "/auth/register",
                         json={"username": name, "password": password, "phone": phone})
        if made.status_code != 201 or not self.log_in(name, password):
            return False
        inbox = self.send("read_texts", "GET", "/dev/outbox", params={"phone": phone})
        if inbox.status_code != 200:
            return False
        texts = [m["text"] for m in inbox.json() if m["kind"] == "phone.code"]
        found = re.search(r"\b(\d{6})\b", texts[0]) if texts else None
        code = found.group(1) if found else None
        return code is not None and self.send("verify_phone", "POST", "/me/phone/verify",
                                              json={"code": code}).status_code == 200

    def add(self, identity: Identity) -> int | None:
        answer = self.send("add_patient", "POST", "/me/patients",
                           json={"id_number": identity.id_number, "name": identity.name})
        return int(answer.json()["id"]) if answer.status_code == 201 else None

    def screen(self, session_id: int) -> dict[str, str]:
        answer = self.send("booking_screen", "GET", f"/sessions/{session_id}/booking-screen")
        if answer.status_code != 200:
            return {}
        body = answer.json()
        return {body["token_header"]: body["action_token"]}

    def post(self, step: str, path: str, headers: dict[str, str],
             body: dict[str, Any]) -> httpx.Response:
        """POST, solving the proof of work when the guard asks for one (as a bot's
        software does; the cost is CPU time)."""
        answer = self.send(step, "POST", path, headers=headers, json=body)
        for _ in range(3):
            if answer.status_code != 403 or \
                    answer.json().get("code") != "challenge_required":
                break
            self.solved += 1
            answer = self.send(step, "POST", path, json=body, headers={
                **headers, POW_HEADER: solve_pow(answer.json()["challenge"])})
        return answer

    def book(self, session_id: int, patient_id: int, token: dict[str, str],
             step: str = "book") -> httpx.Response:
        return self.post(step, "/bookings", token,
                         {"session_id": session_id, "patient_id": patient_id})

    def payment_screen(self, booking_id: int) -> dict[str, Any]:
        answer = self.send("payment_screen", "GET", f"/bookings/{booking_id}/payment-screen")
        return answer.json() if answer.status_code == 200 else {}

    def pay(self, booking_id: int, screen: dict[str, Any], payer: str) -> httpx.Response:
        headers = {screen["token_header"]: screen["action_token"]} \
            if screen.get("action_token") else {}
        return self.post("pay", f"/bookings/{booking_id}/pay", headers,
                         {"payer_account": payer})

    def enter(self, round_id: int, patient_id: int, choices: list[int]) -> httpx.Response:
        answer = self.send("entry_screen", "GET", f"/rounds/{round_id}/entry-screen")
        if answer.status_code != 200:
            return answer
        body = answer.json()
        time.sleep(_MIN_AGE)
        return self.post("enter", f"/rounds/{round_id}/entries",
                         {body["token_header"]: body["action_token"]},
                         {"patient_id": patient_id, "choices": choices})


def solve_pow(challenge: dict[str, Any]) -> str:
    """The ALTCHA proof of work the guard asks for, solved by search (a bot's CPU)."""
    target, top = challenge["challenge"], int(challenge["maxNumber"])
    base = hashlib.sha256(challenge["salt"].encode())
    number = top
    for n in range(top + 1):
        h = base.copy()
        h.update(str(n).encode())
        if h.hexdigest() == target:
            number = n
            break
    return base64.b64encode(json.dumps({
        "algorithm": challenge["algorithm"], "challenge": target, "number": number,
        "salt": challenge["salt"], "signature": challenge["signature"]}).encode()).decode()


@dataclasses.dataclass
class _Target:
    open_session: int
    general_session: int
    crew_sessions: list[tuple[int, float]]
    """(session, release as a Unix time)."""
    rounds: list[tuple[int, list[int]]]
    """(round, its sessions) of the four draw departments."""
    snipes: list[tuple[int, int, float]] = dataclasses.field(default_factory=list)
    """(session, its doctor, release as a Unix time) of the T1 and T2 releases."""

    def next_snipe(self, ahead_s: float) -> tuple[int, int, float] | None:
        """The first of the T1 and T2 releases at least ``ahead_s`` seconds from now."""
        now = time.time()
        return next((s for s in self.snipes if s[2] - now >= ahead_s), None)


def _discover(client: httpx.Client) -> _Target:
    def get(path: str) -> Any:
        answer = client.get(path)
        if answer.status_code == 429:
            raise LiveRunRefused("the server's guard refused the live agent's browsing (429)")
        return answer.json() if answer.status_code == 200 else []

    hospital = next((h for h in get("/hospitals") if h["code"] == LIVE_HOSPITAL), None)
    deps = get(f"/hospitals/{hospital['id']}/departments") if hospital else []
    runs = [int(d["code"][3:-4]) for d in deps
            if d["code"].startswith("TAC") and d["code"].endswith("OPEN")]
    if not runs:
        raise LiveRunRefused("the target has no live tactics prepared: run `fairslot simulate "
                             "--prepare-live` on its database first")
    prefix = f"TAC{max(runs)}"

    def sessions_of(code: str) -> list[dict[str, Any]]:
        dep = next(d for d in deps if d["code"] == code)
        return [s for doc in get(f"/departments/{dep['id']}/doctors")
                for s in get(f"/doctors/{doc['id']}/sessions")]

    open_session = sessions_of(f"{prefix}OPEN")[0]["id"]
    crew = [(int(s["id"]), dt.datetime.fromisoformat(s["release_at"]).timestamp())
            for s in sessions_of(f"{prefix}CREW")]
    draw_deps = {next(d["id"] for d in deps if d["code"] == f"{prefix}DRAW{k}"): k
                 for k in range(1, 5)}
    rounds = [(int(r["id"]), [int(s["id"]) for s in sessions_of(
        f"{prefix}DRAW{draw_deps[r['department_id']]}")])
        for r in get("/rounds") if r["department_id"] in draw_deps and r["kind"] == "release"]
    snipes = sorted(((int(s["id"]), int(s["doctor_id"]),
                      dt.datetime.fromisoformat(s["release_at"]).timestamp())
                     for s in sessions_of(f"{prefix}SNIPE")), key=lambda s: s[2])
    return _Target(int(open_session), int(sessions_of(f"{prefix}GEN")[0]["id"]), sorted(crew),
                   rounds, snipes)


# -- the agents ----------------------------------------------------------------------------


def _genuine(run: _Run, target: _Target, people: list[Identity]) -> None:
    agent = _Agent(run, "genuine", "198.18.10.10", random.Random(1))
    if not agent.sign_up() or (patient := agent.add(people[0])) is None or not target.rounds:
        return
    run.genuine.update({f"account:{agent.account_id}", f"patient:{patient}"})
    time.sleep(3.0)  # reads the round's page
    round_id, choices = target.rounds[0]
    agent.enter(round_id, patient, choices[:1])


def _launder(run: _Run, target: _Target, people: list[Identity]) -> None:
    # The buyer goes on a spare account of the ring (one account passing its slot to
    # another of its own patients is what families do, and no alert on its own).
    agent = _Agent(run, "t4-launder", "198.18.4.10", random.Random(4))
    spare = _Agent(run, "t4-spare", "198.18.4.10", random.Random(5))
    if not agent.sign_up() or not spare.sign_up():
        return
    holder, next_one, buyer = agent.add(people[0]), agent.add(people[2]), spare.add(people[1])
    if holder is None or buyer is None or next_one is None:
        return
    run.owned["T4"].update({f"account:{agent.account_id}", f"account:{spare.account_id}",
                            f"patient:{holder}", f"patient:{buyer}"})
    sid = target.open_session
    token = agent.screen(sid)
    time.sleep(_MIN_AGE)
    held = agent.book(sid, holder, token)
    if held.status_code != 201:
        return
    pay_screen = agent.payment_screen(int(held.json()["id"]))
    if not pay_screen.get("cancel_token"):
        return
    time.sleep(_MIN_AGE)
    agent.post("cancel", f"/bookings/{held.json()['id']}/cancel",
               {pay_screen["token_header"]: pay_screen["cancel_token"]}, {})
    token = spare.screen(sid)
    time.sleep(_MIN_AGE)
    if spare.book(sid, buyer, token, step="rebook_for_buyer").status_code == 201:
        run.event("T4")
    # The ring's next booking, once the operator has seen the alert (its decisions reach
    # every worker's guard within a second of being made).
    if not run.alert_seen.wait(ALERT_WAIT_S):
        return
    time.sleep(1.5)
    token = agent.screen(sid)
    time.sleep(_MIN_AGE)
    solved = agent.solved
    after = agent.book(sid, next_one, token, step="next_booking")
    run.report.hold.append("proof of work asked and solved" if agent.solved > solved
                           else "no proof of work asked")
    if after.status_code != 201:
        run.report.hold.append(f"booking {after.status_code}")
        return
    run.report.hold.append(f"booking 201 with review {after.json().get('review')!r}")
    screen = agent.payment_screen(int(after.json()["id"]))
    time.sleep(_MIN_AGE)
    paid = agent.pay(int(after.json()["id"]), screen, "wechat:wxring")
    code = paid.json().get("code", "") if paid.status_code >= 400 else ""
    run.report.hold.append(f"pay {paid.status_code}{' ' + code if code else ''}")


def _spread(run: _Run, target: _Target, people: list[Identity]) -> None:
    agent = _Agent(run, "t5-spread", "198.18.5.10", random.Random(5))
    if not agent.sign_up() or (patient := agent.add(people[0])) is None:
        return
    run.owned["T5"].update({f"account:{agent.account_id}", f"patient:{patient}"})
    entered = 0
    for round_id, choices in target.rounds:
        if agent.enter(round_id, patient, choices[:1]).status_code == 201:
            entered += 1
            if entered == 4:
                run.event("T5")


def _hub(run: _Run, target: _Target, people: list[Identity]) -> None:
    """Four accounts of the ring (on four devices), three patients each, one payer for all
    twelve; the tenth patient paid for is the tactic's first event."""
    barrier = threading.Barrier(4)
    paid = [0]

    def one(k: int, mine: list[Identity]) -> None:
        agent = _Agent(run, f"t6-hub-{k}", f"198.18.{60 + k}.10", random.Random(60 + k))
        ok = agent.sign_up()
        patients = [p for p in (agent.add(i) for i in mine) if p is not None] if ok else []
        run.owned["T6"].add(f"account:{agent.account_id}")
        barrier.wait(timeout=60)
        tokens = [agent.screen(target.general_session) for _ in patients]
        time.sleep(_MIN_AGE)
        booked = [agent.book(target.general_session, p, tok)
                  for p, tok in zip(patients, tokens, strict=True)]
        ids = [int(b.json()["id"]) for b in booked if b.status_code == 201]
        screens = [agent.payment_screen(b) for b in ids]
        time.sleep(_MIN_AGE)
        for b, screen in zip(ids, screens, strict=True):
            if screen and agent.pay(b, screen, _PAYER).status_code == 200:
                with run.lock:
                    paid[0] += 1
                    done = paid[0] == 10
                if done:
                    run.event("T6")

    threads = [run.thread(one, k, people[3 * k:3 * k + 3]) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _crew(run: _Run, target: _Target, people: list[Identity]) -> None:
    """Two accounts booking each of three sessions in the same seconds after its release
    (the moment chosen inside one 5-second bucket of the ``lockstep`` scenario)."""
    barrier = threading.Barrier(2)
    done = [0]

    def one(k: int) -> None:
        agent = _Agent(run, f"t8-crew-{k}", f"198.18.{80 + k}.10", random.Random(80 + k))
        patient = agent.add(people[k]) if agent.sign_up() else None
        run.owned["T8"].add(f"account:{agent.account_id}")
        for n, (sid, release) in enumerate(target.crew_sessions):
            barrier.wait(timeout=60)
            # Open the screen just after a 5-second boundary since the release, so that
            # both bookings fall 1.6-2.5 s into the same bucket.
            offset = time.time() - release
            wait = 0.1 - offset if offset < 0 else (5.0 - offset % 5.0 + 0.1) % 5.0
            time.sleep(wait)
            token = agent.screen(sid)
            time.sleep(_MIN_AGE)
            if patient is not None and agent.book(sid, patient, token).status_code == 201 \
                    and n == len(target.crew_sessions) - 1:
                with run.lock:
                    done[0] += 1
                    last = done[0] == 2
                if last:
                    run.event("T8")

    threads = [run.thread(one, k) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _broker(run: _Run, target: _Target, people: list[Identity]) -> None:
    """A broker's device (one phone: the device the server minted for it) registers two
    accounts and puts four of its clients' patients on each."""
    agent = _Agent(run, "t9-broker", "198.18.9.10", random.Random(9))
    linked = 0
    for k in range(2):
        if not agent.sign_up():
            return
        run.owned["T9"].add(f"account:{agent.account_id}")
        if (device := agent.device()) is not None:
            run.owned["T9"].add(device)
        for identity in people[4 * k:4 * k + 4]:
            if agent.add(identity) is not None:
                linked += 1
                if linked == 7:
                    run.event("T9")


def _ready_to_snipe(run: _Run, target: _Target, people: list[Identity], tactic: str,
                    name: str, address: str, *, seed: int, notice: float, early: float,
                    ) -> tuple[_Agent, list[int], tuple[int, int, float]] | None:
    """A speed agent's preparation: its account and two patients (owned by ``tactic``), the
    next session releasing at least ``notice`` seconds from now, a wait until ``early``
    seconds before its release, and the device the server minted for it. None when any
    step failed."""
    agent = _Agent(run, name, address, random.Random(seed))
    if not agent.sign_up():
        return None
    patients = [p for p in (agent.add(i) for i in people[:2]) if p is not None]
    run.owned[tactic].update({f"account:{agent.account_id}",
                              *(f"patient:{p}" for p in patients)})
    snipe = target.next_snipe(notice)
    if snipe is None or len(patients) < 2:
        return None
    time.sleep(max(0.0, snipe[2] - early - time.time()))
    if (device := agent.device()) is not None:
        run.owned[tactic].add(device)
    return agent, patients, snipe


def _api_bot(run: _Run, target: _Target, people: list[Identity]) -> None:
    """T1: a reverse-engineered client on the API alone, its two patients preloaded. It
    polls the session 20 times a second until the release, opens a booking screen for each
    patient the instant the session opens and confirms both as soon as the guard takes the
    tokens. Its first event is whichever comes first: the answer to its 120th request
    within a minute, or to the second booking taken within seconds of the release."""
    ready = _ready_to_snipe(run, target, people, "T1", "t1-api-bot", "198.18.21.10",
                            seed=21, notice=8.0, early=7.0)
    if ready is None:
        return
    agent, patients, (sid, _, release) = ready
    while time.time() < release:
        agent.send("poll", "GET", f"/sessions/{sid}")
        done = agent.answered
        if len(done) >= 120 and done[-1] - done[-120] < 60.0:
            run.event("T1")  # its 120th request within a minute
        time.sleep(0.03)
    tokens: list[dict[str, str]] = []
    while len(tokens) < 2 and time.time() < release + 1.0:
        token = agent.screen(sid)
        if token:
            tokens.append(token)
        else:
            time.sleep(0.02)
    time.sleep(1.52)  # the guard's minimum token age
    taken = sum(agent.book(sid, p, tok, step="snipe").status_code == 201
                for p, tok in zip(patients, tokens, strict=False))
    if taken == 2:
        run.event("T1")


def _clicker(run: _Run, target: _Target, people: list[Identity]) -> None:
    """T2: an auto-clicker driving the patient's own pages: it refreshes the doctor's
    sessions every 0.3 s until the release, then clicks "book" and keeps clicking
    "confirm" every 0.4 s (the guard turns the clicks down until the screen's token is
    1.5 s old), for one patient and then the next. Its first event: the second booking
    confirmed sooner after its screen than a person reads it."""
    ready = _ready_to_snipe(run, target, people, "T2", "t2-clicker", "198.18.22.10",
                            seed=22, notice=6.0, early=4.0)
    if ready is None:
        return
    agent, patients, (sid, doctor, release) = ready
    while time.time() < release:
        agent.send("refresh", "GET", f"/doctors/{doctor}/sessions")
        time.sleep(0.3)
    fast = 0
    for patient in patients:
        token: dict[str, str] = {}
        for _ in range(10):
            if token := agent.screen(sid):
                break
            time.sleep(0.3)
        shown = time.monotonic()
        for _ in range(8):
            time.sleep(0.4)
            answer = agent.send("confirm", "POST", "/bookings", headers=token,
                                json={"session_id": sid, "patient_id": patient})
            if answer.status_code == 201:
                if time.monotonic() - shown < 2.5:
                    fast += 1
                    if fast == 2:
                        run.event("T2")
                break
            if answer.status_code != 403 or answer.json().get("code") != "token_too_early":
                break


# Made-up patients as a virtual-number farm enters them: names that are numbers, ID
# numbers with a wrong check digit.
_FARMED = (("110101199003071111", "561"), ("110101199003072222", "789"),
           ("110101199003073333", "412"))


def _farm(run: _Run, target: _Target, people: list[Identity]) -> None:
    """T3: an account registered on a virtual number (a 170 number) puts made-up patients
    on it; its first event is the third one turned down."""
    agent = _Agent(run, "t3-farm", "198.18.23.10", random.Random(23))
    if not agent.sign_up(phone_prefix="+86170"):
        return
    run.owned["T3"].add(f"account:{agent.account_id}")
    if (device := agent.device()) is not None:
        run.owned["T3"].add(device)
    refused = 0
    for number, name in _FARMED:
        answer = agent.send("add_made_up", "POST", "/me/patients",
                            json={"id_number": number, "name": name})
        if answer.status_code == 422:
            refused += 1
            if refused == 3:
                run.event("T3")


def _proxy_ring(run: _Run, target: _Target, people: list[Identity]) -> None:
    """T7: one operation booking eight ID numbers on two accounts, every request leaving
    from the next exit of a proxy pool (twelve /24s), so that no one address fans out. Its
    first event is the request from the tenth network of one account."""
    barrier = threading.Barrier(2)

    def one(k: int, mine: list[Identity]) -> None:
        agent = _Agent(run, f"t7-proxy-{k}", "198.18.27.10", random.Random(70 + k))
        agent.pool = [f"198.19.{100 + 12 * k + n}.{7 + n}" for n in range(12)]
        run.owned["T7"].update(f"ip:{a}" for a in agent.pool)
        ok = agent.sign_up()
        run.owned["T7"].add(f"account:{agent.account_id}")
        patients = [p for p in (agent.add(i) for i in mine) if p is not None] if ok else []
        run.owned["T7"].update(f"patient:{p}" for p in patients)
        if (device := agent.device()) is not None:
            run.owned["T7"].add(device)
        barrier.wait(timeout=60)
        for patient in patients:
            token = agent.screen(target.general_session)
            time.sleep(_MIN_AGE)
            agent.book(target.general_session, patient, token)

    threads = [run.thread(one, k, people[4 * k:4 * k + 4]) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


PLATFORM_NETWORKS = ["10.20.0.0/16"]
"""The live hospital's own network (its kiosks and desks), as a hospital declares it in
``FAIRSLOT_MONITOR_PLATFORM_NETWORKS``."""
_KIOSK = "10.20.8.21"
"""A self-service kiosk in the hospital's lobby, on the hospital's own network (the stack's
``FAIRSLOT_MONITOR_PLATFORM_NETWORKS``)."""


def _kiosk(run: _Run, target: _Target, people: list[Identity]) -> None:
    """Genuine: six patients, each with an account made on their own phone, book at the
    lobby kiosk one after another, as fast as the kiosk lets them (the card reader fills the
    screen; they pay later on their phones): one device and one address for six patients,
    each booking 1.6 s after its screen. Without the hospital's network declared, the
    kiosk's device is ``fast_action``'s: a kiosk is fast by design."""
    signed: list[tuple[tuple[str, str], Identity]] = []
    for n, identity in enumerate(people):
        phone = _Agent(run, f"kiosk-patient-{n}", f"198.18.{120 + n}.10",
                       random.Random(120 + n))
        if phone.sign_up() and phone.credentials is not None:
            signed.append((phone.credentials, identity))
            run.genuine.add(f"account:{phone.account_id}")
        phone.client.close()
    kiosk = _Agent(run, "kiosk", _KIOSK, random.Random(12))
    run.genuine.update({f"ip:{_KIOSK}", "ip_prefix:10.20.8.0/24"})
    for (username, password), identity in signed:
        if not kiosk.log_in(username, password):
            continue
        if (device := kiosk.device()) is not None:
            run.genuine.add(device)
        patient = kiosk.add(identity)
        if patient is None:
            continue
        run.genuine.add(f"patient:{patient}")
        token = kiosk.screen(target.general_session)
        time.sleep(_MIN_AGE)
        kiosk.book(target.general_session, patient, token, step="kiosk_book")
        kiosk.auth = {}
        time.sleep(1.0)  # the next patient steps up


def _family(run: _Run, target: _Target, people: list[Identity]) -> None:
    """Genuine: a daughter books her mother, herself and her son into the same morning from
    home, reading each screen, and pays for all three with her own card."""
    agent = _Agent(run, "family", "198.18.11.10", random.Random(11))
    if not agent.sign_up():
        return
    run.genuine.add(f"account:{agent.account_id}")
    for identity in people:
        patient = agent.add(identity)
        if patient is None:
            continue
        run.genuine.add(f"patient:{patient}")
        time.sleep(2.0)
        token = agent.screen(target.general_session)
        time.sleep(4.0)  # reads the session, the fee and the patient
        booked = agent.book(target.general_session, patient, token, step="family_book")
        if booked.status_code == 201:
            screen = agent.payment_screen(int(booked.json()["id"]))
            time.sleep(5.0)
            agent.pay(int(booked.json()["id"]), screen, "alipay:family-card@pay.example")


def _operator(run: _Run, username: str, password: str, stop: threading.Event) -> None:
    agent = _Agent(run, "operator", "198.18.200.10", random.Random(200))
    if not agent.log_in(username, password):
        raise LiveRunRefused("the operator account could not log in")
    # Every alert read, with when it was first read: the agents learn some of their own
    # entities (a device, a patient) while the run goes on, so each poll looks again.
    seen: dict[int, tuple[float, dict[str, Any]]] = {}
    while not stop.is_set():
        answer = agent.send("alerts", "GET", "/monitor/alerts",
                            params={"status": "all", "limit": 1000})
        if answer.status_code == 200:
            now = run.at()
            for alert in answer.json():
                seen.setdefault(alert["id"], (now, alert))
            for first_read, alert in list(seen.values()):
                named = {alert["entity"], *alert.get("related", [])}
                for tactic, scenarios in TACTICS.items():
                    if alert["scenario"] not in scenarios:
                        continue
                    # A payer is a blind index the client cannot know: the scenario's
                    # alert is taken as naming the hub.
                    if tactic != "T6" and not named & run.owned[tactic]:
                        continue
                    with run.lock:
                        run.report.first_alert.setdefault(
                            tactic, (first_read, alert["scenario"], alert["entity"]))
                    if tactic == "T4":
                        run.alert_seen.set()
        stop.wait(_POLL_S)
    run.report.genuine_alerts = sorted(
        f"{alert['scenario']} {alert['entity']}" for _, alert in seen.values()
        if {alert["entity"], *alert.get("related", [])} & run.genuine)


def run_tactics(target: str, *, operator: str, password: str, seed: int = 1
                ) -> TacticReport:
    """Run the tactic agents against ``target`` (loopback only), with the operator watching
    the alerts, and return when every tactic has its alert (or ``ALERT_WAIT_S`` after the
    last agent finished)."""
    base = check_target(target)
    report = TacticReport(base)
    run = _Run(base, report)
    people = tactic_identities(seed)
    try:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=15.0,
                          headers={"X-Forwarded-For": "198.18.1.10"}) as public:
            found = _discover(public)
        stop = threading.Event()
        errors = run.errors
        watcher = run.thread(_operator, run, operator, password, stop)
        watcher.start()
        plays: list[tuple[Callable[[_Run, _Target, list[Identity]], None], list[Identity]]] = [
            (_genuine, people[0:1]), (_launder, people[1:4]), (_spread, people[4:5]),
            (_hub, people[5:17]), (_crew, people[17:19]), (_broker, people[19:27]),
            (_api_bot, people[27:29]), (_clicker, people[29:31]), (_farm, []),
            (_proxy_ring, people[31:39]), (_kiosk, people[39:45]), (_family, people[45:48])]
        agents = [run.thread(fn, run, found, who) for fn, who in plays]
        for thread in agents:
            thread.start()
        for thread in agents:
            thread.join()
        deadline = time.monotonic() + ALERT_WAIT_S
        while time.monotonic() < deadline and not errors and any(
                t in report.first_event and t not in report.first_alert for t in TACTICS):
            time.sleep(_POLL_S)
        stop.set()
        watcher.join()
        if errors:
            raise errors[0]
    except httpx.HTTPError as exc:
        raise LiveRunRefused(f"cannot reach {base}: {type(exc).__name__}") from exc
    report.sent = run.sent
    report.seconds = run.at()
    return report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_stack(database_url: str, redis_url: str, *, workers: int, secret: str,
                seed: int = 1, log_dir: pathlib.Path | None = None,
                platform_networks: list[str] | None = None
                ) -> Iterator[tuple[str, str, str]]:
    """A throw-away production-shaped stack for a live run: the database migrated and
    prepared (``prepare_tactics``), ``fairslot serve --workers N`` and one ``fairslot
    monitor run`` on the Redis stream, every Redis key under a prefix of this stack's own.
    Yields the base URL and the operator's username and password; stops both processes.
    The server believes ``X-Forwarded-For`` from loopback (the agents' own addresses) and
    runs without quotas and with the guard's limit on one payer raised from 10 to 100 an
    hour (both stop T5 and T6 before the monitor's thresholds; the run watches the monitor,
    as the simulator's fcfs policy does). The hospital's own network is declared as a
    hospital declares its kiosks' and desks' (``platform_networks``, by default
    ``PLATFORM_NETWORKS``; ``[]`` to see what the monitor makes of the kiosk without it)."""
    from fairslot.bootstrap import bootstrap
    from fairslot.config import Settings
    from fairslot.storage.migrate import upgrade

    tag = f"live{secrets.token_hex(4)}"
    env = {**os.environ, "FAIRSLOT_DATABASE_URL": database_url,
           "FAIRSLOT_REDIS_URL": redis_url, "FAIRSLOT_SECRET_KEY": secret,
           "FAIRSLOT_DEV_OUTBOX_PAGE": "true", "FAIRSLOT_TRUSTED_PROXIES": '["127.0.0.1/32"]',
           "FAIRSLOT_QUOTAS_ENABLED": "false", "FAIRSLOT_MONITOR_MODE": "stream",
           "FAIRSLOT_GUARD_LIMITS": json.dumps({"payment": {"payer": "100/hour"}}),
           "FAIRSLOT_MONITOR_STREAM_KEY": f"fairslot:{tag}:events",
           "FAIRSLOT_MONITOR_REDIS_PREFIX": f"fairslot:{tag}:monitor:",
           "FAIRSLOT_GUARD_REDIS_PREFIX": f"fairslot:{tag}:guard:",
           "FAIRSLOT_MONITOR_PLATFORM_NETWORKS": json.dumps(
               PLATFORM_NETWORKS if platform_networks is None else platform_networks),
           "FAIRSLOT_MONITOR_BLOCK_MS": "100", "FAIRSLOT_LOG_LEVEL": "WARNING",
           "FAIRSLOT_PASSWORD_HASH_TIME_COST": "1", "FAIRSLOT_PASSWORD_HASH_MEMORY_KIB": "64"}
    platform = bootstrap(Settings(database_url=database_url, secret_key=secret))
    try:
        upgrade(platform.engine)
        operator, password = prepare_tactics(platform, seed)
    finally:
        platform.engine.dispose()
    port = _free_port()
    fairslot = [sys.executable, "-m", "fairslot.cli"]
    logs = log_dir or pathlib.Path(tempfile.mkdtemp(prefix="fairslot-live-"))
    server = subprocess.Popen(  # noqa: S603 (our own command line)
        [*fairslot, "serve", "--port", str(port), "--workers", str(workers)], env=env,
        stdout=(logs / "serve.log").open("wb"), stderr=subprocess.STDOUT)
    monitor = subprocess.Popen(  # noqa: S603
        [*fairslot, "monitor", "run", "--consumer", f"{tag}-1"], env=env,
        stdout=(logs / "monitor.log").open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None or monitor.poll() is not None:
                raise LiveRunRefused(f"the live stack stopped at start-up (logs in {logs})")
            try:
                if httpx.get(f"{base}/api/v1/hospitals", timeout=1.0,
                             headers={"X-Forwarded-For": "198.18.2.10"}).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LiveRunRefused(f"fairslot serve did not come up (logs in {logs})")
            time.sleep(0.2)
        yield base, operator, password
    finally:
        for proc in (server, monitor):
            proc.terminate()
        for proc in (server, monitor):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
