"""Live mode for the monitor: the ring tactics T4, T5, T6, T8 and T9 (and a genuine patient
entering a draw round) over HTTP against a running fairslot, with an operator reading the
alerts through the API, so the monitor can be watched catching each tactic on a real
server (docs/monitoring.md, "Live run").

The agents, each with its own account(s), device and (through ``X-Forwarded-For``, which
the server believes only from its ``FAIRSLOT_TRUSTED_PROXIES``) address:

- ``genuine``: a person entering a draw round at a person's pace;
- ``t4-launder``: books a slot for one patient, cancels it, and the ring's spare account
  (same address) books the freed slot for another patient (the buyer) seconds later; after
  the ``launder`` alert its hold for review meets the ring's next booking, which is held
  and cannot be paid;
- ``t5-spread``: one identity entering the draw rounds of four departments;
- ``t6-hub``: four accounts, twelve patients, one payment account paying for all of them;
- ``t8-crew``: two accounts booking the same three sessions in the same seconds after each
  one's release;
- ``t9-broker``: a broker's phone (one device) registering two accounts and putting four
  of its clients' patients on each.

At most ``MAX_REQUESTS`` requests and ``MAX_SECONDS`` seconds; loopback targets only.

For each tactic the run records the moment the tactic became visible in what the agent did
(its *first event*: the rebooking, the fourth department's entry, the tenth patient's
payment, the crew's third shared release, the seventh patient on the broker's device)
and the moment the operator, polling ``GET /api/v1/monitor/alerts`` every 0.2 s, first
sees an alert of a scenario answering the tactic that names one of the agent's accounts or
patients (for the payer hub and the broker's device, whose blind index and device id the
client cannot know, the first alert of the scenario counts). Both on the client's clock.

``prepare_tactics`` makes what the agents need on the server's database before it serves
(``fairslot simulate --prepare-live``): an open first-come session, three sessions released
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
           "tactic_identities"]

MAX_REQUESTS = 1500
MAX_SECONDS = 150.0
ALERT_WAIT_S = 20.0
"""How long the operator keeps looking for a tactic's alert after its first event."""
_POLL_S = 0.2
_MIN_AGE = 1.6  # a little over the guard's minimum action-token age (1.5 s)
_IDENTITIES = 40
_PAYER = "alipay:hub-live@pay.example"
TACTICS: dict[str, tuple[str, ...]] = {
    "T4": ("launder",),
    "T5": ("identity_spread",),
    "T6": ("payer_fanout",),
    "T8": ("lockstep",),
    "T9": ("fanout_device", "fanout_account"),
}
"""The tactics the live run plays, and the scenarios whose alert answers each."""


def tactic_identities(seed: int) -> list[Identity]:
    """The residents the tactic agents add as patients (same seed, same people)."""
    return make_residents(random.Random(f"live-tactics:{seed}"), _IDENTITIES)


def prepare_tactics(platform: Platform, seed: int, *, crew_release_in_s: float = 5.0
                    ) -> tuple[str, str]:
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

    # Released a day ago, first come first served: T4 launders and T6 pays here.
    sessions(department("OPEN"), "Dr Open", now - dt.timedelta(days=1), 40,
             ReleasePolicy.FCFS)
    # Three sessions released together a few seconds from now: the T8 crew's releases.
    crew = department("CREW")
    release = now + dt.timedelta(seconds=crew_release_in_s + 1)
    for k in range(3):
        sessions(crew, f"Dr Crew {k + 1}", release, 4, ReleasePolicy.FCFS)
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
        lines.append(f"alerts naming the genuine patient: {len(self.genuine_alerts)}")
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

    def send(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.run.take():
            raise _OutOfBudget
        answer = self.client.request(method, path, headers={**self.auth,
                                                             **kwargs.pop("headers", {})},
                                     **kwargs)
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

    def sign_up(self) -> bool:
        name = f"simt{self.name.replace('-', '')}{self.rng.randrange(10**8):08d}"
        password = f"pw-{self.rng.randrange(10**12)}-{self.rng.randrange(10**12)}"
        phone = f"+86138{self.rng.randrange(10**8):08d}"
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
                **headers, POW_HEADER: _solve(answer.json()["challenge"])})
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


def _solve(challenge: dict[str, Any]) -> str:
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
    crew_sessions: list[tuple[int, float]]
    """(session, release as a Unix time)."""
    rounds: list[tuple[int, list[int]]]
    """(round, its sessions) of the four draw departments."""


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
    return _Target(int(open_session), sorted(crew), rounds)


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
        tokens = [agent.screen(target.open_session) for _ in patients]
        time.sleep(_MIN_AGE)
        booked = [agent.book(target.open_session, p, tok)
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
        for identity in people[4 * k:4 * k + 4]:
            if agent.add(identity) is not None:
                linked += 1
                if linked == 7:
                    run.event("T9")


def _operator(run: _Run, username: str, password: str, stop: threading.Event) -> None:
    agent = _Agent(run, "operator", "198.18.200.10", random.Random(200))
    if not agent.log_in(username, password):
        raise LiveRunRefused("the operator account could not log in")
    seen: set[int] = set()
    while not stop.is_set():
        answer = agent.send("alerts", "GET", "/monitor/alerts",
                            params={"status": "all", "limit": 1000})
        if answer.status_code == 200:
            now = run.at()
            for alert in answer.json():
                if alert["id"] in seen:
                    continue
                seen.add(alert["id"])
                named = {alert["entity"], *alert.get("related", [])}
                if named & run.genuine:
                    run.report.genuine_alerts.append(f"{alert['scenario']} {alert['entity']}")
                for tactic, scenarios in TACTICS.items():
                    if alert["scenario"] not in scenarios:
                        continue
                    # A payer and a device are blind indexes the client cannot know:
                    # their scenario's alert is taken as naming the hub and the broker.
                    if tactic not in ("T6", "T9") and not named & run.owned[tactic]:
                        continue
                    with run.lock:
                        run.report.first_alert.setdefault(
                            tactic, (now, alert["scenario"], alert["entity"]))
                    if tactic == "T4":
                        run.alert_seen.set()
        stop.wait(_POLL_S)


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
            (_hub, people[5:17]), (_crew, people[17:19]), (_broker, people[19:27])]
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
                seed: int = 1, log_dir: pathlib.Path | None = None
                ) -> Iterator[tuple[str, str, str]]:
    """A throw-away production-shaped stack for a live run: the database migrated and
    prepared (``prepare_tactics``), ``fairslot serve --workers N`` and one ``fairslot
    monitor run`` on the Redis stream, every Redis key under a prefix of this stack's own.
    Yields the base URL and the operator's username and password; stops both processes.
    The server believes ``X-Forwarded-For`` from loopback (the agents' own addresses) and
    runs without quotas and with the guard's limit on one payer raised from 10 to 100 an
    hour (both stop T5 and T6 before the monitor's thresholds; the run watches the monitor,
    as the simulator's fcfs policy does)."""
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
