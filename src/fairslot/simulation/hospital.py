"""The hospital's side of a run: scheduler ticks, offers, the desk and check-ins."""

from __future__ import annotations

import contextlib
import datetime as dt
import random

import sqlalchemy as sa

from fairslot.domain.booking import Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.domain.rounds import RoundKind
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.scheduler import run_due_jobs
from fairslot.services import booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.simulation.actions import Actions
from fairslot.simulation.metrics import (
    BUYER,
    CLIENT,
    GENUINE,
    SCALPER,
)
from fairslot.simulation.world import Agent, Person, Process
from fairslot.storage import tables as t

__all__ = ["Hospital"]


class Hospital(Actions):
    """What happens on the hospital's side over a run: the scheduler's ticks (holds that
    lapse, draws, short windows), the in-app inbox of offers, waking those who look for
    freed slots, the late clinic, the registration desk and the check-ins."""

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
