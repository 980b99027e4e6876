"""The discrete-event simulation: one hospital release, one policy, in virtual time, over the
real services on a throw-away database.

Agents are generator functions that yield how long they wait before their next step; the
event loop keeps them in a heap ordered by virtual time and moves the injected clock to each
event before resuming its agent. Every step an agent takes goes through ``Simulation.call``,
which asks the real request guard (``fairslot.guard.Guard.decide``) first and then calls the
real service (accounts, booking, release). The rules — the draw, the waitlist, quotas, credit,
identity checks, rate limits, tokens, proof of work — are never re-implemented here; the
simulator only decides what each agent tries and when, and reads the outcome back from the
database.

The one shortcut: accounts are inserted directly with one precomputed password hash, because
Argon2 costs about 0.2 s per account; adding patients (the real-name check), entering,
booking, paying, cancelling and checking in all run through the services.

Time and randomness are injected everywhere, the guard included: the platform and the guard
get the simulation's ``FixedClock`` and a ``SeededRandomness``, so a limit of 20 a minute
means 20 per virtual minute and the same seed gives the same run. Nothing is patched.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import heapq
import json
import pathlib
import random
import statistics
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import UTC, FixedClock
from fairslot.config import Settings
from fairslot.domain import draw
from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_id_number, make_name, make_phone, make_residents
from fairslot.domain.rounds import RoundKind
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.guard import (
    ChallengeRequired,
    Guard,
    GuardError,
    MemoryLedger,
    Requester,
    RouteGroup,
)
from fairslot.guard.errors import ActionTokenRefused
from fairslot.randomness import SeededRandomness
from fairslot.scheduler import run_due_jobs
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.simulation import attackers
from fairslot.simulation.front_door import FrontDoor
from fairslot.simulation.metrics import (
    BUYER,
    CLIENT,
    GENUINE,
    SCALPER,
    Costs,
    Metrics,
    SlotOutcome,
    compute_metrics,
)
from fairslot.simulation.scenario import Scenario
from fairslot.storage import tables as t
from fairslot.storage.migrate import upgrade
from fairslot.storage.orm import map_domain
from fairslot.storage.uow import CommitHook, UnitOfWork

__all__ = ["RunResult", "Simulation"]

T = TypeVar("T")
Process = Generator[float, None, None]

# Simulated accounts never log in with a password; they all share one placeholder.
_PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2ltdWxhdGVk$c2ltdWxhdGVkIGFjY291bnQ"  # noqa: S105
_BOOK, _PAY = "book", "pay"
_ACTIVE = ("held", "paid", "checked_in", "no_show")
# Draws replayed per round to measure each entrant's chance (broker_advantage).
_CHANCE_REPLICATES = 400


class PermissiveVerifier:
    """``realname=off``: any well-formed identity is taken as real (ablation only)."""

    def verify(self, uow: UnitOfWork, identity: Identity) -> bool:
        return True

    def register(self, uow: UnitOfWork, identity: Identity) -> bool:
        return True


@dataclasses.dataclass
class Agent:
    """Who sends a request: the account, the addresses it comes from, and its tally."""

    kind: str
    account: Account
    ips: list[str]
    device: str | None
    rng: random.Random
    rotate: bool = False
    requests: int = 0
    refused: int = 0
    effort_s: float = 0.0
    started: bool = False

    def ip(self) -> str:
        return self.rng.choice(self.ips) if self.rotate else self.ips[0]

    @property
    def genuine(self) -> bool:
        return self.kind in (GENUINE, "elderly")


@dataclasses.dataclass
class Person:
    patient_id: int
    identity: Identity
    category: str
    agent: Agent
    wants: list[int]
    """Hot session ids this person asks for, best first."""
    booking_id: int | None = None
    attends: bool = True


@dataclasses.dataclass
class RunResult:
    policy: str
    metrics: Metrics
    timeline: list[tuple[float, dict[str, int]]]
    wall_s: float
    defences: dict[str, bool] = dataclasses.field(default_factory=dict)
    gains: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    """What the speed agents got (issue 18): early-token bots, leftover pollers, free
    re-holders, and who holds the late-scheduled clinic's slots."""

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "defences": self.defences,
                "metrics": self.metrics.as_dict(), "gains": self.gains,
                "timeline": [{"hours": round(h, 4), **c} for h, c in self.timeline],
                "wall_s": round(self.wall_s, 2)}


class Simulation:
    """One policy over one scenario. ``run()`` builds the world and plays it out."""

    def __init__(self, scenario: Scenario, policy: str, seed: int,
                 workdir: pathlib.Path | None = None) -> None:
        if policy not in ("fcfs", "fairslot"):
            raise ValueError(f"unknown policy {policy}")
        self.sc = scenario
        self.policy = policy
        self.rng = random.Random(f"{seed}:{scenario.name}")
        self.seed = seed
        self.workdir = workdir
        zone_release = dt.datetime.fromisoformat(
            str(scenario.knob("hospital", "release_at", "2026-12-01T08:00:00+08:00")))
        self.release_at = zone_release.astimezone(UTC)
        self.clock = FixedClock(self.release_at - dt.timedelta(days=3))
        self.defences = scenario.defences_for(policy)
        self.draw = self.defences["draw"]
        self._heap: list[tuple[float, int, Process]] = []
        self._seq = 0
        self.people: dict[int, Person] = {}
        self.costs = Costs()
        self.timeline: list[tuple[float, dict[str, int]]] = []
        self._seen_booking = 0
        self._held_by_ring: list[tuple[Person, int]] = []
        self.hot_sessions: list[int] = []
        self.sessions_of: dict[int, list[int]] = {}
        self.dept_of_session: dict[int, int] = {}
        self.round_of: dict[int, int] = {}
        self.draw_chances: dict[int, float] = {}
        """Each entrant's chance of a hot slot in the draw (patient id), after the run."""
        self.laundered_attempts = 0
        self.blocked: set[int] = set()
        self.commit_hooks: list[CommitHook] = []
        """Called with each commit's events, like a server's (the monitor's publisher, to
        replay the simulated traffic through the monitor)."""
        self.extra_slots = 0
        """Hot slots beyond the scenario's doctors: the late-scheduled clinic's."""
        self.late_session: int | None = None
        self._checking: set[int] = set()
        """Patients with a look at the free slots and short windows already scheduled."""
        self._entered_short: set[tuple[int, int]] = set()
        self._never_pay: set[int] = set()
        self.ring_sells = True
        """The ring's belief that a hold can be moved to a buyer (T4). It starts true (it
        is what works on today's platforms) and turns false after ``t4.give_up_after``
        failed transfers in a row; from then on the ring pays for no hold and cancels the
        paid ones (refunded), since a hold it cannot sell is worth nothing to it."""

    # -- virtual time -------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        return (self.clock.now() - self.release_at).total_seconds()

    def spawn(self, at_s: float, process: Process) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at_s, self._seq, process))

    def _loop(self, until_s: float) -> None:
        while self._heap and self._heap[0][0] <= until_s:
            at_s, _, process = heapq.heappop(self._heap)
            if at_s > self.now_s:
                self.clock.set(self.release_at + dt.timedelta(seconds=at_s))
            try:
                delay = next(process)
            except StopIteration:
                continue
            self._seq += 1
            heapq.heappush(self._heap, (self.now_s + max(delay, 0.0), self._seq, process))

    # -- the front door: guard, then service --------------------------------------------

    def call(self, agent: Agent, group: RouteGroup, action: Callable[[], T], *,
             patient_id: int | None = None, payer: str | None = None,
             need_token: str | None = None, target: str | None = None,
             token: str | None = None, pow_payload: str | None = None,
             exclusive: bool = False) -> T:
        agent.requests += 1
        if not agent.genuine:
            self.costs.requests += 1
        passed = None
        # The guard draws the address from the agent's own randomness (as it always did);
        # without a guard the front door draws it, leaving the agents' draws as they were.
        ip = agent.ip() if self.guard is not None else self.front_door.address(agent)
        self.front_door.begin(agent, ip)
        error: BaseException | None = None
        try:
            if self.guard is not None:
                who = Requester(client_ip=ip, device_id=agent.device,
                                device_new=not agent.started)
                agent.started = True
                try:
                    passed = self.runner.run(self.guard.decide(
                        who, group, account_id=str(agent.account.id),
                        patient_id=None if patient_id is None else str(patient_id),
                        payer=payer, need_token=need_token, target=target, token=token,
                        pow_payload=pow_payload, exclusive=exclusive))
                except GuardError:
                    if agent.genuine:
                        agent.refused += 1
                    raise
                self.front_door.passed(passed)
            return action()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.front_door.end(group, error)
            if passed is not None and self.guard is not None:
                self.runner.run(self.guard.release(passed))

    def context(self, agent: Agent) -> RequestContext:
        """The request context the server would hand the services for the agent's
        request: the address and device the guard saw, its holds, its screen's age."""
        return self.front_door.context(agent)

    def _book_now(self, agent: Agent, patient_id: int, session_id: int) -> booking.BookingView:
        """Book, in the agent's current request (its context is the request's)."""
        return self.platform.run(booking.book, agent.account, patient_id, session_id,
                                 self.context(agent))

    def screen_token(self, agent: Agent, action: str, target: str) -> str:
        """Open the screen that leads to ``action`` (a page view) and keep its token."""
        def view() -> str:
            if action == _BOOK:
                self.front_door.booking_screen(agent, int(target))
            return self.guard.issue_token(str(agent.account.id), action, target) \
                if self.guard is not None else ""
        return self.call(agent, RouteGroup.BROWSING, view)

    def booking_screen(self, agent: Agent, session_id: int) -> tuple[int, str]:
        """The booking screen: the session with its free slots, and the action token. A
        person (or a clicker driving the page) who sees no free slot does not press book."""
        def view() -> tuple[int, str]:
            free = self.platform.run(catalog.session_view, session_id).free
            token = self.guard.issue_token(str(agent.account.id), _BOOK, str(session_id)) \
                if self.guard is not None else ""
            self.front_door.booking_screen(agent, session_id)
            return free, token
        return self.call(agent, RouteGroup.BROWSING, view)

    def solve(self, agent: Agent, exc: ChallengeRequired, rate: float) -> str:
        """Solve a proof-of-work challenge for real (the search ALTCHA asks for) and charge
        its hashes, at the solver's native ``rate``, to the attackers' cost."""
        ch = exc.extra["challenge"]
        target, top = ch["challenge"], int(ch["maxNumber"])
        base = hashlib.sha256(ch["salt"].encode())
        number = top
        for n in range(top + 1):
            h = base.copy()
            h.update(str(n).encode())
            if h.hexdigest() == target:
                number = n
                break
        if not agent.genuine:
            self.costs.pow_hashes += number + 1
            self.costs.pow_cpu_s += (number + 1) / rate
        return base64.b64encode(json.dumps({
            "algorithm": ch["algorithm"], "challenge": target, "number": number,
            "salt": ch["salt"], "signature": ch["signature"]}).encode()).decode()

    # -- building the world --------------------------------------------------------------

    def _settings(self, url: str) -> Settings:
        values: dict[str, Any] = {
            "database_url": url, "secret_key": "simulation-" + "k" * 40, "scheduler": False,
            "waitlist_enabled": self.defences["waitlist"],
            "short_windows_enabled": self.defences["windows"],
            "quotas_enabled": self.defences["quotas"],
            "credit_enabled": self.defences["credit"],
            # The draw's keys, public constants: a simulated hospital proves nothing to
            # anyone, and a run writes no key files.
            "draw_signing_key": hashlib.sha256(b"fairslot simulation draw key").hexdigest(),
            "draw_local_chain_key": hashlib.sha256(b"fairslot simulation chain").hexdigest(),
        }
        values.update(attackers.settings_for(self.defences))
        values.update(self.sc.settings)
        return Settings(**values)

    def _catalog(self, platform: Platform) -> None:
        hospital = platform.run(catalog.create_hospital, "SIM", "Simulated hospital")
        visit_days = int(self.sc.knob("hospital", "visit_days_after_release", 7))
        local_release = self.release_at.astimezone(platform.settings.zone)
        visit = local_release.date() + dt.timedelta(days=visit_days)
        departments: dict[str, int] = {}
        policy = ReleasePolicy.DRAW if self.draw else ReleasePolicy.FCFS
        self.doctor_sessions: list[list[int]] = []
        self.doctor_ids: list[int] = []
        self.visit_date = visit
        for doc in self.sc.doctors:
            if doc.department not in departments:
                dep = platform.run(catalog.create_department, hospital.id or 0, doc.department,
                                                doc.department.title())
                departments[doc.department] = dep.id or 0
            doctor = platform.run(catalog.create_doctor, departments[doc.department], doc.name,
                                           "Chief physician", doc.department,
                                           release_policy=policy, hot=True)
            self.doctor_ids.append(doctor.id or 0)
            periods = [Period.MORNING, Period.AFTERNOON]
            sessions: list[int] = []
            for day in range((doc.sessions + 1) // 2):
                n = min(2, doc.sessions - 2 * day)
                made = platform.run(
                    catalog.schedule_sessions, doctor.id or 0,
                    [visit + dt.timedelta(days=day)], periods[:n],
                    doc.capacity, doc.fee_cents, release_days_before=visit_days + day,
                    release_time=local_release.time().replace(tzinfo=None),
                    release_policy=policy)
                sessions += [s.id or 0 for s in made]
            self.doctor_sessions.append(sessions)
            for sid in sessions:
                self.dept_of_session[sid] = departments[doc.department]
            self.hot_sessions += sessions
        with platform.uow() as uow:
            self.session_times = {sid: (s.starts_at, s.ends_at) for sid in self.hot_sessions
                                  if (s := uow.schedule.session(sid)) is not None}

    def _accounts(self, platform: Platform, prefix: str, count: int,
                  phones: Callable[[int], str]) -> list[Account]:
        now = platform.clock.now()
        made = [Account(username=f"{prefix}{i:05d}", role=Role.PATIENT,
                        password_hash=_PASSWORD_HASH, phone=phones(i), created_at=now,
                        # the simulated SIM cards receive their codes
                        phone_verified_at=now)
                for i in range(count)]
        with platform.uow() as uow:
            for account in made:
                uow.accounts.add(account)
            uow.commit()
        return made

    def _add(self, agent: Agent, identity: Identity | tuple[str, str], category: str,
             wants: list[int], *, attends: bool = True) -> Person | None:
        """Add a patient to the agent's account through the real-name check (logged as a
        request; the registration route's own guard is not played)."""
        id_number, name = (identity.id_number, identity.name) if isinstance(
            identity, Identity) else identity
        try:
            patient = self.platform.run(accounts.add_patient, agent.account, id_number, name,
                                           None, self.context(agent))
        except FairslotError as exc:
            self.front_door.access(agent, agent.ips[0], RouteGroup.REGISTRATION, exc.status)
            if not agent.genuine:
                self.costs.identities_burned += 1
            return None
        self.front_door.access(agent, agent.ips[0], RouteGroup.REGISTRATION, 201)
        person = Person(patient.id or 0, Identity(patient.id_number, patient.name), category,
                        agent, wants, attends=attends)
        self.people[person.patient_id] = person
        return person

    def _wants(self, rng: random.Random) -> list[int]:
        weights = [d.popularity for d in self.sc.doctors]
        index = rng.choices(range(len(weights)), weights)[0]
        own = list(self.doctor_sessions[index])
        rng.shuffle(own)
        dept = self.dept_of_session[own[0]]
        others = [s for s in self.hot_sessions if self.dept_of_session[s] == dept
                  and s not in own]
        rng.shuffle(others)
        return (own + others)[:3]

    def _populate(self) -> None:
        sc, rng, platform = self.sc, self.rng, self.platform
        n_gen = int(sc.knob("genuine", "patients", 100))
        n_client = int(sc.knob("t9", "clients", 0))
        n_ring = int(sc.knob("ring", "identities", 0))
        n_crowd = int(sc.knob("t8", "crowds", 0)) * int(sc.knob("t8", "size", 20))
        n_buyers = int(sc.knob("t4", "buyers", 0))
        n_early = int(sc.knob("early", "identities", 0))
        n_poll = int(sc.knob("poller", "identities", 0))
        n_rehold = int(sc.knob("reholder", "identities", 0))
        residents = make_residents(rng, n_gen + n_client + n_ring + n_crowd + n_buyers
                                   + n_early + n_poll + n_rehold)
        with platform.uow() as uow:
            for identity in residents:
                platform.verifier.register(uow, identity)
            uow.commit()
        it = iter(residents)
        staff = self._accounts(platform, "desk", 1, lambda i: make_phone(rng))[0]
        with platform.uow() as uow:
            staff.role = Role.REGISTRATION
            uow.db.merge(staff)
            uow.commit()
        self.staff = staff
        # Genuine patients: one account, one home address and one device each.
        elderly_share = float(sc.knob("genuine", "elderly_share", 0.1))
        no_show = float(sc.knob("genuine", "no_show", 0.03))
        gen_accounts = self._accounts(platform, "pt", n_gen, lambda i: make_phone(rng))
        self.genuine: list[Person] = []
        self.elderly: list[tuple[Identity, list[int]]] = []
        for i, account in enumerate(gen_accounts):
            identity = next(it)
            wants = self._wants(rng)
            if rng.random() < elderly_share:
                self.elderly.append((identity, wants))
                continue
            agent = Agent(GENUINE, account, [f"10.{i // 65536 % 256}.{i // 256 % 256}."
                                             f"{i % 256}"], f"dev-pt-{i}", random.Random(
                                                 rng.random()))
            person = self._add(agent, identity, GENUINE, wants,
                               attends=rng.random() >= no_show)
            if person is not None:
                self.genuine.append(person)
        # Scalpers' people: T9 clients (real patients who paid a broker), ring identities
        # (members, accomplices: T4/T5 holders), T8 crowds, and T3 farm identities.
        proxies = [f"100.{64 + i // 256 % 64}.{i % 256}.{(i * 7) % 250 + 1}"
                   for i in range(int(sc.knob("t7", "proxy_pool", 1)))]
        self.proxies = proxies
        per_account = platform.settings.max_patients_per_account
        self.clients = self._scalper_people(
            "brk", [next(it) for _ in range(n_client)], CLIENT, per_account, proxies)
        self.ring = self._scalper_people(
            "ring", [next(it) for _ in range(n_ring)], SCALPER, per_account, proxies,
            all_departments=True)
        self.crowd = self._scalper_people(
            "crowd", [next(it) for _ in range(n_crowd)], SCALPER, 1,
            [f"172.16.{i}.9" for i in range(max(1, n_crowd))])
        self.buyers = [next(it) for _ in range(n_buyers)]
        # Issue 18's speed agents, each on the ring's software behind its proxies.
        self.early = self._scalper_people(
            "early", [next(it) for _ in range(n_early)], SCALPER, per_account, proxies)
        self.pollers = self._scalper_people(
            "poll", [next(it) for _ in range(n_poll)], SCALPER, per_account, proxies)
        self.reholders = self._scalper_people(
            "rehold", [next(it) for _ in range(n_rehold)], SCALPER, per_account, proxies)
        self._never_pay = {p.patient_id for p in self.reholders}
        share = float(sc.knob("genuine", "watchers", 0.0))
        low, high = (float(x) for x in sc.knob("genuine", "watch_every_s", [60.0, 300.0]))
        self.watchers = [(p, rng.uniform(low, high)) for p in self.genuine
                         if rng.random() < share]
        self._per_account = per_account
        self.laundered_to: list[Person] = []
        self.launder_accounts = self._accounts(
            platform, "lnd", max(1, (n_buyers + per_account - 1) // per_account),
            lambda i: make_phone(rng))
        farm = int(sc.knob("t3", "accounts", 0))
        fake: list[tuple[str, str]] = []
        for i in range(farm):
            kind = i % 3
            good = make_id_number(rng)
            if kind == 0:   # invalid check digit
                fake.append((good[:-1] + ("0" if good[-1] != "0" else "1"), make_name(rng)))
            elif kind == 1:  # nonsense name ("561", "789")
                fake.append((good, str(rng.randint(100, 999))))
            else:            # well-formed but nobody's
                fake.append((good, make_name(rng)))
        self.farm = self._scalper_people("farm", fake, SCALPER, 1, proxies)
        self.hubs = [f"alipay:hub{i}@pay.example" for i in range(
            max(1, int(sc.knob("t6", "payer_hubs", 1))))]

    def _scalper_people(self, prefix: str, identities: list[Any], category: str,
                        per_account: int, ips: list[str], *,
                        all_departments: bool = False) -> list[Person]:
        if not identities:
            return []
        n_accounts = (len(identities) + per_account - 1) // per_account
        made = self._accounts(self.platform, prefix, n_accounts,
                              lambda i: make_phone(self.rng))
        out: list[Person] = []
        for i, identity in enumerate(identities):
            account = made[i // per_account]
            agent = Agent(category, account, ips, f"dev-{prefix}-{i // per_account}",
                          random.Random(self.rng.random()), rotate=len(ips) > 1)
            if all_departments:
                # T5: one identity asks for the hot doctors of every department.
                firsts = {self.dept_of_session[s]: s for s in reversed(self.hot_sessions)}
                wants = list(firsts.values())
                self.rng.shuffle(wants)
                wants = wants[:3]
            else:
                wants = self._wants(self.rng)
            person = self._add(agent, identity, category, wants, attends=category == CLIENT)
            if person is not None:
                out.append(person)
        return out

    def _history(self) -> None:
        """Past no-shows of ring identities, made through the real services on an earlier
        session, so that the credit rule has something to act on."""
        share = float(self.sc.knob("ring", "prior_no_show_share", 0.0))
        chosen = [p for p in self.ring + self.crowd if self.rng.random() < share]
        if not chosen:
            return
        platform = self.platform
        with platform.uow() as uow:
            hospital = uow.schedule.hospital_by_code("SIM")
            assert hospital is not None
            dep = uow.schedule.departments(hospital.id or 0)[0]
        doctor = platform.run(catalog.create_doctor, dep.id or 0, "Past clinic", "Attending",
                                       "history")
        # Recent enough that the first offence's 30-day suspension still runs at the release.
        past = self.release_at - dt.timedelta(days=10)
        self.clock.set(past - dt.timedelta(days=7))
        local = past.astimezone(platform.settings.zone)
        made = platform.run(catalog.schedule_sessions, doctor.id or 0, [local.date()],
                                         [Period.MORNING], len(chosen), 1000,
                                         release_days_before=2)
        self.clock.set(past - dt.timedelta(days=1))
        ctx = RequestContext(ip="192.0.2.1")
        for person in chosen:
            view = platform.run(booking.book, person.agent.account, person.patient_id,
                                made[0].id or 0, ctx)
            platform.run(booking.pay, person.agent.account, view.booking.id or 0,
                        f"alipay:past{person.patient_id}@pay.example", ctx)
        self.clock.set(past + dt.timedelta(days=1))
        platform.run_job(booking.record_no_shows)

    # -- agents --------------------------------------------------------------------------

    def _book(self, person: Person, session_id: int, *, skip_screens: bool, think: float,
              rate: float) -> Generator[float, None, str]:
        """One booking attempt with retries on the guard's answers; returns the outcome
        code (``ok`` or the refusal's code)."""
        agent = person.agent
        token: str | None = None
        if not skip_screens:
            free, token = self.booking_screen(agent, session_id)
            if not free:
                yield think / 4  # a glance at "no slots left"
                agent.effort_s += think / 4
                return "full"
        yield think
        agent.effort_s += think
        pow_payload: str | None = None
        for _ in range(6):
            try:
                view = self.call(
                    agent, RouteGroup.BOOKING,
                    lambda: self.platform.run(booking.book, agent.account, person.patient_id,
                                         session_id, self.context(agent)),
                    patient_id=person.patient_id, need_token=_BOOK, target=str(session_id),
                    token=token, pow_payload=pow_payload, exclusive=True)
            except ChallengeRequired as exc:
                pow_payload = self.solve(agent, exc, rate)
                continue
            except ActionTokenRefused as exc:
                if exc.code == "token_too_early":
                    yield 1.6
                    continue
                if exc.code == "token_missing" and skip_screens:
                    return exc.code
                token = self.screen_token(agent, _BOOK, str(session_id))
                yield 1.6
                continue
            except GuardError as exc:
                return exc.code
            except FairslotError as exc:
                self._note_refusal(person, exc)
                return exc.code
            person.booking_id = view.booking.id
            return "ok"
        return "gave_up"

    def _pay(self, person: Person, payer: str, delay: float,
             booking_id: int | None = None) -> Process:
        agent = person.agent
        booking_id = booking_id or person.booking_id
        if booking_id is None or (person.category == SCALPER and not self.ring_sells):
            return
        try:
            token = self.screen_token(agent, _PAY, str(booking_id))
        except FairslotError:
            return
        yield delay
        if agent.genuine:
            agent.effort_s += delay
        if person.category == SCALPER and not self.ring_sells:
            return  # learnt meanwhile that holds cannot be sold: the hold lapses
        for _ in range(3):
            try:
                self.call(agent, RouteGroup.PAYMENT,
                          lambda: self.platform.run(booking.pay, agent.account, booking_id, payer,
                                              self.context(agent)),
                          payer=payer, need_token=_PAY, target=str(booking_id), token=token,
                          exclusive=True)
                if person.category == SCALPER:
                    self._held_by_ring.append((person, booking_id))
                return
            except ActionTokenRefused:
                yield 2.0
                token = self.screen_token(agent, _PAY, str(booking_id))
                yield 2.0
            except FairslotError:
                return

    def _payer(self, person: Person) -> str:
        if (variant := self.attackers.payer(person)) is not None:
            return variant
        if person.category in (GENUINE, BUYER):
            return f"wechat:wx{person.patient_id}"
        if person.category == CLIENT and self.rng.random() < 0.5:
            return f"wechat:wx{person.patient_id}"
        return self.rng.choice(self.hubs)  # T6: the ring's payment hubs

    def genuine_fcfs(self, person: Person) -> Process:
        rng = person.agent.rng
        yield 0.0
        person.agent.effort_s += 20.0  # log in and find the doctor
        yield 20.0
        for _ in range(int(self.sc.knob("genuine", "retries", 3)) + 1):
            for sid in person.wants:
                outcome = yield from self._book(person, sid, skip_screens=False,
                                                think=rng.uniform(8, 25), rate=1e6)
                if outcome == "ok":
                    yield from self._pay(person, self._payer(person), rng.uniform(40, 120))
                    return
            wait = rng.uniform(30, 180)
            person.agent.effort_s += wait
            yield wait

    def genuine_draw(self, person: Person) -> Process:
        rng = person.agent.rng
        yield 0.0
        think = rng.uniform(60, 180)
        person.agent.effort_s += 20.0 + think
        yield 20.0 + think
        yield from self._enter(person, rate=1e6)

    def _enter(self, person: Person, rate: float) -> Process:
        """Enter every round the person's wanted sessions belong to (one for a patient;
        one per department for a T5 identity)."""
        rounds = list(dict.fromkeys(self.round_of[s] for s in person.wants
                                    if s in self.round_of))
        for round_id in rounds:
            yield from self._enter_round(person, round_id, rate)

    def _enter_round(self, person: Person, round_id: int, rate: float) -> Process:
        choices = [s for s in person.wants if self.round_of.get(s) == round_id]
        yield from self._entry(person, round_id, choices, rate, f"e{person.patient_id}")

    def _entry(self, person: Person, round_id: int, choices: list[int], rate: float,
               key: str) -> Process:
        """Enter ``round_id`` with ``choices`` through the guard, solving a challenge or
        waiting out a refusal up to four times; a platform refusal is noted."""
        agent = person.agent
        pow_payload: str | None = None
        for _ in range(4):
            try:
                self.call(agent, RouteGroup.ENTERING,
                          lambda: self.platform.run(release.enter, agent.account, round_id,
                                                person.patient_id, choices,
                                                self.context(agent),
                                                idempotency_key=f"{key}-{round_id}"),
                          patient_id=person.patient_id, pow_payload=pow_payload)
                return
            except ChallengeRequired as exc:
                pow_payload = self.solve(agent, exc, rate)
            except GuardError as exc:
                yield float(exc.extra.get("retry_after", 30) or 30)
            except FairslotError as exc:
                self._note_refusal(person, exc)
                return

    def _note_refusal(self, person: Person, exc: FairslotError) -> None:
        """An attacker identity stopped by the credit rule or a quota is spent too."""
        if person.category != GENUINE and (exc.code == "credit_suspended"
                                           or exc.code.startswith("quota_")):
            self.blocked.add(person.patient_id)

    def bot_fcfs(self, people: list[Person], *, skip_screens: bool, step: float,
                 rate: float, multi: bool = False) -> Process:
        """T1/T2/T9 software: fires at the release instant for every identity it holds."""
        yield 0.0
        pending = list(people)
        for _ in range(4):
            left: list[Person] = []
            for person in pending:
                done = False
                for sid in person.wants:
                    outcome = yield from self._book(person, sid, skip_screens=skip_screens,
                                                    think=step, rate=rate)
                    if outcome == "ok":
                        self.spawn(self.now_s, self._pay(person, self._payer(person), 5.0,
                                                         person.booking_id))
                        done = True
                        if not multi:
                            break
                        # T5: the same identity goes on to hold a slot in the next
                        # department too.
                    if outcome == "token_missing":
                        skip_screens = False  # the bot's operator learns to fetch screens
                if not done:
                    left.append(person)
            pending = left
            if not pending:
                return
            yield step

    def bot_draw(self, people: list[Person], rate: float) -> Process:
        yield 0.0
        for person in people:
            yield from self._enter(person, rate)
            yield 0.3

    def launderer(self) -> Process:
        """T4: when a customer pays, cancel a held slot and catch it under the customer.

        The ring's bot books the customer at once and, if the slot is not back in the open
        pool yet, keeps watching the booking screen (0.5 s, then every 10 s) for up to
        ``t4.poll_s``: with the ``windows`` defence off a freed slot returns to the pool at
        once; with it on, a freed slot of a full session goes to a short window, where the
        booking is refused. A transfer that fails is refunded to the customer; after
        ``t4.give_up_after`` failures in a row the ring concludes its holds cannot be sold
        here (``ring_sells``)."""
        sc, rng = self.sc, self.rng
        gap = float(sc.knob("t4", "buyer_every_s", 1800.0))
        poll_s = float(sc.knob("t4", "poll_s", 1800.0))
        give_up = int(sc.knob("t4", "give_up_after", 2))
        failures = 0
        yield 3600.0
        for identity in self.buyers:
            yield rng.expovariate(1 / gap)
            if not self.ring_sells or not self._held_by_ring:
                continue
            holder, old = self._held_by_ring[0]
            agent = holder.agent
            session_id = self._session_of(old)
            # The customer goes on one of the ring's spare accounts (the holders' own are
            # full: five patients each); the same software drives both.
            spare = self.launder_accounts[len(self.laundered_to) // self._per_account]
            buyer = self._add(Agent(SCALPER, spare, agent.ips, agent.device,
                                    random.Random(rng.random()), rotate=agent.rotate),
                              identity, BUYER, [session_id])
            if buyer is None:
                continue
            self.laundered_to.append(buyer)
            self._held_by_ring.pop(0)
            self.laundered_attempts += 1
            try:
                self.screen_token(agent, _BOOK, str(session_id))
                yield 1.6
                self._cancel(agent, old)
            except FairslotError:
                continue
            self._dispatch_offers()
            outcome, waited = "", 0.0
            while True:
                try:
                    outcome = yield from self._book(buyer, session_id, skip_screens=False,
                                                    think=0.02, rate=5e6)
                except FairslotError as exc:  # the guard refused the screen itself
                    outcome = exc.code
                if outcome == "ok" or waited >= poll_s:
                    break
                step = 0.5 if waited < 10.0 else 10.0
                waited += step
                yield step
            if outcome == "ok":
                failures = 0
                self.spawn(self.now_s, self._pay(buyer, self._payer(buyer), 30.0))
                continue
            failures += 1  # the customer's money goes back
            if failures >= give_up:
                self.ring_sells = False
                self.spawn(self.now_s, self._release_holds())

    def _release_holds(self) -> Process:
        """The ring gives up selling: its paid holds are cancelled (refunded; the slots
        go wherever the platform sends freed slots), unpaid ones are left to lapse."""
        while self._held_by_ring:
            person, old = self._held_by_ring.pop(0)
            with contextlib.suppress(FairslotError):
                self._cancel(person.agent, old)
            self._dispatch_offers()
            yield 1.0

    def _cancel(self, agent: Agent, booking_id: int) -> None:
        self.call(agent, RouteGroup.BOOKING,
                  lambda: self.platform.run(booking.cancel, agent.account, booking_id,
                                         self.context(agent)))
        self._wake()

    def _session_of(self, booking_id: int | None) -> int:
        with self.platform.uow() as uow:
            found = uow.bookings.get(booking_id or 0)
            return found.session_id if found is not None else 0

    def unsold(self) -> Process:
        """Before the cancellation cut-off the ring cancels its unsold holds (refunded).
        Without a credit rule a forgotten hold costs nothing, and ``1 - ring.cancel_unsold``
        of them are left to become no-shows (today's platforms: Nanjing's 50,000 slots
        never checked in, "partly from scalpers' unsold holds"); with the credit rule a
        no-show suspends the identity, which is the ring's working asset, so it cancels
        them all."""
        keep = 1.0 if self.defences["credit"] else float(
            self.sc.knob("ring", "cancel_unsold", 0.7))
        for person, old in list(self._held_by_ring):
            if self.rng.random() >= keep:
                continue
            agent = person.agent
            with contextlib.suppress(FairslotError):
                self._cancel(agent, old)
            yield 20.0
            self._dispatch_offers()

    def desk_entries(self, people: list[tuple[Identity, list[int]]]) -> Process:
        """Elderly patients come to the registration desk while the window is open; the
        desk checks their identity card and enters them in the round of the doctor they
        want (``release.enter_at_desk``: one entry per patient, the patient's credit and
        quotas, not the desk account's)."""
        ctx = RequestContext(ip="192.0.2.10", channel=Channel.WINDOW)
        for identity, wants in people:
            yield self.rng.uniform(60.0, 600.0)  # the queue at the desk
            rid = next((self.round_of[s] for s in wants if s in self.round_of), None)
            if rid is None:
                continue
            choices = [s for s in wants if self.round_of.get(s) == rid][:3]
            try:
                entry = self.platform.run(release.enter_at_desk, self.staff, rid,
                                              identity.id_number, identity.name, choices, ctx)
            except FairslotError:
                continue
            agent = Agent("elderly", self.staff, ["192.0.2.10"], None,
                          random.Random(self.rng.random()))
            pid = entry.entry.patient_id
            self.people[pid] = Person(pid, identity, GENUINE, agent, wants)

    def _desk_pay(self, person: Person, booking_id: int) -> Process:
        """An elderly patient who won (or was offered a slot) pays at the desk or by phone
        with their card; desk requests do not pass the online guard."""
        yield 0.0
        with contextlib.suppress(FairslotError):
            self.platform.run(booking.pay, self.staff, booking_id,
                        f"card:62220{person.patient_id:011d}",
                        RequestContext(ip="192.0.2.10", channel=Channel.WINDOW))

    def _holds_hot_slot(self, patient_id: int) -> bool:
        with self.platform.uow() as uow:
            return uow.db.execute(
                sa.select(sa.func.count()).select_from(t.bookings)
                .where(t.bookings.c.patient_id == patient_id,
                       t.bookings.c.session_id.in_(self.hot_sessions),
                       t.bookings.c.status.in_(_ACTIVE))).scalar_one() > 0

    def desk(self) -> Process:
        """Elderly patients queue at the window on the visit day for what is left (those
        who already hold a slot from the draw do not)."""
        yield 0.0
        ctx = RequestContext(ip="192.0.2.10", channel=Channel.WINDOW)
        known = {p.identity.id_number: p for p in self.people.values()}
        for identity, wants in self.elderly:
            yield 120.0
            entered = known.get(identity.id_number)
            if entered is not None and self._holds_hot_slot(entered.patient_id):
                continue
            for sid in wants:
                try:
                    view = self.platform.run(booking.book_on_site, self.staff, sid,
                                                identity.id_number, identity.name,
                                                "card:6222000000000000", ctx)
                except FairslotError:
                    continue
                agent = Agent("elderly", self.staff, ["192.0.2.10"], None, self.rng)
                person = Person(view.patient.id or 0, identity, GENUINE, agent, wants,
                                view.booking.id)
                self.people[person.patient_id] = person
                break

    # -- issue 18: the speed agents -------------------------------------------------------

    def early_tokens(self, people: list[Person]) -> Process:
        """API bots that open each identity's booking screen 12 s before the release (the
        action token is then old enough) and fire 30 ms after it."""
        tokens: dict[int, tuple[int, str]] = {}
        for person in people:
            sid = person.wants[0]
            with contextlib.suppress(FairslotError):
                tokens[person.patient_id] = (sid, self.screen_token(person.agent, _BOOK,
                                                                    str(sid)))
            yield 0.01
        yield max(0.0, 0.03 - self.now_s)
        for person in people:
            if person.patient_id not in tokens:
                continue
            sid, token = tokens[person.patient_id]
            agent = person.agent
            try:
                view = self.call(
                    agent, RouteGroup.BOOKING,
                    functools.partial(self._book_now, agent, person.patient_id, sid),
                    patient_id=person.patient_id, need_token=_BOOK, target=str(sid),
                    token=token, exclusive=True)
            except FairslotError:
                continue  # a draw session (or the guard): nothing to grab at the release
            person.booking_id = view.booking.id
            self.spawn(self.now_s, self._pay(person, self._payer(person), 5.0,
                                             view.booking.id))
            yield 0.002

    def reholder_start(self, person: Person) -> Process:
        """A free re-holder grabs a slot at the release like a bot, and then never pays:
        when the hold lapses it grabs the slot again (``_wake``)."""
        yield 0.0
        for sid in person.wants:
            outcome = yield from self._book(person, sid, skip_screens=False, think=0.02,
                                            rate=5e6)
            if outcome == "ok":
                return

    def reholders_sell(self) -> Process:
        """Before the cut-off the re-holders pay for what they hold, if the ring still
        believes it can sell (then it goes to the launderer like any paid hold)."""
        yield 0.0
        self._never_pay.clear()
        if not self.ring_sells:
            return
        for person in self.reholders:
            with self.platform.uow() as uow:
                held = [b for b in uow.bookings.of_account(person.agent.account.id or 0)
                        if b.patient_id == person.patient_id and b.status.value == "held"
                        and b.session_id in self.hot_sessions]
            for b in held:
                yield from self._pay(person, self._payer(person), 1.0, b.id)

    def late_clinic(self) -> Process:
        """An extra clinic of the hottest doctor, scheduled after its release time (the
        day before the visit day): the operator adds it at ``late.added_after_s``."""
        yield 0.0
        capacity = int(self.sc.knob("late", "capacity", 0))
        doc = self.sc.doctors[0]
        local_release = self.release_at.astimezone(self.platform.settings.zone)
        day = self.visit_date - dt.timedelta(days=1)
        made = self.platform.run(
            catalog.schedule_sessions, self.doctor_ids[0], [day], [Period.AFTERNOON],
            capacity, doc.fee_cents,
            release_days_before=(day - local_release.date()).days,
            release_time=local_release.time().replace(tzinfo=None),
            release_policy=ReleasePolicy.DRAW if self.draw else ReleasePolicy.FCFS)
        if not made:
            return
        sid = made[0].id or 0
        self.late_session = sid
        self.extra_slots += capacity
        self.hot_sessions.append(sid)
        self.dept_of_session[sid] = self.dept_of_session[self.doctor_sessions[0][0]]
        self.session_times[sid] = (made[0].starts_at, made[0].ends_at)
        own = set(self.doctor_sessions[0])
        for person in self.people.values():
            if own & set(person.wants):
                person.wants.append(sid)
        self.spawn((made[0].starts_at - self.release_at).total_seconds() - 1800,
                   self.check_ins(sid))
        self._wake()

    def _wake(self) -> None:
        """Something may have freed up (a tick's expiries and draws, a cancellation, a new
        clinic): each poller, re-holder and watching patient takes their next look at their
        own pace: a poller within ``poller.poll_s`` (1 s), a re-holder at once, a patient
        within their 1-5 minutes. Between two such moments nothing changes, so looks in
        between are counted, not played."""
        if self.now_s < 600.0:
            return  # the release's own rush is the other agents' business
        now = self.clock.now()
        with self.platform.uow() as uow:
            free = uow.schedule.free_counts(self.hot_sessions, now)
            open_ = uow.rounds.open_rounds_of_sessions(self.hot_sessions, now)
            kinds = uow.rounds.by_ids(list(set(open_.values())))
        short = {sid: rid for sid, rid in open_.items()
                 if kinds[rid].kind is not RoundKind.RELEASE}
        if not any(free.values()) and not short:
            return
        poll_s = float(self.sc.knob("poller", "poll_s", 1.0))
        lookers = ([(p, poll_s) for p in self.pollers] + [(p, 0.03) for p in self.reholders]
                   + self.watchers)
        for person, every in lookers:
            if person.patient_id in self._checking or person.patient_id in self.blocked:
                continue
            self._checking.add(person.patient_id)
            self.spawn(self.now_s + person.agent.rng.uniform(0.0, every), self._look(person))

    def _look(self, person: Person) -> Process:
        yield 0.0
        self._checking.discard(person.patient_id)
        if self._holds_hot_slot(person.patient_id):
            return
        now = self.clock.now()
        genuine = person.category == GENUINE
        sessions = person.wants if genuine else self.hot_sessions
        with self.platform.uow() as uow:
            free = uow.schedule.free_counts(sessions, now)
            open_ = uow.rounds.open_rounds_of_sessions(sessions, now)
            kinds = uow.rounds.by_ids(list(set(open_.values())))
        rate = 1e6 if genuine else 5e6
        if genuine:
            person.agent.effort_s += 20.0
        for sid, rid in open_.items():
            if kinds[rid].kind is RoundKind.RELEASE or (person.patient_id, rid) in \
                    self._entered_short:
                continue
            self._entered_short.add((person.patient_id, rid))
            yield from self._enter_short(person, rid, sid, rate)
        for sid in sessions:
            if not free.get(sid):
                continue
            outcome = yield from self._book(
                person, sid, skip_screens=False,
                think=person.agent.rng.uniform(8, 25) if genuine else 0.03, rate=rate)
            if outcome != "ok":
                continue
            if person.patient_id not in self._never_pay:
                delay = person.agent.rng.uniform(40, 120) if genuine else 5.0
                self.spawn(self.now_s, self._pay(person, self._payer(person), delay))
            return

    def _enter_short(self, person: Person, round_id: int, session_id: int,
                     rate: float) -> Process:
        yield from self._entry(person, round_id, [session_id], rate, f"s{person.patient_id}")

    def _gains(self, end: dt.datetime) -> dict[str, dict[str, float]]:
        holders = collections.Counter(p for _, p, _ in self._bookings())
        groups = {"early_token": self.early, "poller": self.pollers,
                  "reholder": self.reholders}
        out: dict[str, dict[str, float]] = {}
        with self.platform.uow() as uow:
            for name, people in groups.items():
                if not people:
                    continue
                ids = [p.patient_id for p in people]
                rows = uow.db.execute(
                    sa.select(t.bookings.c.created_at, t.bookings.c.closed_at,
                              t.bookings.c.status, t.bookings.c.channel)
                    .where(t.bookings.c.patient_id.in_(ids),
                           t.bookings.c.session_id.in_(self.hot_sessions))).all()
                out[name] = {
                    "identities": len(people),
                    "final_slots": sum(holders[i] for i in ids),
                    "holds": len(rows),
                    "raced_in_first_second": sum(
                        1 for r in rows if (r.created_at - self.release_at).total_seconds()
                        < 1.0 and str(getattr(r.channel, "value", r.channel)) not in (
                            "draw", "waitlist")),
                    "lapsed": sum(1 for r in rows if str(getattr(
                        r.status, "value", r.status)) == "expired"),
                    "hold_hours": round(sum(((r.closed_at or end) - r.created_at)
                                            .total_seconds() for r in rows) / 3600, 2),
                    "suspended_or_quota": len(set(ids) & self.blocked)}
        if self.late_session is not None:
            late: collections.Counter[str] = collections.Counter()
            for sid, patient_id, _ in self._bookings():
                if sid == self.late_session:
                    late[self._category(patient_id)] += 1
            capacity = float(self.sc.knob("late", "capacity", 0))
            out["late_clinic"] = {"slots": capacity, **{k: float(v) for k, v in late.items()}}
        out.update(self.attackers.gains(holders))
        return out

    def _dispatch_offers(self) -> None:
        """The in-app inbox: owners of new held bookings (draw wins, waitlist offers) see
        them and react, each at their own pace."""
        with self.platform.uow() as uow:
            rows = uow.db.execute(
                sa.select(t.bookings.c.id, t.bookings.c.patient_id, t.bookings.c.channel)
                .where(t.bookings.c.id > self._seen_booking,
                       t.bookings.c.channel.in_(["draw", "waitlist"]),
                       t.bookings.c.status == "held").order_by(t.bookings.c.id)).all()
        for booking_id, patient_id, channel in rows:
            self._seen_booking = max(self._seen_booking, booking_id)
            person = self.people.get(patient_id)
            if person is None:
                continue
            person.booking_id = booking_id
            rng = person.agent.rng
            if person.agent.kind == "elderly":
                if rng.random() > float(self.sc.knob("genuine", "accept_offer", 0.95)):
                    continue
                limit = 50 * 60 if str(channel).endswith("waitlist") else 200 * 60
                self.spawn(self.now_s + rng.uniform(600, limit),
                           self._desk_pay(person, booking_id))
                continue
            if person.category == SCALPER and not self.ring_sells:
                continue  # a hold the ring cannot sell: it does not pay, the hold lapses
            if person.patient_id in self._never_pay:
                continue  # a free re-holder pays nothing while it holds
            if person.category in (GENUINE, BUYER, CLIENT):
                if rng.random() > float(self.sc.knob("genuine", "accept_offer", 0.95)):
                    continue
                limit = 50 * 60 if str(channel).endswith("waitlist") else 200 * 60
                delay = rng.uniform(120, limit)
            else:
                delay = rng.uniform(30, 600)
            self.spawn(self.now_s + delay, self._pay(person, self._payer(person), 60.0))

    def scheduler(self, ticks: list[float]) -> Process:
        for at in ticks:
            yield max(0.0, at - self.now_s)
            run_due_jobs(self.platform)
            self._wake()
            if self.draw and not self.round_of:
                with self.platform.uow() as uow:
                    for sid in self.hot_sessions:
                        rid = uow.rounds.round_of_session(sid)
                        if rid is not None:
                            self.round_of[sid] = rid
            self._dispatch_offers()

    def sampler(self, times: list[float]) -> Process:
        for at in times:
            yield max(0.0, at - self.now_s)
            self.timeline.append((self.now_s / 3600, self._holders()))

    def check_ins(self, session_id: int) -> Process:
        """On the day: the patients who come are checked in at the desk."""
        with self.platform.uow() as uow:
            paid = uow.db.execute(
                sa.select(t.bookings.c.id, t.bookings.c.patient_id, t.bookings.c.account_id)
                .where(t.bookings.c.session_id == session_id,
                       t.bookings.c.status == "paid")).all()
        for booking_id, patient_id, account_id in paid:
            person = self.people.get(patient_id)
            if person is None or person.category == SCALPER or not person.attends \
                    or self.attackers.squatted(account_id):  # the victim knows nothing of it
                continue
            person.booking_id = booking_id
            try:
                self.platform.run(booking.check_in, self.staff, person.booking_id,
                                 person.identity.id_number, person.identity.name,
                                 RequestContext(ip="192.0.2.10", channel=Channel.WINDOW))
            except FairslotError:
                continue
        yield 0.0

    # -- reading the outcome -------------------------------------------------------------

    def _bookings(self) -> list[tuple[int, int, str]]:
        """(session, patient, status) of every active hot booking. A booking a squatter
        made under its victim's identity is the ring's, not the victim's: its patient is
        given as the negated id (``attackers.Attackers.squatted``)."""
        with self.platform.uow() as uow:
            rows = uow.db.execute(
                sa.select(t.bookings.c.session_id, t.bookings.c.patient_id,
                          t.bookings.c.status, t.bookings.c.account_id)
                .where(t.bookings.c.session_id.in_(self.hot_sessions),
                       t.bookings.c.status.in_(_ACTIVE))).all()
        return [(int(s), -int(p) if self.attackers.squatted(a) else int(p),
                 str(getattr(st, "value", st))) for s, p, st, a in rows]

    def _category(self, patient_id: int) -> str:
        person = self.people.get(patient_id)
        return person.category if person is not None else SCALPER

    def _holders(self) -> dict[str, int]:
        counts = {GENUINE: 0, CLIENT: 0, BUYER: 0, SCALPER: 0}
        for _, patient_id, _ in self._bookings():
            counts[self._category(patient_id)] += 1
        return counts

    def _outcome(self) -> Metrics:
        slots: list[SlotOutcome] = []
        filled = 0
        for _, patient_id, status in self._bookings():
            slots.append(SlotOutcome(self._category(patient_id), patient_id, status))
            filled += 1
        slots += [SlotOutcome(None)] * (self.sc.hot_slots + self.extra_slots - filled)
        holders = {p for _, p, _ in self._bookings()}
        genuine = [p for p in self.people.values() if p.category == GENUINE]
        efforts = [p.agent.effort_s for p in genuine if p.agent.kind == GENUINE]
        n_genuine = len(self.genuine) + len(self.elderly)
        served = sum(1 for p in genuine if p.patient_id in holders)
        clients = [p for p in self.people.values() if p.category == CLIENT]
        agents = {id(p.agent): p.agent for p in genuine if p.agent.kind == GENUINE}
        chances = None
        if self.draw and self.round_of:
            chance = self.draw_chances = self._draw_chances(_CHANCE_REPLICATES)
            wanting = [p.patient_id for p in genuine] + [None] * (n_genuine - len(genuine))
            chances = (
                statistics.fmean(chance.get(p.patient_id, 0.0) for p in clients)
                if clients else 0.0,
                statistics.fmean(chance.get(p, 0.0) if p is not None else 0.0
                                 for p in wanting) if wanting else 0.0,
            )
        return compute_metrics(
            slots, genuine_patients=n_genuine, genuine_served=served,
            clients=len(self.clients), clients_served=sum(
                1 for p in clients if p.patient_id in holders),
            genuine_requests=sum(a.requests for a in agents.values()),
            genuine_refused=sum(a.refused for a in agents.values()),
            genuine_efforts=efforts, attackers=dataclasses.replace(
                self.costs, identities_burned=self.costs.identities_burned + len(self.blocked)),
            draw_chances=chances)

    def _draw_chances(self, replicates: int) -> dict[int, float]:
        """Each entrant's chance of winning a hot slot in the draw: every round's frozen
        entry list drawn again by the real draw function with ``replicates`` fresh seeds
        (from the run's seed), and the share of draws the patient won in. This measures the
        chance itself rather than one draw's luck, which over a few dozen T9 clients swings
        the realized ratio between 0.4 and 2 (docs/simulation.md)."""
        with self.platform.uow() as uow:
            frozen = []
            for round_id in sorted(set(self.round_of.values())):
                rows, entries, capacities = release.frozen_entries(uow, round_id)
                frozen.append((entries, capacities, {e.ref: int(e.patient_id) for e in rows}))
        hot = {str(s) for s in self.hot_sessions}
        seeds = random.Random(self.rng.random())
        wins: collections.Counter[int] = collections.Counter()
        for _ in range(replicates):
            won: set[int] = set()
            for entries, capacities, patient_of in frozen:
                result = draw.run_draw(seeds.randbytes(draw.SEED_BYTES), entries, capacities)
                won.update(patient_of[a.ref] for a in result.awards if a.session in hot)
            wins.update(won)
        return {patient: n / replicates for patient, n in wins.items()}

    # -- the run -------------------------------------------------------------------------

    def _engine(self) -> sa.engine.Engine:
        """A private in-memory SQLite database on one connection: the run is single-threaded
        and throw-away, so nothing needs to reach a disk."""
        map_domain()
        engine = sa.create_engine("sqlite://", poolclass=StaticPool,
                                  connect_args={"check_same_thread": False})

        def pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        sa.event.listen(engine, "connect", pragmas)
        return engine

    def run(self) -> RunResult:
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            settings = self._settings("sqlite://")
            self.platform = bootstrap(settings, clock=self.clock, engine=self._engine(),
                                      random=SeededRandomness(self.rng.getrandbits(64)))
            stack.callback(self.platform.engine.dispose)
            self.platform.on_commit.extend(self.commit_hooks)
            upgrade(self.platform.engine)
            if not self.defences["realname"]:
                self.platform.verifier = PermissiveVerifier()
            self.runner = stack.enter_context(asyncio.Runner())
            # What a server's web layer logs (requests, guard decisions, booking screens),
            # written to the event log and the commit hooks as a server writes it.
            self.front_door = FrontDoor(self.platform, seed=self.seed)
            stack.callback(self.front_door.flush)
            self.guard: Guard | None = None
            if self.defences["guard"]:
                # The guard runs in the simulation's virtual time and seeded randomness,
                # injected like everything else; spent tokens are kept in memory.
                self.guard = Guard(settings, clock=self.clock,
                                   randomness=SeededRandomness(self.rng.getrandbits(64)),
                                   ledger=MemoryLedger(self.clock),
                                   sink=self.front_door.guard_events)
                for group, level in self.sc.section("guard").get("levels", {}).items():
                    self.runner.run(self.guard.set_level(group, level))
            self._play()
        return RunResult(self.policy, self._outcome_cache, self.timeline,
                         time.perf_counter() - started, dict(self.defences), self._gains_cache)

    def _play(self) -> None:
        self._catalog(self.platform)
        self._populate()
        self._history()
        self.attackers = attackers.Attackers(self)
        self.attackers.populate()
        sc, rng = self.sc, self.rng
        self.clock.set(self.release_at - dt.timedelta(days=2))
        window = self.platform.settings.draw_window_hours * 3600.0
        last_start = max(e for _, e in self.session_times.values())
        end_s = (last_start - self.release_at).total_seconds() + 3 * 3600
        first_start = min(s for s, _ in self.session_times.values())
        day_s = (first_start - self.release_at).total_seconds()
        # Scheduler ticks: dense around the release and the payment deadlines, hourly later.
        ticks = ([-window + 1.0, -3600.0] + [float(k) for k in range(0, 600, 30)]
                 + [600.0 * k for k in range(1, 48)]
                 + [28800.0 + 3600 * k for k in range(int((end_s - 28800) // 3600) + 1)])
        self.spawn(ticks[0], self.scheduler(sorted(set(ticks))))
        samples = sorted({-60.0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200,
                          4 * 3600, 8 * 3600, 86400, 3 * 86400, day_s - 13.5 * 3600,
                          day_s - 3600, end_s - 60})
        self.spawn(-3600.0, self.sampler(samples))
        arrive_mean = float(sc.knob("genuine", "arrival_mean_s", 300.0))
        t1_share = float(sc.knob("ring", "t1_share", 0.5))
        ring_split = int(len(self.ring) * t1_share)
        t1, t2 = self.ring[:ring_split] + self.farm, self.ring[ring_split:]
        if self.draw:
            for person in self.genuine:
                self.spawn(-window + 5.0 + rng.random() * (window - 3700.0),
                           self.genuine_draw(person))
            for group in (t1, t2, self.clients, self.crowd):
                if group:
                    self.spawn(-3000.0 + rng.random() * 600, self.bot_draw(group, 5e6))
            # The desk is open 08:00-17:00 on the window's first day; each elderly patient
            # comes once, at a random moment of it.
            share = float(sc.knob("genuine", "elderly_desk_entry", 1.0))
            comers = [e for e in self.elderly if rng.random() < share]
            comers.sort(key=lambda _: rng.random())
            if comers:
                self.spawn(-window + 120.0, self.desk_entries(comers))
        else:
            for person in self.genuine:
                self.spawn(rng.expovariate(1 / arrive_mean), self.genuine_fcfs(person))
            for group, skip, step in ((t1, True, 0.02), (t2, False, 0.3),
                                      (self.clients, False, 0.02)):
                for k in range(int(sc.knob("t1", "bots", 2))):
                    part = group[k::int(sc.knob("t1", "bots", 2))]
                    if part:
                        self.spawn(0.0, self.bot_fcfs(part, skip_screens=skip, step=step,
                                                      rate=5e6, multi=group is not self.clients))
            for person in self.crowd:  # T8: by hand, but at the exact release instant
                self.spawn(rng.uniform(0, 5), self.bot_fcfs([person], skip_screens=False,
                                                            step=15.0, rate=1e6))
        # Issue 18's speed agents: under a draw the early bots and re-holders enter the
        # window like the ring's other bots, and try their trick at the release anyway.
        if self.draw:
            for group in (self.early, self.reholders):
                if group:
                    self.spawn(-3000.0 + rng.random() * 600, self.bot_draw(group, 5e6))
        else:
            for person in self.reholders:
                self.spawn(0.0, self.reholder_start(person))
        if self.early:
            self.spawn(-12.0, self.early_tokens(self.early))
        if self.reholders:
            self.spawn(day_s - 14 * 3600, self.reholders_sell())
        if int(sc.knob("late", "capacity", 0)) > 0:
            self.spawn(float(sc.knob("late", "added_after_s", 3600.0)), self.late_clinic())
        self.attackers.start(window)
        self.spawn(0.0, self.launderer())
        self.spawn(day_s - 13.5 * 3600, self.unsold())
        self.spawn(day_s - 3 * 3600, self.desk())
        for sid, (starts, _) in self.session_times.items():
            self.spawn((starts - self.release_at).total_seconds() - 1800, self.check_ins(sid))
        self._loop(end_s)
        # A poller asks once every poll_s from the release to the visit: the looks the run
        # played only when something changed are its cost in requests all the same.
        self.costs.requests += len(self.pollers) * int(
            end_s / float(sc.knob("poller", "poll_s", 1.0)))
        self.clock.set(self.release_at + dt.timedelta(seconds=end_s + 86400))
        self.platform.run_job(booking.record_no_shows)
        self._outcome_cache = self._outcome()
        self._gains_cache = self._gains(self.clock.now())
