"""Issue 18's identity and desk attackers, played over the real services.

- **Phone farm** (``phonefarm.accounts``): registers accounts with random valid phone
  numbers it does not own, links ring identities and races or enters like the ring's bots.
- **Payer variants** (``variants.identities``): ring identities that pay through one hub
  spelt many ways (``alipay:GangPay01``, ``wechat:gangpay01``, ``card:gang.pay-01`` ...).
- **Identity squatting and credit poisoning** (``squat.victims``): the ring links real
  people's identities before they do, enters their draws or books their sessions first, and
  leaves what it cannot sell to lapse or become a no-show on the victim's record. Each
  victim then comes online to ask for their own slot.
- **A corrupt desk clerk** (``clerk.gang``): a registration-desk account that books the
  ring's identities on site at the release instant for a session days ahead, enters them in
  draws, and cancels honest patients' waitlist offers hoping the next offer lands on one.

Two defences of ``scenario.DEFENCES`` stand against them: ``identity`` (phone codes, the
registered phone's consent to link an identity, the person's claim of it at the desk) and
``desk`` (the desk's day window, shift quota, typed-ID quota and rate). A defence switched
off is played as its absence: with ``identity`` off a code is handed to whoever asked for it
(what not sending one amounts to), with ``desk`` off the desk's limits are set out of reach.
Everything else is the platform's own code, reached as a request reaches it: patients'
requests through the simulation's guard and services, the desk's through the desk service
its staff routes call."""

from __future__ import annotations

import collections
import contextlib
import random
import re
from typing import TYPE_CHECKING, Any

from fairslot.domain.accounts import Account, Role
from fairslot.domain.booking import Channel
from fairslot.domain.errors import FairslotError
from fairslot.domain.identity import Identity
from fairslot.domain.residents import make_phone, make_residents
from fairslot.guard import GuardError, Requester, RouteGroup
from fairslot.services import accounts, booking, desk, identities, messaging, release
from fairslot.services.context import RequestContext
from fairslot.simulation.history import History
from fairslot.simulation.metrics import GENUINE, SCALPER

if TYPE_CHECKING:
    from fairslot.simulation.engine import Agent, Person, Process, Simulation

__all__ = ["PAYER_VARIANTS", "Attackers", "settings_for"]

PAYER_VARIANTS = ("alipay:GangPay01", "wechat:gangpay01", "card:gang.pay-01",
                  "alipay:gang_pay01", "wechat:GANGPAY01", "alipay:gang-pay-01")
"""One hub's funding account as a ring types it in different payment methods and spellings
(the red team's ``alipay:GangPay01`` / ``wechat:gangpay01``)."""

_PASSWORD = "Farm-password-77-correct-horse"  # noqa: S105 - the farm's shared password
_DESK = RequestContext(ip="192.0.2.20", channel=Channel.WINDOW)
_CODE = re.compile(r"\b(\d{6})\b")


def settings_for(defences: dict[str, bool]) -> dict[str, Any]:
    """Platform settings a run needs for these agents: cheap password hashes (the farm
    registers for real; the simulator hashes nothing else), and with the ``desk`` defence
    off the desk's limits out of reach (the desk as it was: any day, any number)."""
    values: dict[str, Any] = {"password_hash_time_cost": 1, "password_hash_memory_kib": 32}
    if not defences.get("desk", True):
        values.update(desk_days_ahead=7, desk_actions_per_shift=100_000,
                      desk_typed_ids_per_shift=100_000, desk_actions_per_minute=100_000)
    return values


class Attackers:
    """The four agents of one run: built in ``populate``, started in ``start``, read back in
    ``gains``. They use the simulation's agents and processes (booking, entering, paying,
    the ring's selling) wherever the tactic is the ring's usual one."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.rng = random.Random(f"{sim.seed}:{sim.sc.name}:attackers")
        self.identity_on = sim.defences.get("identity", True)
        self.variants: list[Person] = []
        self.squatters: list[Person] = []
        self.victims: list[tuple[Identity, list[int], Account]] = []
        self.victim_people: list[Person] = []
        self.gang: list[Identity] = []
        self.gang_people: list[Person] = []
        self._squat_accounts: set[int | None] = set()
        self.farm_people: list[Person] = []
        self.tally: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)

    # -- building ---------------------------------------------------------------------------

    def _knob(self, section: str, key: str, default: int) -> int:
        return int(self.sim.sc.knob(section, key, default))

    def populate(self) -> None:
        sim, rng = self.sim, self.rng
        n_var = self._knob("variants", "identities", 0)
        n_victims = self._knob("squat", "victims", 0)
        n_gang = self._knob("clerk", "gang", 0)
        n_farm = self._knob("phonefarm", "accounts", 0)
        people = make_residents(rng, n_var + n_victims + n_gang + n_farm * 2)
        with sim.platform.uow() as uow:
            for identity in people:
                sim.platform.verifier.register(uow, identity)
            uow.commit()
        it = iter(people)
        per_account = sim.platform.settings.max_patients_per_account
        self.variants = self._people("var", [next(it) for _ in range(n_var)], per_account)
        self._variant_of = {p.patient_id: PAYER_VARIANTS[k % len(PAYER_VARIANTS)]
                            for k, p in enumerate(self.variants)}
        # The squatters link their victims' identities first (the victims have not yet).
        victims = [next(it) for _ in range(n_victims)]
        wants = [sim._wants(rng) for _ in victims]
        self.squatters = self._people("squat", victims, per_account, wants)
        self._squat_accounts = {p.agent.account.id for p in self.squatters}
        own = sim._accounts(sim.platform, "vic", n_victims, lambda i: make_phone(rng))
        self.victims = list(zip(victims, wants, own, strict=True))
        self.gang = [next(it) for _ in range(n_gang)]
        self.farm_identities = [next(it) for _ in range(n_farm * 2)]
        self.n_farm = n_farm
        self.desk_lead: Account | None = None
        if n_victims and self.identity_on:
            # The operator who approves the desk's claims (the second pair of eyes); a
            # fixed number, so the generator the rest of the run reads does not shift.
            self.desk_lead = sim._accounts(sim.platform, "desklead", 1,
                                           lambda i: "+8613000000000")[0]
            with sim.platform.uow() as uow:
                self.desk_lead.role = Role.OPERATOR
                uow.db.merge(self.desk_lead)
                uow.commit()
        self.clerk: Account | None = None
        if n_gang:
            self.clerk = sim._accounts(sim.platform, "clerk", 1, lambda i: make_phone(rng))[0]
            with sim.platform.uow() as uow:
                self.clerk.role = Role.REGISTRATION
                uow.db.merge(self.clerk)
                uow.commit()
        # The days before the release (``[history]``): the world as it was when this
        # release came, played once everyone exists.
        self.history = History(sim)
        self.history.play()

    def _agent(self, account: Account, prefix: str) -> Agent:
        from fairslot.simulation.engine import Agent

        return Agent(SCALPER, account, self.sim.proxies, f"dev-{prefix}-{account.id}",
                     random.Random(self.rng.random()), rotate=len(self.sim.proxies) > 1)

    def _people(self, prefix: str, ids: list[Identity], per_account: int,
                wants: list[list[int]] | None = None) -> list[Person]:
        if not ids:
            return []
        sim = self.sim
        made = sim._accounts(sim.platform, prefix, (len(ids) + per_account - 1) // per_account,
                             lambda i: make_phone(self.rng))
        agents = [self._agent(a, prefix) for a in made]
        out = []
        for k, identity in enumerate(ids):
            person = sim._add(agents[k // per_account], identity, SCALPER,
                              wants[k] if wants else sim._wants(self.rng))
            if person is not None:
                out.append(person)
        return out

    def squatted(self, account_id: int | None) -> bool:
        """Whether ``account_id`` is a squatter's: what it holds under a victim's identity
        is the ring's slot, and the victim does not come for it."""
        return account_id in self._squat_accounts

    def payer(self, person: Person) -> str | None:
        """The spelling a payer-variant identity pays with (``None``: not one of them)."""
        return self._variant_of.get(person.patient_id) if self.variants else None

    # -- starting ---------------------------------------------------------------------------

    def start(self, window_s: float) -> None:
        sim, rng = self.sim, self.rng
        for group in (self.squatters, self.variants):
            if not group:
                continue
            if sim.draw:  # a squatter enters at the window's opening, before its victim
                at = -window_s + 60.0 if group is self.squatters else -3000.0
                sim.spawn(at + rng.random() * 60, sim.bot_draw(group, 5e6))
            else:  # the ring's best software: screens opened early, fired at +30 ms
                sim.spawn(-12.0, sim.early_tokens(group))
        for victim in self.victims:
            at = (-window_s + 1800.0 + rng.random() * (window_s - 5400.0) if sim.draw
                  else rng.expovariate(1 / float(sim.sc.knob("genuine", "arrival_mean_s",
                                                               300.0))))
            sim.spawn(at, self._victim(*victim))
        if self.n_farm:
            sim.spawn(-window_s + 30.0 if sim.draw else -1800.0, self._farm())
        if self.clerk is not None:
            sim.spawn(-window_s + 3600.0 if sim.draw else 0.0, self._clerk())

    # -- the phone farm ---------------------------------------------------------------------

    def _register(self, username: str, phone: str, ip: str) -> Account | None:
        """The registration request, through the guard's ``registration`` group as the API
        route takes it."""
        sim = self.sim
        passed = None
        if sim.guard is not None:
            who = Requester(client_ip=ip, device_id=None, device_new=True)
            try:
                passed = sim.runner.run(sim.guard.decide(who, RouteGroup.REGISTRATION))
            except GuardError as exc:
                self.tally["phone_farm"][exc.code] += 1
                return None
        sim.costs.requests += 1
        try:
            return sim.platform.run(accounts.register, username, _PASSWORD, phone,
                                    RequestContext(ip=ip))
        except FairslotError as exc:
            self.tally["phone_farm"][exc.code] += 1
            return None
        finally:
            if passed is not None and sim.guard is not None:
                sim.runner.run(sim.guard.release(passed))

    def _code(self, account_id: int, kind: str) -> str | None:
        """The newest code of ``kind`` sent for ``account_id`` (the development outbox)."""
        with self.sim.platform.uow() as uow:
            for m in messaging.dev_outbox(uow, account_id=account_id, limit=20):
                if m.kind == kind and (found := _CODE.search(m.body)):
                    return found.group(1)
        return None

    def _farm(self) -> Process:
        """Accounts on numbers the farm does not own. With ``identity`` on it never sees the
        codes, so its accounts may not link anyone; off, the code is handed to it."""
        sim = self.sim
        tally = self.tally["phone_farm"]
        people = iter(self.farm_identities)
        for i in range(self.n_farm):
            yield 0.9  # the red team's pace: 85 accounts in 74 s
            ip = self.rng.choice(sim.proxies)
            account = self._register(f"pfarm{i:04d}", make_phone(self.rng), ip)
            if account is None:
                continue
            tally["registered"] += 1
            if not self.identity_on:
                code = self._code(account.id or 0, "phone.code")
                if code is not None:
                    with contextlib.suppress(FairslotError):
                        account = sim.platform.run(accounts.verify_phone, account, code,
                                                   RequestContext(ip=ip))
                        tally["verified"] += 1
            agent = self._agent(account, "pfarm")
            for identity in (next(people), next(people)):
                person = sim._add(agent, identity, SCALPER, sim._wants(self.rng))
                if person is None:
                    tally["link_refused"] += 1
                    continue
                tally["linked"] += 1
                self.farm_people.append(person)
                if sim.draw:
                    sim.spawn(sim.now_s + 1.0, sim.bot_draw([person], 5e6))
                else:
                    sim.spawn(max(0.0, sim.now_s), sim.bot_fcfs(
                        [person], skip_screens=False, step=0.02, rate=5e6))

    # -- identity squatting and credit poisoning -------------------------------------------

    def _victim(self, identity: Identity, wants: list[int], account: Account) -> Process:
        """The person whose identity the ring took comes online to ask for their own slot:
        links themselves (the squatter's phone is asked to consent), and without consent
        claims the identity at the desk with their ID card, drops the squatter's link,
        withdraws and cancels what it made under their name, then asks as anyone does."""
        from fairslot.simulation.engine import Agent, Person

        sim, tally = self.sim, self.tally["squatting"]
        k = len(self.victim_people) + 1000
        agent = Agent(GENUINE, account, [f"10.200.{k // 256 % 256}.{k % 256}"],
                      f"dev-vic-{account.id}", random.Random(self.rng.random()))
        ctx = RequestContext(ip=agent.ips[0])
        yield 0.0
        try:
            patient = sim.platform.run(accounts.add_patient, account, identity.id_number,
                                       identity.name, None, ctx)
        except FairslotError as exc:
            if exc.code != "consent_required":
                tally[f"victim_{exc.code}"] += 1
                return
            tally["victims_asked_for_consent"] += 1
            patient = None
            if not self.identity_on:
                # No consent on today's platform: the link simply goes through.
                code = self._code(self._holder_of(identity) or 0, "link.consent")
                with contextlib.suppress(FairslotError):
                    patient = sim.platform.run(accounts.add_patient, account,
                                               identity.id_number, identity.name, None, ctx,
                                               consent_code=code)
            else:
                yield agent.rng.uniform(1800, 7200)  # to the desk with the ID card
                agent.effort_s += 1800
                assert self.desk_lead is not None
                asked = sim.platform.run(identities.claim_at_desk, sim.staff,
                                         identity.id_number, identity.name,
                                         account.username, _DESK)
                patient = sim.platform.run(identities.approve_desk_claim, self.desk_lead,
                                           asked.claim.id, _DESK).patient
                tally["claimed_at_desk"] += 1
                self._take_back(account, patient.id or 0, ctx)
        if patient is None:
            tally["victim_not_linked"] += 1
            return
        person = Person(patient.id or 0, identity, GENUINE, agent, wants)
        sim.people[person.patient_id] = person
        sim.genuine.append(person)
        self.victim_people.append(person)
        if sim.draw:
            yield from sim.genuine_draw(person)
        else:
            yield from sim.genuine_fcfs(person)

    def _holder_of(self, identity: Identity) -> int | None:
        with self.sim.platform.uow() as uow:
            patient = uow.patients.by_id_number(identity.id_number)
            return None if patient is None else patient.registered_account_id

    def _take_back(self, account: Account, patient_id: int, ctx: RequestContext) -> None:
        """The holder's identity page: every other account's link, entry and booking."""
        sim, tally = self.sim, self.tally["squatting"]
        view = next(v for v in sim.platform.run(identities.held, account)
                    if v.patient.id == patient_id)
        for other, _name, own in view.managers:
            if not own:
                with contextlib.suppress(FairslotError):
                    sim.platform.run(identities.revoke_link, account, patient_id, other, ctx)
                    tally["links_revoked"] += 1
        for entry in view.entries:
            if entry.account_id != account.id and not entry.withdrawn:
                with contextlib.suppress(FairslotError):
                    sim.platform.run(release.withdraw, account, entry.id, ctx)
                    tally["entries_withdrawn"] += 1
        for b in view.bookings:
            if b.account_id != account.id and b.status.value in ("held", "paid"):
                with contextlib.suppress(FairslotError):
                    sim.platform.run(booking.cancel, account, b.id or 0, ctx)
                    tally["bookings_cancelled"] += 1
                    sim._wake()

    # -- the corrupt desk clerk -------------------------------------------------------------

    def _clerk(self) -> Process:
        """On site, for the ring: bookings at the release instant for the hot sessions (days
        ahead), entries in the draw during the window, then cancelling honest patients'
        waitlist offers so that the next offer may land on a gang entry."""
        from fairslot.simulation.engine import Agent, Person

        sim, tally = self.sim, self.tally["desk_clerk"]
        assert self.clerk is not None
        agent = Agent(SCALPER, self.clerk, [_DESK.ip or "192.0.2.20"], None,
                      random.Random(self.rng.random()))
        yield 0.0
        for identity in self.gang:
            wants = sim._wants(self.rng)
            for _ in range(3):  # refused for the rate: waits a minute and tries again
                try:
                    pid = self._clerk_act(agent, identity, wants)
                except FairslotError as exc:
                    if exc.code == "desk_rate":
                        yield 60.0
                        continue
                    tally[exc.code] += 1
                    break
                if pid is not None:
                    person = Person(pid, identity, SCALPER, agent, wants)
                    sim.people[pid] = person
                    self.gang_people.append(person)
                break
            yield 0.01  # one desk request after another (the red team: 12 in 0.33 s)
        if not sim.draw:
            return
        # After the draw: the waitlist's offers to honest patients, cancelled one by one.
        yield max(0.0, 600.0 - sim.now_s)
        tried: set[int] = set()
        for _ in range(48):
            for booking_id in self._honest_offers() - tried:
                tried.add(booking_id)
                try:
                    sim.platform.run(desk.cancel, self.clerk, booking_id,
                                     reason="patient phoned to cancel", ctx=_DESK)
                    tally["offers_cancelled"] += 1
                    sim._wake()
                    sim._dispatch_offers()
                except FairslotError as exc:
                    tally[f"cancel_{exc.code}"] += 1
                yield 5.0
            yield 1800.0

    def _clerk_act(self, agent: Agent, identity: Identity, wants: list[int]) -> int | None:
        """One gang identity entered (draw) or booked on site (fcfs); its patient id."""
        from fairslot.simulation.engine import Person

        sim, tally = self.sim, self.tally["desk_clerk"]
        assert self.clerk is not None
        typed = desk.Evidence.of("typed", "card reader broken")
        if sim.draw:
            rid = next((sim.round_of[s] for s in wants if s in sim.round_of), None)
            if rid is None:
                return None
            choices = [s for s in wants if sim.round_of.get(s) == rid][:3]
            entry = sim.platform.run(desk.enter, self.clerk, rid, identity.id_number,
                                     identity.name, choices, typed, _DESK)
            tally["entered"] += 1
            return entry.entry.patient_id
        view = sim.platform.run(desk.book, self.clerk, wants[0], identity.id_number,
                                identity.name, desk.Payment.parse("cash"), typed, _DESK)
        pid = view.patient.id or 0
        tally["booked"] += 1
        sim._held_by_ring.append((Person(pid, identity, SCALPER, agent, wants),
                                  view.booking.id or 0))
        return pid

    def _honest_offers(self) -> set[int]:
        import sqlalchemy as sa

        from fairslot.storage import tables as t

        sim = self.sim
        with sim.platform.uow() as uow:
            rows = uow.db.execute(
                sa.select(t.bookings.c.id, t.bookings.c.patient_id)
                .where(t.bookings.c.session_id.in_(sim.hot_sessions),
                       t.bookings.c.channel == "waitlist",
                       t.bookings.c.status == "held")).all()
        return {int(b) for b, p in rows if sim._category(int(p)) == GENUINE}

    # -- reading back -------------------------------------------------------------------------

    def gains(self, holders: collections.Counter[int]) -> dict[str, dict[str, float]]:
        """What each agent got: final hot slots and its own counts (refusals by code)."""
        sim = self.sim
        out: dict[str, dict[str, float]] = {}
        groups = {"phone_farm": self.farm_people, "payer_variants": self.variants,
                  "squatting": self.squatters, "desk_clerk": self.gang_people}
        for name, people in groups.items():
            if not people and not self.tally.get(name):
                continue
            sign = -1 if name == "squatting" else 1  # held under the victims' identities
            row: dict[str, float] = {
                "identities": float(len(people)),
                "final_slots": float(sum(holders[sign * p.patient_id] for p in people))}
            row.update({k: float(v) for k, v in sorted(self.tally[name].items())})
            out[name] = row
        if self.variants:
            out["payer_variants"].update(self._variant_payments())
        if self.victims:
            row = out.setdefault("squatting", {})
            served = {p.patient_id for p in self.victim_people if holders[p.patient_id]}
            row["victims"] = float(len(self.victims))
            row["victims_served"] = float(len(served))
            row["victims_with_offence"] = float(self._victims_with_offence())
        if sim.sc.knob("clerk", "gang", 0) and "desk_clerk" not in out:
            out["desk_clerk"] = {"identities": 0.0, "final_slots": 0.0}
        return out

    def _variant_payments(self) -> dict[str, float]:
        """Payments the variants made, and how many went beyond what one payer may pay for
        (``quota_patients_per_payer``), counted by the provider's id of the payer."""
        import sqlalchemy as sa

        from fairslot.storage import tables as t

        sim = self.sim
        ids = [p.patient_id for p in self.variants]
        with sim.platform.uow() as uow:
            rows = uow.db.execute(
                sa.select(t.payments.c.payer_index, t.bookings.c.patient_id)
                .join(t.bookings, t.bookings.c.id == t.payments.c.booking_id)
                .where(t.bookings.c.patient_id.in_(ids))).all()
        per_payer: dict[str, set[int]] = collections.defaultdict(set)
        for index, patient in rows:
            per_payer[str(index)].add(int(patient))
        limit = sim.platform.settings.quota_patients_per_payer
        return {"paid": float(len(rows)), "payers_seen": float(len(per_payer)),
                "paid_beyond_payer_quota": float(sum(max(0, len(v) - limit)
                                                     for v in per_payer.values()))}

    def _victims_with_offence(self) -> int:
        """Victims with a no-show (or a late cancellation) on their record at the end."""
        import sqlalchemy as sa

        from fairslot.storage import tables as t

        sim = self.sim
        with sim.platform.uow() as uow:
            ids = [p.id for v, _, _ in self.victims
                   if (p := uow.patients.by_id_number(v.id_number)) is not None]
            rows = uow.db.execute(
                sa.select(sa.func.count(sa.distinct(t.bookings.c.patient_id)))
                .where(t.bookings.c.patient_id.in_(ids),
                       t.bookings.c.status == "no_show")).scalar_one()
        return int(rows)
