"""The simulated world: the people in it (``Agent``, ``Person``), the simulation's state
and virtual time, and how the world is set up before a run (``World``): the hospital with
its departments, doctors and sessions, the residents, and the accounts and patients of
genuine patients, the ring, its clients, crowds and farms, all made through the real
services on a throw-away database (accounts inserted directly with one precomputed hash)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import heapq
import pathlib
import random
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from fairslot.bootstrap import Platform
from fairslot.clock import UTC, FixedClock
from fairslot.config import Settings
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_id_number, make_name, make_phone, make_residents
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.guard import Guard, RouteGroup
from fairslot.services import accounts, booking, catalog
from fairslot.services.context import RequestContext
from fairslot.simulation import attackers
from fairslot.simulation.front_door import FrontDoor
from fairslot.simulation.metrics import (
    CLIENT,
    GENUINE,
    SCALPER,
    Costs,
)
from fairslot.simulation.scenario import Scenario
from fairslot.storage.orm import map_domain
from fairslot.storage.uow import CommitHook, UnitOfWork

__all__ = ["ACTIVE", "BOOK", "KIOSK_NETWORK", "PAY", "Agent", "PermissiveVerifier", "Person",
           "Process", "World"]

T = TypeVar("T")
Process = Generator[float, None, None]

# Simulated accounts never log in with a password; they all share one placeholder.
_PASSWORD_HASH = "$argon2id$v=19$m=8,t=1,p=1$c2ltdWxhdGVk$c2ltdWxhdGVkIGFjY291bnQ"  # noqa: S105
BOOK, PAY = "book", "pay"
KIOSK_NETWORK = "198.51.100.0/24"
"""The network of the hospital's lobby kiosks (198.51.100.40, .41). A monitor replaying the
simulator's traffic declares it as the hospital's own (``FAIRSLOT_MONITOR_PLATFORM_NETWORKS``),
as a hospital declares its kiosks'. (The desk's requests carry the window's channel.)"""
KIOSKS = 2
ACTIVE = ("held", "paid", "checked_in", "no_show")


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




class World:
    """The simulation's state and virtual time, and the building of its world: the
    hospital's catalogue, the residents, the accounts and patients of every kind of agent,
    the ring's past no-shows, the settings and the throw-away database."""

    platform: Platform
    runner: asyncio.Runner
    front_door: FrontDoor
    guard: Guard | None
    attackers: attackers.Attackers

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


    def context(self, agent: Agent) -> RequestContext:
        """The request context the server would hand the services for the agent's
        request: the address and device the guard saw, its holds, its screen's age."""
        return self.front_door.context(agent)

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
                  phones: Callable[[int], str],
                  created: Sequence[dt.datetime] | None = None) -> list[Account]:
        """``count`` accounts, made now or, with ``created``, each at its own moment."""
        now = platform.clock.now()
        made = [Account(username=f"{prefix}{i:05d}", role=Role.PATIENT,
                        password_hash=_PASSWORD_HASH, phone=phones(i),
                        created_at=created[i] if created else now,
                        # the simulated SIM cards receive their codes
                        phone_verified_at=created[i] if created else now)
                for i in range(count)]
        with platform.uow() as uow:
            for account in made:
                uow.accounts.add(account)
            uow.commit()
        return made

    def registration_times(self, count: int, stream: str) -> list[dt.datetime] | None:
        """When each of ``count`` genuine accounts registered and linked its patients, in
        order: spread at random over the ``genuine.registered_days`` days that end 30 days
        before the run's release (before anything ``[history]`` plays, at most 17 days
        before it), as the patients of a platform in service joined it over weeks. ``None``
        when the knob is 0: every account is made the moment the world is built, so its
        links all land in one instant, which no platform in service sees and which the
        monitor's link surge reads as a farm. The moments come from a generator of their
        own (``stream``), so the run's other draws do not shift."""
        days = float(self.sc.knob("genuine", "registered_days", 0))
        if days <= 0 or count <= 0:
            return None
        rng = random.Random(f"{self.seed}:{self.sc.name}:registration:{stream}")
        end = self.release_at - dt.timedelta(days=30)
        return sorted(end - dt.timedelta(seconds=rng.uniform(0.0, days * 86_400.0))
                      for _ in range(count))

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
        joined = self.registration_times(n_gen, "pt")
        gen_accounts = self._accounts(platform, "pt", n_gen, lambda i: make_phone(rng),
                                      created=joined)
        self.genuine: list[Person] = []
        self.elderly: list[tuple[Identity, list[int]]] = []
        building = self.clock.now()
        # ``genuine.kiosk_share`` of them book at the self-service kiosks in the hospital's
        # lobby instead (with their own accounts, on the kiosks' devices and the hospital's
        # network; chosen by a generator of their own, so the run's other draws do not shift).
        kiosk_share = float(sc.knob("genuine", "kiosk_share", 0.0))
        kiosk_rng = random.Random(f"{self.seed}:{sc.name}:kiosk")
        self.kiosk_users: set[int] = set()
        for i, account in enumerate(gen_accounts):
            identity = next(it)
            wants = self._wants(rng)
            if rng.random() < elderly_share:
                self.elderly.append((identity, wants))
                continue
            if joined:
                self.clock.set(joined[i])
            agent = Agent(GENUINE, account, [f"10.{i // 65536 % 256}.{i // 256 % 256}."
                                             f"{i % 256}"], f"dev-pt-{i}", random.Random(
                                                 rng.random()))
            if kiosk_share and kiosk_rng.random() < kiosk_share:
                kiosk = kiosk_rng.randrange(KIOSKS)
                agent.ips, agent.device = [f"198.51.100.{40 + kiosk}"], f"kiosk-{kiosk}"
            person = self._add(agent, identity, GENUINE, wants,
                               attends=rng.random() >= no_show)
            if person is not None:
                self.genuine.append(person)
                if agent.device and agent.device.startswith("kiosk-"):
                    self.kiosk_users.add(person.patient_id)
        self.clock.set(building)
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


    # -- the database -------------------------------------------------------------------

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
