"""Live mode: a few of the simulator's agents, scaled down, against a running fairslot over
HTTP, to see the real server (routes, guard, services) answer them end to end. Loopback
targets only, so the simulator can never be pointed at someone else's server; bounded in
requests (``MAX_REQUESTS``) and time (``MAX_SECONDS``).

The agents, run side by side in threads (each step's status code and problem code is kept):

- ``genuine-1``, ``genuine-2``: register, log in, add their patient (the real-name check),
  open the booking screen, read it for a few seconds, book with the screen's action token,
  open the payment screen and pay;
- ``t1-bot`` (T1): the same account set-up, then books without the screen (no action
  token), fetches the screen and fires at once (too early for a person), waits out the
  token's minimum age and books, then pays;
- ``t2-clicker`` (T2): goes through the real screens but clicks every 0.3 s, so its first
  clicks come before the token's minimum age and are refused until it is reached;
- ``t3-farm`` (T3): one of a farm's accounts, adding invented patients: a well-formed ID
  number that belongs to nobody (refused by the real-name check) and one with a wrong check
  digit (refused as invalid);
- at the end, if asked (``floods``): a browsing flood (the public hospital list every
  0.02 s, with an ``X-Forwarded-For`` that rotates over 200 addresses, as a proxy pool
  would claim: T7) and a log-in flood (wrong passwords for one username at bot speed).

Every request comes from the loopback address; the server believes ``X-Forwarded-For`` only
from its ``FAIRSLOT_TRUSTED_PROXIES``, so the flood's rotating header changes nothing and
the honest agents do not send it. They stay within the per-address limits instead: five
registrations a run (the limit is 10 an hour per address) and five log-ins (5 a minute per
address), each agent with its own device id. A run repeated within the hour is refused
registration by the guard, which the report shows.

The agents need a hot session that is open for booking and identities the server's registry
knows: ``prepare_target`` makes both on the server's database before it serves
(``fairslot simulate --prepare-live``, then ``fairslot serve``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import random
import re
import threading
import time
import urllib.parse
from typing import Any

import httpx

from fairslot.bootstrap import Platform
from fairslot.domain.errors import InvalidInput
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_residents
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import catalog

__all__ = ["LiveReport", "check_target", "live_identities", "prepare_target", "run_live",
           "run_live_agents"]



class LiveRunRefused(InvalidInput):
    """The live run cannot go on (a target that is not loopback, the guard refusing the
    agent's first look): one line for the operator."""

    code = "live_run_refused"


MAX_REQUESTS = 1500
MAX_SECONDS = 60.0
LIVE_HOSPITAL = "SIMLIVE"
_STEP = 0.02
_AGENTS = ("genuine-1", "genuine-2", "t1-bot", "t2-clicker", "t3-farm")
_CLICK = 0.3  # T2: an auto-clicker's interval


def check_target(target: str) -> str:
    """The target URL without a trailing slash; ``LiveRunRefused`` unless it is loopback."""
    parsed = urllib.parse.urlsplit(target)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise LiveRunRefused(f"--target must be a loopback http(s) URL, not {target!r}")
    return target.rstrip("/")


def live_identities(seed: int) -> list[Identity]:
    """The residents the live agents add as their patients (same seed, same people)."""
    return make_residents(random.Random(f"live:{seed}"), len(_AGENTS))


def prepare_target(platform: Platform, seed: int, *, capacity: int = 3) -> int:
    """On a migrated database the server will serve: a hospital with one doctor whose fcfs
    session three days ahead is already released (``capacity`` slots, fewer than the
    agents: a race the guard must referee), and the live agents' residents in the identity
    registry. The doctor is not marked hot: a hot doctor's session scheduled after its
    release gets a request window, not a race. Returns the session id. Idempotent for the
    hospital; run it again after each live run to get fresh slots."""
    with platform.uow() as uow:
        for identity in live_identities(seed):
            platform.verifier.register(uow, identity)
        uow.commit()
    hospital = platform.run(catalog.create_hospital, LIVE_HOSPITAL, "Simulator live target")
    with platform.uow() as uow:
        runs = len(uow.schedule.departments(hospital.id or 0))
    # A fresh department per preparation, so every live run finds untouched slots.
    dep = platform.run(catalog.create_department, hospital.id or 0, f"LIVE{runs + 1}",
                       "Cardiology")
    doctor = platform.run(catalog.create_doctor, dep.id or 0, "Dr Live", "Chief physician",
                          "cardiology", release_policy=ReleasePolicy.FCFS)
    visit = platform.clock.now().astimezone(platform.settings.zone).date() + dt.timedelta(3)
    made = platform.run(catalog.schedule_sessions, doctor.id or 0, [visit], [Period.MORNING],
                        capacity, 30000, release_days_before=7,
                        release_policy=ReleasePolicy.FCFS)
    return made[0].id or 0


@dataclasses.dataclass
class LiveReport:
    target: str
    session_id: int | None = None
    steps: dict[str, list[tuple[str, int, str]]] = dataclasses.field(
        default_factory=lambda: {name: [] for name in _AGENTS})
    """Per agent: (step, HTTP status, problem code or '')."""
    floods: dict[str, dict[int, int]] = dataclasses.field(default_factory=dict)
    sent: int = 0
    seconds: float = 0.0

    def status(self, agent: str, step: str) -> list[tuple[int, str]]:
        return [(s, c) for name, s, c in self.steps[agent] if name == step]

    def render(self) -> str:
        lines = [f"live run against {self.target} (at most {MAX_REQUESTS} requests, "
                 f"{MAX_SECONDS:.0f} s); hot session {self.session_id}"]
        for agent, steps in self.steps.items():
            text = ", ".join(f"{name} {status}{' ' + code if code else ''}"
                             for name, status, code in steps)
            lines.append(f"{agent}: {text or 'nothing sent'}")
        for name, seen in self.floods.items():
            lines.append(f"{name}: {dict(sorted(seen.items()))}")
        lines.append(f"requests sent: {self.sent} in {self.seconds:.1f} s")
        return "\n".join(lines)


class _Budget:
    def __init__(self) -> None:
        self.sent = 0
        self.started = time.monotonic()
        self.deadline = self.started + MAX_SECONDS
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.sent >= MAX_REQUESTS or time.monotonic() > self.deadline:
                return False
            self.sent += 1
            return True

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class _OutOfBudget(Exception):
    pass


class _Agent:
    def __init__(self, name: str, base: str, budget: _Budget, report: LiveReport,
                 rng: random.Random) -> None:
        self.name = name
        self.budget = budget
        self.report = report
        self.rng = rng
        self.client = httpx.Client(base_url=f"{base}/api/v1", timeout=10.0,
                                   headers={"X-Device-Id": f"sim-live-{name}-{rng.random()}"})
        self.auth: dict[str, str] = {}

    def send(self, step: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if not self.budget.take():
            raise _OutOfBudget
        headers = {**self.auth, **kwargs.pop("headers", {})}
        answer = self.client.request(method, path, headers=headers, **kwargs)
        code = ""
        if answer.status_code >= 400:
            try:
                code = str(answer.json().get("code", ""))
            except ValueError:
                code = ""
        self.report.steps[self.name].append((step, answer.status_code, code))
        return answer

    def pause(self, seconds: float) -> None:
        if seconds > self.budget.left():
            raise _OutOfBudget
        time.sleep(seconds)

    def sign_up(self, identity: Identity | None) -> int | None:
        """Register, log in (waiting out a log-in throttle once), add the patient (with
        ``None``: no patient, and 0 once logged in)."""
        name = f"sim{self.name.replace('-', '')}{self.rng.randrange(10**8):08d}"
        password = f"pw-{self.rng.randrange(10**12)}"
        phone = f"+86139{self.rng.randrange(10**8):08d}"
        made = self.send("register", "POST", "/auth/register", json={
            "username": name, "password": password, "phone": phone})
        if made.status_code != 201:
            return None
        for _ in range(2):
            token = self.send("login", "POST", "/auth/login",
                              json={"username": name, "password": password})
            if token.status_code == 200:
                self.auth = {"Authorization": f"Bearer {token.json()['token']}"}
                break
            if token.status_code != 429:
                return None
            self.pause(float(token.headers.get("Retry-After", "60")))
        else:
            return None
        if not self.verify_phone(phone):
            return None
        if identity is None:
            return 0
        patient = self.send("add_patient", "POST", "/me/patients",
                            json={"id_number": identity.id_number, "name": identity.name})
        return int(patient.json()["id"]) if patient.status_code == 201 else None

    def verify_phone(self, phone: str) -> bool:
        """Type back the code sent to the phone. The simulated phones are the target's
        development outbox (a demo server: ``FAIRSLOT_DEV_OUTBOX_PAGE``), read the way a
        person reads their texts."""
        inbox = self.send("read_texts", "GET", "/dev/outbox", params={"phone": phone})
        if inbox.status_code != 200:
            return False
        codes = [m["text"] for m in inbox.json() if m["kind"] == "phone.code"]
        found = re.search(r"\b(\d{6})\b", codes[0]) if codes else None
        if found is None:
            return False
        answer = self.send("verify_phone", "POST", "/me/phone/verify",
                           json={"code": found.group(1)})
        return answer.status_code == 200

    def screen(self, session_id: int) -> dict[str, Any] | None:
        answer = self.send("booking_screen", "GET", f"/sessions/{session_id}/booking-screen")
        return answer.json() if answer.status_code == 200 else None

    def book(self, step: str, session_id: int, patient_id: int,
             screen: dict[str, Any] | None) -> int | None:
        headers = {screen["token_header"]: screen["action_token"]} if screen else {}
        answer = self.send(step, "POST", "/bookings", headers=headers,
                           json={"session_id": session_id, "patient_id": patient_id})
        return int(answer.json()["id"]) if answer.status_code == 201 else None

    def pay(self, booking_id: int, think: float) -> None:
        answer = self.send("payment_screen", "GET", f"/bookings/{booking_id}/payment-screen")
        if answer.status_code != 200:
            return
        body = answer.json()
        if body.get("action_token") is None:  # no longer awaiting payment: nothing to pay
            return
        self.pause(think)
        self.send("pay", "POST", f"/bookings/{booking_id}/pay",
                  headers={body["token_header"]: body["action_token"]},
                  json={"payer_account": f"wechat:wx{self.name.replace('-', '')}"})


def _genuine(agent: _Agent, identity: Identity, session_id: int) -> None:
    """A person: a little slower at every step than the token's minimum age."""
    agent.pause(agent.rng.uniform(0.5, 2.0))  # arrives a moment after the bot
    patient_id = agent.sign_up(identity)
    if patient_id is None:
        return
    screen = agent.screen(session_id)
    if screen is None:
        return
    if not screen["session"]["free"]:
        return  # sees "no slots left"; does not press book
    agent.pause(agent.rng.uniform(2.0, 4.0))  # reads the screen (8-25 s in the simulation)
    booked = agent.book("book", session_id, patient_id, screen)
    if booked is not None:
        agent.pay(booked, agent.rng.uniform(2.0, 4.0))


def _bot(agent: _Agent, identity: Identity, session_id: int) -> None:
    """T1: API software. Skips the screen first; then learns to fetch it, fires at once,
    and finally waits out the token's minimum age."""
    patient_id = agent.sign_up(identity)
    if patient_id is None:
        return
    if agent.book("book_without_token", session_id, patient_id, None) is not None:
        return
    if agent.book("book_token_at_once", session_id, patient_id,
                  agent.screen(session_id)) is not None:
        return
    screen = agent.screen(session_id)
    agent.pause(1.6)
    booked = agent.book("book_after_min_age", session_id, patient_id, screen)
    if booked is not None:
        agent.pay(booked, 1.6)  # the payment screen's token has a minimum age too


def _clicker(agent: _Agent, identity: Identity, session_id: int) -> None:
    """T2: the real screens, clicked every 0.3 s until the server takes the click."""
    patient_id = agent.sign_up(identity)
    if patient_id is None:
        return
    screen = agent.screen(session_id)
    if screen is None or not screen["session"]["free"]:
        return
    for _ in range(12):
        agent.pause(_CLICK)
        headers = {screen["token_header"]: screen["action_token"]}
        answer = agent.send("click_book", "POST", "/bookings", headers=headers,
                            json={"session_id": session_id, "patient_id": patient_id})
        if answer.status_code == 201:
            agent.pay(int(answer.json()["id"]), 1.6)
            return
        if answer.status_code != 403:
            return  # slot_unavailable, a limit: the clicker has lost this one


def _farm(agent: _Agent, identity: Identity, session_id: int) -> None:
    """T3: a farm account adding invented patients (the identity is not used)."""
    if agent.sign_up(None) is None:
        return
    invented = make_residents(random.Random(f"farm:{agent.rng.random()}"), 1)[0]
    agent.send("add_invented", "POST", "/me/patients",
               json={"id_number": invented.id_number, "name": invented.name})
    digits = invented.id_number[:-1]
    wrong = next(c for c in "0123456789X" if c != invented.id_number[-1])
    agent.send("add_bad_checksum", "POST", "/me/patients",
               json={"id_number": digits + wrong, "name": invented.name})


def _find_session(client: httpx.Client, budget: _Budget) -> int | None:
    """The live hospital's hot session that is open for booking (fcfs, released, free)."""
    def get(path: str) -> Any:
        if not budget.take():
            raise _OutOfBudget
        answer = client.get(path)
        if answer.status_code == 429:
            raise LiveRunRefused(
                "the server's guard refused the live agent's browsing (429, retry after "
                f"{answer.headers.get('Retry-After', '?')} s): an earlier flood from this "
                "address is still counted")
        return answer.json() if answer.status_code == 200 else []

    hospitals = [h for h in get("/hospitals") if h["code"] == LIVE_HOSPITAL]
    found: int | None = None
    for hospital in hospitals:
        for dep in get(f"/hospitals/{hospital['id']}/departments"):
            for doctor in get(f"/departments/{dep['id']}/doctors"):
                for session in get(f"/doctors/{doctor['id']}/sessions"):
                    if session["released"] and session["free"] and \
                            session["release_policy"] == "fcfs":
                        found = int(session["id"])  # the newest prepared one wins
    return found


def _flood(client: httpx.Client, budget: _Budget, count: int, method: str, path: str,
           rotate_forwarded: int = 0, **kwargs: Any) -> dict[int, int]:
    seen: dict[int, int] = {}
    for n in range(count):
        if not budget.take():
            break
        headers = ({"X-Forwarded-For": f"100.64.{n % rotate_forwarded // 250}."
                    f"{n % rotate_forwarded % 250 + 1}"} if rotate_forwarded else {})
        status = client.request(method, path, headers=headers, **kwargs).status_code
        seen[status] = seen.get(status, 0) + 1
        time.sleep(_STEP)
    return seen


def run_live_agents(target: str, *, seed: int, floods: bool = True) -> LiveReport:
    """Run the live agents against ``target`` (loopback only) and return what happened."""
    base = check_target(target)
    rng = random.Random(seed)
    budget = _Budget()
    report = LiveReport(base)
    identities = live_identities(seed)
    try:
        with httpx.Client(base_url=f"{base}/api/v1", timeout=10.0) as public:
            report.session_id = _find_session(public, budget)
            if report.session_id is None:
                raise LiveRunRefused(f"{base} has no open live session: run `fairslot simulate "
                               "--prepare-live` on its database first")
            agents = [_Agent(name, base, budget, report, random.Random(rng.random()))
                      for name in _AGENTS]
            kinds = {"t1-bot": _bot, "t2-clicker": _clicker, "t3-farm": _farm}
            plays = [(kinds.get(a.name, _genuine), a, who)
                     for a, who in zip(agents, identities, strict=True)]
            errors: list[BaseException] = []

            def play(fn: Any, agent: _Agent, who: Identity) -> None:
                try:
                    fn(agent, who, report.session_id)
                except _OutOfBudget:
                    pass
                except BaseException as exc:  # reported after the join
                    errors.append(exc)
                finally:
                    agent.client.close()

            threads = [threading.Thread(target=play, args=p) for p in plays]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if errors:
                raise errors[0]
            if floods:
                report.floods["browsing flood, 0.02 s a request, X-Forwarded-For "
                              "rotating over 200 addresses"] = _flood(
                    public, budget, 650, "GET", "/hospitals", rotate_forwarded=200)
                report.floods["log-in flood, wrong password"] = _flood(
                    public, budget, 60, "POST", "/auth/login",
                    json={"username": "simfloodtarget", "password": "wrong-password"})
    except httpx.HTTPError as exc:
        raise LiveRunRefused(f"cannot reach {base}: {type(exc).__name__}") from exc
    report.sent = budget.sent
    report.seconds = time.monotonic() - budget.started
    return report


def run_live(target: str, *, seed: int) -> str:
    """Run the live agents and return a short report for the terminal."""
    return run_live_agents(target, seed=seed).render()
