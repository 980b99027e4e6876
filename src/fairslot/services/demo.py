"""The demo hospital: 8 departments, 30 doctors (some hot), a month of sessions around today,
known residents, patient accounts with families, staff of every role, and a fortnight of
history (bookings, payments, cancellations, check-ins, no-shows) made through the real
services on a moving clock. Seeding twice changes nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from fairslot.clock import FixedClock
from fairslot.domain.accounts import Account, Role
from fairslot.domain.errors import FairslotError
from fairslot.domain.residents import make_name, make_phone, make_residents
from fairslot.domain.rounds import EntryOutcome
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps, Units
from fairslot.services.jobs import JOBS
from fairslot.storage.uow import UnitOfWork

__all__ = ["DEMO_HOSPITAL", "DEMO_USERS", "SeedReport", "seed_demo"]

P = ParamSpec("P")
T = TypeVar("T")

DEMO_HOSPITAL = "DEMO"
DEMO_USERS = {
    "demo-patient": Role.PATIENT,
    "demo-desk": Role.REGISTRATION,
    "demo-operator": Role.OPERATOR,
    "demo-investigator": Role.INVESTIGATOR,
    "demo-admin": Role.ADMIN,
}
DEPARTMENTS = [
    ("CARD", "心血管内科 Cardiology"), ("ONC", "肿瘤科 Oncology"),
    ("NEUR", "神经内科 Neurology"), ("PED", "儿科 Paediatrics"),
    ("ORTH", "骨科 Orthopaedics"), ("DERM", "皮肤科 Dermatology"),
    ("OPH", "眼科 Ophthalmology"), ("ENDO", "内分泌科 Endocrinology"),
]
TITLES = ["主任医师 Chief physician", "副主任医师 Associate chief physician",
          "主治医师 Attending physician"]


@dataclasses.dataclass
class SeedReport:
    created: bool
    hospital_id: int
    sessions: int = 0
    bookings: int = 0


@dataclasses.dataclass(frozen=True)
class _Runner:
    """Runs each use case of the seed in a unit of work of its own, on the seed's clock."""

    units: Units
    deps: Deps

    def __call__(self, use_case: Callable[Concatenate[UnitOfWork, Deps, P], T],
                 *args: P.args, **kwargs: P.kwargs) -> T:
        with self.units() as uow:
            return use_case(uow, self.deps, *args, **kwargs)


def seed_demo(units: Units, deps: Deps, passwords: dict[str, str], *,
              seed: int = 2026, families: int = 60) -> SeedReport:
    with units() as uow:
        existing = uow.schedule.hospital_by_code(DEMO_HOSPITAL)
    if existing is not None:
        return SeedReport(created=False, hospital_id=existing.id or 0)
    rng = random.Random(seed)
    now = deps.clock.now()
    today = now.astimezone(deps.settings.zone).date()
    start = today - dt.timedelta(days=14)
    # History is made on a clock that starts a fortnight and a half back and moves forward.
    clock = FixedClock(dt.datetime.combine(start - dt.timedelta(days=15), dt.time(7, 0),
                                           deps.settings.zone))
    past = _Runner(units, dataclasses.replace(deps, clock=clock))

    hospital = past(catalog.create_hospital, DEMO_HOSPITAL, "示范医院 fairslot Demo Hospital")
    report = SeedReport(created=True, hospital_id=hospital.id or 0)
    doctors = []
    for code, name in DEPARTMENTS:
        department = past(catalog.create_department, hospital.id or 0, code, name)
        for i in range(4 if code in ("CARD", "ONC", "NEUR", "PED", "ORTH", "DERM") else 3):
            hot = i == 0
            doctor = past(
                catalog.create_doctor, department.id or 0, make_name(rng), TITLES[min(i, 2)],
                "{}门诊 {} clinic".format(*name.split(" ", 1)), hot=hot,
                # Hot doctors release by draw; the rest first come first served.
                release_policy=ReleasePolicy.DRAW if hot else ReleasePolicy.FCFS)
            doctors.append(doctor)
    # A fortnight back and a fortnight and a day ahead: tomorrow's release always exists,
    # so a draw round is taking entries whenever the demo runs.
    dates = [start + dt.timedelta(days=d) for d in range(30)]
    for doctor in doctors:
        capacity = 3 if doctor.hot else rng.choice((15, 20, 25, 30))
        fee = 10000 if doctor.title.startswith("主任") else rng.choice((2500, 5000))
        report.sessions += len(past(
            catalog.schedule_sessions, doctor.id or 0, dates,
            [Period.MORNING, Period.AFTERNOON], capacity, fee))

    residents = make_residents(rng, 4 * families)
    with units() as uow:
        for identity in residents:
            deps.verifier.register(uow, identity)
        uow.commit()

    staff: dict[str, Account] = {}
    for username, role in DEMO_USERS.items():
        staff[username] = past(accounts.create_user, username, passwords[username], role,
                               make_phone(rng), phone_verified=True)
    households: list[tuple[Account, list[int]]] = []
    demo_patient = staff["demo-patient"]
    people = iter(residents)
    # The other demo families share demo-patient's password, hashed once.
    shared_hash = deps.hasher.hash(passwords["demo-patient"])
    for n in range(families):
        account = demo_patient if n == 0 else past(
            accounts.create_user, f"patient{n:03d}", passwords["demo-patient"],
            Role.PATIENT, make_phone(rng), password_hash=shared_hash, phone_verified=True)
        members = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            identity = next(people)
            patient = past(accounts.add_patient, account, identity.id_number, identity.name,
                           make_phone(rng), RequestContext(ip=_ip(rng)))
            members.append(patient.id or 0)
        households.append((account, members))

    # demo-patient (the first family) starts with no history, so whoever tries the demo
    # with it is under every quota and in good standing.
    report.bookings = _history(past, clock, households[1:], staff["demo-desk"], rng, start,
                               now)
    _shared_list(_Runner(units, deps), deps, staff["demo-investigator"], households[-1])
    return report


def _shared_list(run: _Runner, deps: Deps, officer: Account,
                 family: tuple[Account, list[int]]) -> None:
    """Something for the blacklist officer's page (/consortium): this hospital's own key
    and an epoch key of its own (a demo has no partner hospitals), three entries published
    by demo-investigator through the officer's services (one withdrawn), a request of the
    last demo family held by one of them, and an appeal as a partner hospital would forward
    it, left for the officer to decide."""
    from fairslot.consortium.model import EntryKind, RingRole, SubjectType
    from fairslot.consortium.pseudonyms import EpochKey
    from fairslot.consortium.service import Consortium
    from fairslot.consortium.store import Appeal
    from fairslot.services import shared_list

    c = deps.shared_list
    if not isinstance(c, Consortium) or c.member_code() is not None:
        return
    c.create_key("demo", "fairslot Demo Hospital", actor="demo")
    c.store.add_epoch(EpochKey.new(1), deps.clock.now(), "demo")
    c.refresh()
    account, patients = family
    held = run(shared_list.publish, officer, kind=EntryKind.RING_MEMBER,
               role=RingRole.HELD_IDENTITY, severity=3, days=365, patient_id=patients[0],
               source="demo case 2026-07: one payer behind 23 bookings for 9 identities")
    run(shared_list.publish, officer, kind=EntryKind.RING_MEMBER, role=RingRole.PAYMENT_HUB,
        severity=3, days=365, identifiers=[(SubjectType.DEVICE, "demo-device-7f3a")],
        source="demo case 2026-07: the device that paid for the ring")
    [gone] = run(shared_list.publish, officer, kind=EntryKind.NO_SHOW_SUSPENSION, role=None,
                 severity=2, days=90, identifiers=[(SubjectType.DEVICE, "demo-device-0c91")],
                 source="demo: three missed visits in March")
    run(shared_list.withdraw, officer, gone.entry_no, "demo: the visits were rescheduled")
    with run.units() as uow:
        person = uow.patients.get(patients[0])
    with contextlib.suppress(FairslotError):  # held for review: the desk sees it too
        run(shared_list.consult, shared_list.Point.BOOKING,
            identity=person.id_number if person else None, patient_id=patients[0],
            account_id=account.id)
    now = deps.clock.now()
    c.store.add_appeal(Appeal(
        "00000000-0000-4000-8000-00000000d3e0", "in", "demo-partner", "demo", held[0].entry_no,
        held[0].pseudonym, "这不是我：我的身份证一月份丢失，已报警。Not me: my ID card was lost "
        "in January and I reported it to the police.", None, "received", now, now, None,
        None, None), now, "member:demo-partner")


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((36, 58, 106, 113, 180, 223))}.{rng.randint(0, 255)}." \
           f"{rng.randint(0, 255)}.{rng.randint(1, 254)}"


@dataclasses.dataclass
class _Time:
    """The history's moving clock. Moving it on runs the scheduler's jobs at every round's
    close and beacon on the way, as the running server would have (a round frozen after its
    beacon is out would not verify), and never past the present."""

    run: _Runner
    clock: FixedClock
    present: dt.datetime

    def until(self, when: dt.datetime, *, jobs: bool = True) -> None:
        when = min(when, self.present)
        chain = self.run.deps.beacons.chain
        delay = self.run.deps.settings.draw_beacon_delay_seconds
        while True:
            now = self.clock.now()
            with self.run.units() as uow:
                pending = uow.rounds.open_rounds(when)
            stops = [r.closes_at for r in pending] + [
                dt.datetime.fromtimestamp(chain.round_time(chain.first_round_at_or_after(
                    int(r.closes_at.timestamp()) + delay)), dt.UTC) for r in pending]
            stops = [s for s in stops if now < s <= when]
            if not stops:
                break
            self.clock.set(min(stops))
            self._jobs()
        if when > self.clock.now():
            self.clock.set(when)
            if jobs:
                self._jobs()

    def advance(self, seconds: int) -> None:
        """A few seconds of a person's time: the jobs run only if a round closes or is
        drawn meanwhile."""
        self.until(self.clock.now() + dt.timedelta(seconds=seconds), jobs=False)

    def _jobs(self) -> None:
        for _name, job in JOBS:
            job(self.run.units, self.run.deps)


@dataclasses.dataclass
class _People:
    """What the history knows of its patients: their doctor (the first they saw: people
    keep their clinic), the date of their next visit (nobody books a second visit before
    the first), and the families that once let a hold lapse (people learn)."""

    families: list[tuple[Account, list[int]]]
    clinic: dict[int, int | None] = dataclasses.field(default_factory=dict)
    next_visit: dict[int, dt.date] = dataclasses.field(default_factory=dict)
    lapsed: set[int | None] = dataclasses.field(default_factory=set)

    def free(self, members: list[int], day: dt.date) -> list[int]:
        return [m for m in members if self.next_visit.get(m, dt.date.min) < day]


Visit = tuple[int, dt.datetime, str, str]  # booking, session start, ID number, name


def _history(run: _Runner, clock: FixedClock, families: list[tuple[Account, list[int]]],
             desk: Account, rng: random.Random, start: dt.date, real_now: dt.datetime) -> int:
    """A day at a time up to now: patients enter the morning's draws, and book sessions
    released that morning (where a session's free slots are in a short request window,
    they enter that round instead); most pay, some cancel; on the session's day most check
    in at the desk and the rest become no-shows. Each patient sees one doctor (their
    clinic) and books again only after the visit, as people do; a demo where everybody
    books a random department every few days would look like identities booked across
    departments to hold slots."""
    zone = run.deps.settings.zone
    today = real_now.astimezone(zone).date()
    time = _Time(run, clock, real_now)
    people = _People(families)
    made = 0
    booked: list[Visit] = []
    day = start - dt.timedelta(days=14)
    while day <= today:
        if dt.datetime.combine(day, dt.time(8, 5), zone) > real_now:
            break  # history stops at the present; the running scheduler takes over
        won, _entered = _draw_day(run, time, people, rng, day)
        booked += won
        made += len(won)
        time.until(dt.datetime.combine(day, dt.time(8, 5), zone))
        visits, asked = _book_day(run, time, people, rng, day)
        booked += visits
        made += len(visits)
        if asked:
            # The short rounds entered this morning close and are drawn; winners pay.
            with run.units() as uow:
                closes = max(r.closes_at for r in uow.rounds.by_ids(sorted(asked)).values())
            time.until(closes + dt.timedelta(minutes=2))
            won = _pay_wins(run, time, people, rng, asked)
            booked += won
            made += len(won)
        # The day's sessions: patients arrive at the desk a little before their session.
        arriving = sorted((e for e in booked if e[1].astimezone(zone).date() == day),
                          key=lambda e: e[1])
        booked = [e for e in booked if e[1].astimezone(zone).date() != day]
        for booking_id, starts_at, id_number, name in arriving:
            time.until(max(clock.now(), starts_at - dt.timedelta(minutes=20)), jobs=False)
            if rng.random() < 0.85 and day < today:
                with contextlib.suppress(FairslotError):
                    run(booking.check_in, desk, booking_id, id_number, name,
                        RequestContext(ip="10.0.0.10"))
        time.until(dt.datetime.combine(day, dt.time(23, 0), zone))
        day += dt.timedelta(days=1)
    return made


def _book_day(run: _Runner, time: _Time, people: _People, rng: random.Random,
              day: dt.date) -> tuple[list[Visit], set[int]]:
    """At 08:05 families book a member's visit among the sessions released that morning,
    with the member's doctor. Where the session's free slots wait in a short round,
    booking answers ``request_window`` with the round, and the family enters it."""
    clock = time.clock
    with run.units() as uow:
        released = uow.schedule.released_between(clock.now() - dt.timedelta(hours=1),
                                                 clock.now())
        doctor_of = {i: s.doctor_id for i, s in uow.schedule.sessions_by_id(released).items()}
    visits: list[Visit] = []
    asked: set[int] = set()
    for account, members in people.families:
        free = people.free(members, day)
        if not released or not free or rng.random() < 0.55:
            continue
        patient_id = rng.choice(free)
        options = [i for i in released if doctor_of.get(i) == people.clinic.get(patient_id)] \
            if patient_id in people.clinic else released
        if not options:
            continue
        session_id = rng.choice(options)
        people.clinic.setdefault(patient_id, doctor_of.get(session_id))
        ctx = RequestContext(ip=_ip(rng), device_id=f"dev-{account.id}")
        try:
            view = run(booking.book, account, patient_id, session_id, ctx)
        except FairslotError as exc:
            round_id = exc.extra.get("round")
            if exc.code == "request_window" and isinstance(round_id, int):
                with contextlib.suppress(FairslotError):
                    run(release.enter, account, round_id, patient_id, [session_id], ctx)
                    asked.add(round_id)
            continue
        time.advance(rng.randint(5, 60))
        roll = rng.random()
        if roll < 0.08 and account.id not in people.lapsed:
            # Left unpaid: it expires at the deadline. Once per family: a lapsed hold
            # counts against the account's credit, and people learn.
            people.lapsed.add(account.id)
            continue
        run(booking.pay, account, view.booking.id or 0, _payer(rng, account.id), ctx)
        if roll < 0.16:
            run(booking.cancel, account, view.booking.id or 0, ctx)
            continue
        people.next_visit[patient_id] = view.session.starts_at.astimezone(
            run.deps.settings.zone).date()
        visits.append((view.booking.id or 0, view.session.starts_at, view.patient.id_number,
                       view.patient.name))
    return visits, asked


def _payer(rng: random.Random, account_id: int | None) -> str:
    return rng.choice(("alipay:", "wechat:")) + f"u{account_id or 0:04d}"


def _draw_day(run: _Runner, time: _Time, people: _People, rng: random.Random,
              day: dt.date) -> tuple[list[Visit], int]:
    """Before 08:00 families enter the open rounds for one member with no visit ahead,
    with sessions of that member's doctor; at 08:00 the lists are frozen, when the beacon
    is out the rounds are drawn, and most winners pay. Returns the paid wins and the
    number of entries made."""
    zone = run.deps.settings.zone
    clock = time.clock
    time.until(dt.datetime.combine(day, dt.time(7, 0), zone))
    with run.units() as uow:
        open_rounds = [(r.id, uow.rounds.sessions(r.id)) for r in uow.rounds.open_rounds(
            clock.now()) if r.closes_at > clock.now()]
        doctor_of = {i: s.doctor_id for i, s in uow.schedule.sessions_by_id(
            [i for _, sessions in open_rounds for i in sessions]).items()}
    entered: set[int] = set()
    made = 0
    for round_id, sessions in open_rounds:
        for account, members in people.families:
            free = people.free(members, day)
            if not free or rng.random() < 0.6:
                continue
            member = rng.choice(free)
            if member not in people.clinic:
                people.clinic[member] = doctor_of.get(rng.choice(sessions))
            mine = [i for i in sessions if doctor_of.get(i) == people.clinic[member]]
            if not mine:
                continue
            choices = rng.sample(mine, k=min(len(mine), rng.choice((1, 2, 3))))
            with contextlib.suppress(FairslotError):
                run(release.enter, account, round_id, member, choices,
                    RequestContext(ip=_ip(rng), device_id=f"dev-{account.id}"))
                entered.add(round_id)
                made += 1
            time.advance(rng.randint(5, 90))
    # 08:00 the lists are frozen; when the beacon is out the rounds are drawn.
    time.until(dt.datetime.combine(day, dt.time(8, 2), zone))
    return _pay_wins(run, time, people, rng, entered), made


def _pay_wins(run: _Runner, time: _Time, people: _People, rng: random.Random,
              rounds: set[int]) -> list[Visit]:
    """The winners of the given rounds (drawn by now) pay, one after another; once per
    family a win is left unpaid and lapses."""
    by_id = {account.id: account for account, _ in people.families}
    with run.units() as uow:
        won = [e for rid in sorted(rounds) for e in uow.rounds.all_entries(rid)
               if e.outcome is EntryOutcome.WON and e.booking_id is not None]
    paid: list[Visit] = []
    for entry in won:
        if rng.random() < 0.15 and entry.account_id not in people.lapsed:
            people.lapsed.add(entry.account_id)  # a win left unpaid, once per family
            continue
        time.advance(rng.randint(5, 40))
        try:
            view = run(booking.pay, by_id[entry.account_id], entry.booking_id or 0,
                       _payer(rng, entry.account_id), RequestContext(ip=_ip(rng)))
        except FairslotError:
            continue
        people.next_visit[view.patient.id or 0] = view.session.starts_at.astimezone(
            run.deps.settings.zone).date()
        paid.append((view.booking.id or 0, view.session.starts_at, view.patient.id_number,
                     view.patient.name))
    return paid
