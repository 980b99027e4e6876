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
from fairslot.domain.rounds import Entry, EntryOutcome
from fairslot.domain.schedule import Period, ReleasePolicy
from fairslot.services import accounts, booking, catalog, release
from fairslot.services.context import RequestContext
from fairslot.services.deps import Deps, Units
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
                f"{name.split()[-1]} clinic", hot=hot,
                # Hot doctors release by draw; the rest first come first served.
                release_policy=ReleasePolicy.DRAW if hot else ReleasePolicy.FCFS)
            doctors.append(doctor)
    # A fortnight back and a fortnight and a day ahead: tomorrow's release always exists,
    # so a draw round is taking entries whenever the demo runs.
    dates = [start + dt.timedelta(days=d) for d in range(30)]
    for doctor in doctors:
        capacity = 10 if doctor.hot else rng.choice((15, 20, 25, 30))
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
    return report


def _ip(rng: random.Random) -> str:
    return f"{rng.choice((36, 58, 106, 113, 180, 223))}.{rng.randint(0, 255)}." \
           f"{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _history(run: _Runner, clock: FixedClock, families: list[tuple[Account, list[int]]],
             desk: Account, rng: random.Random, start: dt.date, real_now: dt.datetime) -> int:
    """A day at a time up to now: patients enter draws and book sessions released that
    morning, most pay, some cancel; on the session's day most check in at the desk and the
    rest become no-shows. Each patient sees one doctor (their clinic, the first they
    booked), as people do; a demo where everybody books a random department every few days
    would look like identities booked across departments to hold slots."""
    zone = run.deps.settings.zone
    today = real_now.astimezone(zone).date()
    made = 0
    booked: list[tuple[int, dt.datetime, str, str]] = []  # booking, session start, id, name
    clinic: dict[int, int | None] = {}  # patient -> the doctor they see
    lapsed: set[int | None] = set()  # accounts that once let a hold lapse
    day = start - dt.timedelta(days=14)
    while day <= today:
        if dt.datetime.combine(day, dt.time(8, 5), zone) > real_now:
            break  # history stops at the present; the running scheduler takes over
        booked += _draw_day(run, clock, families, rng, day, clinic, lapsed)
        clock.set(dt.datetime.combine(day, dt.time(8, 5), zone))
        with run.units() as uow:
            released = uow.schedule.released_between(clock.now() - dt.timedelta(hours=1),
                                                     clock.now())
            doctor_of = {i: s.doctor_id for i, s in
                         uow.schedule.sessions_by_id(released).items()}
        for account, members in families:
            if not released or rng.random() < 0.55:
                continue
            patient_id = rng.choice(members)
            options = [i for i in released if doctor_of.get(i) == clinic.get(patient_id)] \
                if patient_id in clinic else released
            if not options:
                continue
            session_id = rng.choice(options)
            clinic.setdefault(patient_id, doctor_of.get(session_id))
            ctx = RequestContext(ip=_ip(rng), device_id=f"dev-{account.id}")
            try:
                view = run(booking.book, account, patient_id, session_id, ctx)
            except FairslotError:
                continue
            made += 1
            clock.advance(rng.randint(5, 60))
            roll = rng.random()
            if roll < 0.08 and account.id not in lapsed:
                # Left unpaid: it expires at the deadline. Once per family: a lapsed hold
                # counts against the account's credit, and people learn.
                lapsed.add(account.id)
                continue
            run(booking.pay, account, view.booking.id or 0,
                        rng.choice(("alipay:", "wechat:")) + f"u{account.id:04d}", ctx)
            if roll < 0.16:
                run(booking.cancel, account, view.booking.id or 0, ctx)
            else:
                booked.append((view.booking.id or 0, view.session.starts_at, view.patient.id_number,
                               view.patient.name))
        booking.expire_overdue(run.units, run.deps)
        # The day's sessions: patients arrive at the desk a little before their session.
        arriving = sorted((e for e in booked if e[1].astimezone(zone).date() == day),
                          key=lambda e: e[1])
        booked = [e for e in booked if e[1].astimezone(zone).date() != day]
        for booking_id, starts_at, id_number, name in arriving:
            clock.set(max(clock.now(), starts_at - dt.timedelta(minutes=20)))
            if rng.random() < 0.85 and day < today:
                with contextlib.suppress(FairslotError):
                    run(booking.check_in, desk, booking_id, id_number, name,
                                     RequestContext(ip="10.0.0.10"))
        clock.set(dt.datetime.combine(day, dt.time(23, 0), zone))
        if day < today:
            booking.record_no_shows(run.units, run.deps)
        day += dt.timedelta(days=1)
    return made



def _draw_day(run: _Runner, clock: FixedClock, families: list[tuple[Account, list[int]]],
              rng: random.Random, day: dt.date, clinic: dict[int, int | None],
              lapsed: set[int | None]) -> list[tuple[int, dt.datetime, str, str]]:
    """Before 08:00 families enter the open rounds for one member, with sessions of that
    member's doctor; at 08:00 the lists are frozen, at 08:01 (the beacon out) the rounds are
    drawn, and most winners pay within the afternoon."""
    zone = run.deps.settings.zone
    clock.set(dt.datetime.combine(day, dt.time(7, 0), zone))
    release.open_due_rounds(run.units, run.deps)
    with run.units() as uow:
        open_rounds = [(r.id, uow.rounds.sessions(r.id)) for r in uow.rounds.open_rounds(
            clock.now())]
        doctor_of = {i: s.doctor_id for i, s in uow.schedule.sessions_by_id(
            [i for _, sessions in open_rounds for i in sessions]).items()}
    for round_id, sessions in open_rounds:
        for account, members in families:
            if rng.random() < 0.6:
                continue
            member = rng.choice(members)
            if member not in clinic:
                clinic[member] = doctor_of.get(rng.choice(sessions))
            mine = [i for i in sessions if doctor_of.get(i) == clinic[member]]
            if not mine:
                continue
            choices = rng.sample(mine, k=min(len(mine), rng.choice((1, 2, 3))))
            with contextlib.suppress(FairslotError):
                run(release.enter, account, round_id, member, choices,
                              RequestContext(ip=_ip(rng), device_id=f"dev-{account.id}"))
            clock.advance(rng.randint(5, 90))
    # 08:00 the lists are frozen; a minute later the beacon is out and the rounds drawn.
    clock.set(dt.datetime.combine(day, dt.time(8, 0), zone))
    release.draw_due_rounds(run.units, run.deps)
    clock.set(dt.datetime.combine(day, dt.time(8, 1), zone))
    release.draw_due_rounds(run.units, run.deps)
    by_id = {account.id: account for account, _ in families}
    paid = []
    for entry in _won_today(run):
        if rng.random() < 0.15 and entry.account_id not in lapsed:
            lapsed.add(entry.account_id)  # a win left unpaid, once per family
        else:
            clock.advance(rng.randint(10, 200))
            try:
                view = run(booking.pay, by_id[entry.account_id], entry.booking_id or 0,
                                   rng.choice(("alipay:", "wechat:")) + f"u{entry.account_id:04d}",
                                   RequestContext(ip=_ip(rng)))
            except FairslotError:
                continue
            paid.append((view.booking.id or 0, view.session.starts_at, view.patient.id_number,
                         view.patient.name))
    return paid


def _won_today(run: _Runner) -> list[Entry]:
    """Winning entries of the rounds drawn at this moment."""
    now = run.deps.clock.now()
    with run.units() as uow:
        return [e for rid in uow.rounds.drawn_at(now) for e in uow.rounds.all_entries(rid)
                if e.outcome is EntryOutcome.WON and e.booking_id is not None]
