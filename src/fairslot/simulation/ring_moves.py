"""A scalper ring moves from one hospital to the next (docs/simulation.md, "ring-moves").

Two hospitals, each its own platform and database under its own master secret, with a hot
doctor whose slots are scarce. For ``days_at_a`` days a ring (a few accounts, each with five
identities, one payer an account) takes what it can at hospital A, alongside A's genuine
patients. Then A's investigator confirms the ring and publishes its identifiers (ID numbers,
phones, payers) to the consortium, as `fairslot consortium publish ring` does from an
investigation's output; B pulls A's feed, verified as any sync verifies it; and the ring
moves to B for ``days_at_b`` days, registering, linking the same identities, booking and
paying with the same payers, alongside B's genuine patients.

Everything goes through the real services (registration, identity linking, booking,
payment) on a fake clock; the only thing given rather than found is the investigator's
confirmation of the ring (`fairslot investigate` finds rings from records, and
tests/consortium/test_live.py publishes one from its output). Run with the consortium on
and off at B: what the ring gets at B, and what B's genuine patients get."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pathlib
import random
import re
import tempfile
from typing import Any

from fairslot.bootstrap import Platform, bootstrap
from fairslot.clock import FixedClock
from fairslot.config import Settings
from fairslot.consortium import Action, Consortium, EntryKind, NewEntry, RingRole, SubjectType
from fairslot.consortium.feed import verify_page
from fairslot.consortium.pseudonyms import EpochKey
from fairslot.domain.accounts import Account
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_phone, make_residents
from fairslot.domain.schedule import Period
from fairslot.services import accounts, booking, catalog, messaging
from fairslot.services.context import RequestContext
from fairslot.services.payments import PaymentProvider, payer_key
from fairslot.storage.migrate import upgrade

__all__ = ["RingMoveResult", "render_ring_moves", "run_ring_moves"]

START = dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC)  # 08:00 in Shanghai
PASSWORD = "simulated password"  # noqa: S105 - the simulated patients' shared password


@dataclasses.dataclass
class HospitalResult:
    slots: int = 0
    ring_bookings: int = 0
    ring_paid: int = 0
    genuine_bookings: int = 0
    genuine_wanting: int = 0
    genuine_refused_by_list: int = 0
    ring_refusals: dict[str, int] = dataclasses.field(default_factory=dict)

    def refuse(self, code: str) -> None:
        self.ring_refusals[code] = self.ring_refusals.get(code, 0) + 1


@dataclasses.dataclass
class RingMoveResult:
    consortium: bool
    published: int
    at_a: HospitalResult
    at_b: HospitalResult

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Ring:
    phones: list[str]
    payers: list[str]
    identities: list[list[Identity]]


def _platform(folder: pathlib.Path, name: str, clock: FixedClock, *,
              consortium: bool) -> Platform:
    url = f"sqlite:///{folder / name}.db"
    settings = Settings(database_url=url, secret_key=f"ring-moves-{name}-" + "s" * 32,
                        scheduler=False, password_hash_time_cost=1,
                        password_hash_memory_kib=32, consortium_enabled=consortium)
    platform = bootstrap(settings, clock=clock)
    upgrade(platform.engine)
    return platform


def _catalog(platform: Platform, days: int, capacity: int) -> list[list[int]]:
    """A sought-after doctor, two sessions a day for ``days`` days, every slot released
    now. Not marked hot: a hot doctor's session scheduled after its release gets a request
    window, and what is measured here is the shared list at booking, not the window."""
    hospital = platform.run(catalog.create_hospital, "SIM", "Simulated hospital")
    department = platform.run(catalog.create_department, hospital.id or 0, "CARD", "Cardiology")
    doctor = platform.run(catalog.create_doctor, department.id or 0, "Dr Hot",
                          "Chief physician", "heart failure")
    today = platform.clock.now().astimezone(platform.settings.zone).date()
    by_day = []
    for day in range(days):
        made = platform.run(catalog.schedule_sessions, doctor.id or 0,
                            [today + dt.timedelta(days=day + 1)],
                            [Period.MORNING, Period.AFTERNOON], capacity, 30000,
                            release_days_before=days + 2)
        by_day.append([s.id or 0 for s in made])
    return by_day


def _residents(platform: Platform, people: list[Identity]) -> None:
    with platform.uow() as uow:
        for identity in people:
            platform.verifier.register(uow, identity)
        uow.commit()


def _try(result: HospitalResult | None, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except FairslotError as exc:
        if result is not None:
            result.refuse(exc.code)
        return None


def _register(platform: Platform, username: str, phone: str,
              ctx: RequestContext) -> Account:
    """Register as a person does, then type back the code texted to the phone (the
    simulated phones read the development outbox): an unverified account may not add
    patients or book."""
    account = platform.run(accounts.register, username, PASSWORD, phone, ctx)
    with platform.uow() as uow:
        texts = [m.body for m in messaging.dev_outbox(uow, account_id=account.id, limit=20)
                 if m.kind == "phone.code"]
    found = re.search(r"\b(\d{6})\b", texts[0]) if texts else None
    if found is None:
        raise RuntimeError(f"no phone code was sent to {username}")
    return platform.run(accounts.verify_phone, account, found.group(1), ctx)


def _play_ring(platform: Platform, ring: _Ring, sessions_by_day: list[list[int]],
               result: HospitalResult, clock: FixedClock, tag: str, first_day: int) -> None:
    """The ring registers its accounts, links its identities, then each day books every
    identity into the day's first session with a free slot and pays at once."""
    ctx = RequestContext(ip="198.51.100.7")
    run = platform.run
    members: list[tuple[Account, int]] = []
    for n, (phone, people) in enumerate(zip(ring.phones, ring.identities, strict=True)):
        account = _try(result, _register, platform, f"{tag}ring{n:02d}", phone, ctx)
        if account is None:
            continue
        for person in people:
            patient = _try(result, run, accounts.add_patient, account, person.id_number,
                           person.name, None, ctx)
            if patient is not None:
                members.append((account, patient.id or 0))
    for day, sessions in enumerate(sessions_by_day):
        clock.set(START + dt.timedelta(days=first_day + day, hours=1))
        for account, pid in members:
            payer = ring.payers[int(account.username[-2:])]
            refusal = None
            for sid in sessions:
                try:
                    view = run(booking.book, account, pid, sid, ctx)
                except FairslotError as exc:
                    refusal = exc.code
                    if exc.code == "slot_unavailable":
                        continue  # try the day's other session
                    break
                result.ring_bookings += 1
                if _try(result, run, booking.pay, account, view.booking.id or 0, payer,
                        ctx) is not None:
                    result.ring_paid += 1
                refusal = None
                break
            if refusal is not None:
                result.refuse(refusal)


def _play_genuine(platform: Platform, people: list[Identity], sessions_by_day: list[list[int]],
                  result: HospitalResult, clock: FixedClock, rng: random.Random,
                  tag: str, first_day: int) -> None:
    """Genuine patients: one account each; each day a quarter of them want a slot (after
    the ring's bots, which are faster), and take the first free one."""
    ctx = RequestContext(ip="203.0.113.20")
    run = platform.run
    family: list[tuple[Account, int]] = []
    for n, person in enumerate(people):
        account = _register(platform, f"{tag}family{n:04d}", make_phone(rng), ctx)
        patient = run(accounts.add_patient, account, person.id_number, person.name, None, ctx)
        family.append((account, patient.id or 0))
    for day, sessions in enumerate(sessions_by_day):
        clock.set(START + dt.timedelta(days=first_day + day, hours=2))
        for account, pid in rng.sample(family, len(family) // 4):
            result.genuine_wanting += 1
            for sid in sessions:
                try:
                    view = run(booking.book, account, pid, sid, ctx)
                except FairslotError as exc:
                    if exc.code.startswith("consortium_"):
                        result.genuine_refused_by_list += 1
                    continue
                run(booking.pay, account, view.booking.id or 0, f"wechat:wxid_{tag}{pid}", ctx)
                result.genuine_bookings += 1
                break


def _publish_ring(a: Consortium, ring: _Ring, clock: FixedClock,
                  payments: PaymentProvider) -> int:
    """A's investigator publishes the confirmed ring's identifiers (one year); payers as
    the payment provider names them, as quotas and the look-up at payment do."""
    now = clock.now()
    until = now + dt.timedelta(days=365)
    items = [NewEntry(EntryKind.RING_MEMBER, RingRole.HELD_IDENTITY, 3, now, until,
                      SubjectType.IDENTITY, p.id_number, "simulated case: confirmed ring")
             for people in ring.identities for p in people]
    items += [NewEntry(EntryKind.RING_MEMBER, RingRole.BOOKER, 3, now, until,
                       SubjectType.PHONE, phone, "simulated case") for phone in ring.phones]
    items += [NewEntry(EntryKind.RING_MEMBER, RingRole.PAYMENT_HUB, 3, now, until,
                       SubjectType.PAYER, payer_key(payments, payer), "simulated case")
              for payer in ring.payers]
    return len(a.publish(items, actor="investigator"))


def _pull(a: Consortium, b: Consortium, clock: FixedClock) -> None:
    """B takes A's feed page by page, verified against A's pinned key as a sync does."""
    me = a.store.self_row()
    assert me is not None
    while True:
        member = b.store.member(me.member)
        assert member is not None
        page = a.store.feed_page(me.member, member.version, clock.now())
        assert page is not None
        verified = verify_page(me.member, me.key.private.public_key(), member.version,
                               member.chain, page)
        if not verified.changes:
            break
        b.store.apply(me.member, verified, clock.now(), source="member")
        if verified.head.version >= verified.head.latest:
            break
    b.refresh()


def run_ring_moves(seed: int = 1, *, consortium: bool = True, ring_accounts: int = 4,
                   genuine: int = 120, days_at_a: int = 3, days_at_b: int = 3,
                   capacity: int = 6, new_phones: bool = True,
                   workdir: pathlib.Path | None = None) -> RingMoveResult:
    """Play the story once; ``consortium`` switches the look-ups off at B. With
    ``new_phones`` the ring registers at B with fresh numbers (SIM cards are cheap), so
    what stops it is its identities and payers, not its phones."""
    rng = random.Random(f"ring-moves:{seed}")
    people = make_residents(rng, ring_accounts * 5 + 2 * genuine)
    ring = _Ring(phones=[make_phone(rng) for _ in range(ring_accounts)],
                 payers=[f"alipay:hub{n}-{rng.randrange(10**6)}@example.com"
                         for n in range(ring_accounts)],
                 identities=[people[5 * n:5 * n + 5] for n in range(ring_accounts)])
    genuine_a = people[ring_accounts * 5:ring_accounts * 5 + genuine]
    genuine_b = people[ring_accounts * 5 + genuine:]
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        tmp = pathlib.Path(folder)
        clock = FixedClock(START)
        pa = _platform(tmp, "a", clock, consortium=True)
        pb = _platform(tmp, "b", clock, consortium=consortium)
        try:
            ring_people = [p for group in ring.identities for p in group]
            _residents(pa, ring_people + genuine_a)
            _residents(pb, ring_people + genuine_b)
            a_sessions = _catalog(pa, days_at_a, capacity)
            b_sessions = _catalog(pb, days_at_a + days_at_b, capacity)[days_at_a:]
            at_a = HospitalResult(slots=2 * capacity * days_at_a)
            at_b = HospitalResult(slots=2 * capacity * days_at_b)
            _play_ring(pa, ring, a_sessions, at_a, clock, "a", 0)
            _play_genuine(pa, genuine_a, a_sessions, at_a, clock, rng, "a", 0)
            assert pa.consortium is not None
            a = pa.consortium
            b = pb.consortium or Consortium(pb.engine, clock)
            epoch = EpochKey(1, rng.randbytes(32))
            a_key = a.create_key("hosp-a", "Hospital A", actor="setup")
            b.create_key("hosp-b", "Hospital B", actor="setup")
            for c in (a, b):
                c.store.add_epoch(epoch, clock.now(), "setup")
            b.add_member("hosp-a", "http://hosp-a.invalid", a_key.public_text, actor="setup")
            b.set_policy("ring_member", Action.REFUSE, actor="setup")
            published = _publish_ring(a, ring, clock, pa.payments)
            _pull(a, b, clock)
            clock.set(START + dt.timedelta(days=days_at_a))
            if new_phones:
                ring = dataclasses.replace(ring, phones=[make_phone(rng) for _ in ring.phones])
            _play_ring(pb, ring, b_sessions, at_b, clock, "b", days_at_a)
            _play_genuine(pb, genuine_b, b_sessions, at_b, clock, rng, "b", days_at_a)
        finally:
            pa.engine.dispose()
            pb.engine.dispose()
    return RingMoveResult(consortium, published, at_a, at_b)


def render_ring_moves(results: list[RingMoveResult], elapsed: float) -> str:
    lines = ["ring-moves: a ring takes hospital A's hot slots, A publishes it, it moves to B",
             f"{'':34}{'at A':>8}" + "".join(
                 f"{'B, consortium ' + ('on' if r.consortium else 'off'):>22}"
                 for r in results)]
    a = results[0].at_a
    rows = [("slots", "slots"), ("ring's bookings", "ring_bookings"),
            ("ring's paid bookings", "ring_paid"),
            ("genuine patients served", "genuine_bookings"),
            ("genuine patients wanting", "genuine_wanting"),
            ("genuine refused by the list", "genuine_refused_by_list")]
    for label, field in rows:
        lines.append(f"{label:34}{getattr(a, field):>8}" + "".join(
            f"{getattr(r.at_b, field):>22}" for r in results))
    for r in results:
        refusals = ", ".join(f"{k} {v}" for k, v in sorted(r.at_b.ring_refusals.items()))
        lines.append(f"ring refused at B (consortium {'on' if r.consortium else 'off'}): "
                     f"{refusals or 'never'}")
    lines.append(f"entries A published: {results[0].published}; {elapsed:.1f} s")
    return "\n".join(lines)
