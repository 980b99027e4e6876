"""The days before the release: the same hospital released the same hot doctors every
morning, and the rings, the family crowd and returning patients came to each release.

A run plays one release (``engine``); a ring works over weeks, and what a monitor learns
from is the weeks: an identity held in one department one day and another the next (T5), a
crowd that is there together release after release (T8), hubs that keep paying (T6),
clickers that refresh at their 0.3 s cadence before every release (T2). ``[history]
releases = N`` plays the N days before the run's release, on sessions of their own (not
the run's hot sessions, so the run's outcome metrics count only its own release):

- the ring's identities (``history.ring_share`` of them each day) are booked by its bots in
  a department picked at random, the API bots within a second of the release, the
  auto-clickers within two, and paid through the hub payers; the clickers' accounts
  refresh the booking screen every ``history.click_s`` from ``history.click_before_s``
  before the release;
- the family crowd (T8) picks one of the doctor's sessions each day and its members book it
  by hand in the first five seconds, as many as there are slots;
- returning genuine patients (``history.returning`` of them each day) book their own
  doctor at a person's pace and pay with their own payment account;
- families (``history.families`` accounts of 2-5 patients: a parent booking for children
  and grandparents) book for one of their members now and then, paying with the family's
  one payment account.

Requests are logged by the simulation's front door as a server logs them (an ``access``
event each, from the agent's address: a rotating pool's agent from any of the pool's) and
the bookings and payments go through the real services; the guard is not played (the
history is played for ``fcfs`` runs only: under the draw a release is a window of entries
and a draw, which the run's own release plays)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from fairslot.domain.booking import Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.residents import make_phone, make_residents
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.guard import RouteGroup
from fairslot.services import booking, catalog
from fairslot.services.context import RequestContext
from fairslot.simulation.metrics import GENUINE

if TYPE_CHECKING:
    from fairslot.simulation.engine import Agent, Person, Simulation

__all__ = ["History"]

_Action = tuple[float, int, Callable[[], None]]


@dataclasses.dataclass
class _Family:
    agent: Agent
    people: list[Person]
    payer: str


class History:
    """The days before a run's release, played in ``play`` while the world is built."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.seed}:{sim.sc.name}:history")
        self.families: list[_Family] = []
        self.releases = int(sim.sc.knob("history", "releases", 0))
        self.played = 0
        self.bookings = 0

    def _knob(self, key: str, default: float) -> float:
        return float(self.sim.sc.knob("history", key, default))

    # -- the families ---------------------------------------------------------------------

    def _make_families(self) -> None:
        from fairslot.simulation.engine import Agent

        sim, rng = self.sim, self.rng
        count = int(sim.sc.knob("history", "families", 0))
        if count <= 0:
            return
        sizes = [rng.randint(2, 5) for _ in range(count)]
        residents = make_residents(rng, sum(sizes))
        with sim.platform.uow() as uow:
            for identity in residents:
                sim.platform.verifier.register(uow, identity)
            uow.commit()
        joined = sim.registration_times(count, "fam")
        made = sim._accounts(sim.platform, "fam", count, lambda i: make_phone(rng),
                             created=joined)
        it = iter(residents)
        building = sim.clock.now()
        for i, (account, size) in enumerate(zip(made, sizes, strict=True)):
            if joined:
                sim.clock.set(joined[i])
            agent = Agent(GENUINE, account, [f"10.200.{i // 256 % 256}.{i % 256}"],
                          f"dev-fam-{i}", random.Random(rng.random()))
            wants = sim._wants(rng)
            people = [p for _ in range(size)
                      if (p := sim._add(agent, next(it), GENUINE, wants)) is not None]
            # Family members are not the run's patients: the run's release is for its own
            # genuine population, so they leave ``sim.people`` (outcome metrics).
            for person in people:
                sim.people.pop(person.patient_id, None)
            if people:
                self.families.append(_Family(agent, people, f"wechat:family{i}"))
        sim.clock.set(building)

    # -- one past release -----------------------------------------------------------------

    def play(self) -> None:
        sim = self.sim
        self._make_families()
        if self.releases <= 0 or sim.draw:
            return
        before = sim.clock.now()
        for days in range(self.releases, 0, -1):
            self._release(sim.release_at - dt.timedelta(days=days))
        sim.front_door.flush()
        sim.clock.set(before)

    def _sessions(self, release_at: dt.datetime) -> list[list[int]]:
        """Each doctor's sessions released at ``release_at`` (its visit day's, as many as
        the run's own)."""
        sim = self.sim
        platform = sim.platform
        sim.clock.set(release_at - dt.timedelta(days=1))
        visit_days = int(sim.sc.knob("hospital", "visit_days_after_release", 7))
        local = release_at.astimezone(platform.settings.zone)
        visit = local.date() + dt.timedelta(days=visit_days)
        out = []
        for doc, doctor_id in zip(sim.sc.doctors, sim.doctor_ids, strict=True):
            made = platform.run(
                catalog.schedule_sessions, doctor_id, [visit],
                [Period.MORNING, Period.AFTERNOON][:max(1, min(2, doc.sessions))],
                doc.capacity, doc.fee_cents, release_days_before=visit_days,
                release_time=local.time().replace(tzinfo=None),
                release_policy=ReleasePolicy.FCFS)
            out.append([s.id or 0 for s in made])
        return out

    def _release(self, release_at: dt.datetime) -> None:
        sim, rng = self.sim, self.rng
        sessions = self._sessions(release_at)
        actions: list[_Action] = []
        seq = 0

        def at(offset: float, action: Callable[[], None]) -> None:
            nonlocal seq
            seq += 1
            actions.append((offset, seq, action))

        doctor_of = {sid: k for k, own in enumerate(sim.doctor_sessions) for sid in own}
        split = int(len(sim.ring) * float(sim.sc.knob("ring", "t1_share", 0.5)))
        share = self._knob("ring_share", 0.4)
        departments: dict[str, list[int]] = {}
        for k, doc in enumerate(sim.sc.doctors):
            departments.setdefault(doc.department, []).append(k)
        # The ring: each identity it holds today goes where a slot sells, any department.
        for n, person in enumerate(sim.ring):
            if rng.random() >= share:
                continue
            doctor = rng.choice(departments[rng.choice(sorted(departments))])
            when = rng.uniform(0.03, 0.8) if n < split else rng.uniform(0.4, 1.8)
            at(when, self._booker(person, sessions[doctor], pay=rng.choice(sim.hubs),
                                  pay_after=rng.uniform(5.0, 60.0)))
        # The clickers' accounts refresh the screen at their cadence before the release.
        click_s = self._knob("click_s", 0.3)
        start = -self._knob("click_before_s", 45.0)
        for agent in {id(p.agent): p.agent for p in sim.ring[split:]}.values():
            t = start + rng.uniform(0.0, click_s)
            while t < 0.0:
                at(t, self._refresh(agent))
                t += click_s * rng.uniform(0.85, 1.15)
        # The crowd: one session, everybody by hand in the first seconds.
        if sim.crowd:
            target = rng.choice([s for own in sessions for s in own])
            for person in sim.crowd:
                at(rng.uniform(0.5, 5.0), self._booker(
                    person, [target], pay=rng.choice(sim.hubs),
                    pay_after=rng.uniform(30.0, 300.0)))
        # Returning patients and families, at a person's pace.
        arrive = float(sim.sc.knob("genuine", "arrival_mean_s", 300.0))
        back = self._knob("returning", 0.05)
        for person in sim.genuine:
            if rng.random() >= back:
                continue
            own = sessions[doctor_of.get(person.wants[0], 0)]
            at(20.0 + rng.expovariate(1 / arrive) + rng.uniform(8, 25), self._booker(
                person, own, pay=f"wechat:wx{person.patient_id}",
                pay_after=rng.uniform(40.0, 120.0)))
        family_share = self._knob("family_share", 0.1)
        for family in self.families:
            if rng.random() >= family_share:
                continue
            person = rng.choice(family.people)
            own = sessions[doctor_of.get(person.wants[0], 0)]
            at(20.0 + rng.expovariate(1 / arrive) + rng.uniform(8, 25), self._booker(
                person, own, pay=family.payer, pay_after=rng.uniform(40.0, 120.0)))
        actions.sort(key=lambda a: (a[0], a[1]))
        self._run(release_at, actions)
        self.played += 1

    def _run(self, release_at: dt.datetime, actions: list[_Action]) -> None:
        """Play the actions in time order; a payment scheduled by a booking is played at
        its own time among the rest."""
        import heapq

        heap = list(actions)
        heapq.heapify(heap)
        self._later: list[_Action] = []
        while heap:
            offset, _, action = heapq.heappop(heap)
            self.sim.clock.set(release_at + dt.timedelta(seconds=offset))
            self._now = offset
            action()
            for item in self._later:
                heapq.heappush(heap, item)
            self._later = []

    # -- what the agents do ---------------------------------------------------------------

    def _address(self, agent: Agent) -> str:
        return self.rng.choice(agent.ips) if agent.rotate and len(agent.ips) > 1 \
            else agent.ips[0]

    def _context(self, agent: Agent, ip: str) -> RequestContext:
        return RequestContext(ip=ip, device_id=agent.device, channel=Channel.WEB)

    def _refresh(self, agent: Agent) -> Callable[[], None]:
        def refresh() -> None:
            self.sim.front_door.access(agent, self._address(agent), RouteGroup.BROWSING, 200)
        return refresh

    def _booker(self, person: Person, sessions: list[int], *, pay: str,
                pay_after: float) -> Callable[[], None]:
        """Book the first of ``sessions`` with a free slot (a refused attempt is logged
        with its status, as a server logs it), then pay ``pay_after`` seconds later."""
        def book() -> None:
            sim = self.sim
            agent = person.agent
            for sid in sessions:
                ip = self._address(agent)
                try:
                    view = sim.platform.run(booking.book, agent.account, person.patient_id,
                                            sid, self._context(agent, ip))
                except FairslotError as exc:
                    sim.front_door.access(agent, ip, RouteGroup.BOOKING, exc.status)
                    continue
                sim.front_door.access(agent, ip, RouteGroup.BOOKING, 200)
                self.bookings += 1
                booking_id = view.booking.id or 0
                self._later.append((self._now + pay_after, -booking_id,
                                    self._payment(person, booking_id, pay)))
                return
        return book

    def _payment(self, person: Person, booking_id: int, payer: str) -> Callable[[], None]:
        def pay() -> None:
            sim = self.sim
            agent = person.agent
            ip = self._address(agent)
            try:
                sim.platform.run(booking.pay, agent.account, booking_id, payer,
                                 self._context(agent, ip))
            except FairslotError as exc:
                sim.front_door.access(agent, ip, RouteGroup.PAYMENT, exc.status)
                return
            sim.front_door.access(agent, ip, RouteGroup.PAYMENT, 200)
        return pay
