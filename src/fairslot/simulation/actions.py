"""What any agent can do through the front door: every step goes through ``call``, which
asks the real request guard first and then calls the real service, as a server would.
Booking (with retries on the guard's answers), paying, entering a round, cancelling, and
taking a look at the free slots (pollers, re-holders and watching patients) are written
once here and used by the genuine patients and the scalpers alike."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Generator

import sqlalchemy as sa

from fairslot.domain.errors import FairslotError
from fairslot.domain.rounds import RoundKind
from fairslot.guard import (
    ChallengeRequired,
    GuardError,
    Requester,
    RouteGroup,
)
from fairslot.guard.errors import ActionTokenRefused
from fairslot.services import booking, catalog, release
from fairslot.simulation.metrics import (
    BUYER,
    CLIENT,
    GENUINE,
    SCALPER,
)
from fairslot.simulation.world import ACTIVE, BOOK, PAY, Agent, Person, Process, T, World
from fairslot.storage import tables as t

__all__ = ["Actions"]


class Actions(World):
    """The steps every agent takes through the front door (guard, then service)."""

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

    def _book_now(self, agent: Agent, patient_id: int, session_id: int) -> booking.BookingView:
        """Book, in the agent's current request (its context is the request's)."""
        return self.platform.run(booking.book, agent.account, patient_id, session_id,
                                 self.context(agent))

    def screen_token(self, agent: Agent, action: str, target: str) -> str:
        """Open the screen that leads to ``action`` (a page view) and keep its token."""
        def view() -> str:
            if action == BOOK:
                self.front_door.booking_screen(agent, int(target))
            return self.guard.issue_token(str(agent.account.id), action, target) \
                if self.guard is not None else ""
        return self.call(agent, RouteGroup.BROWSING, view)

    def booking_screen(self, agent: Agent, session_id: int) -> tuple[int, str]:
        """The booking screen: the session with its free slots, and the action token. A
        person (or a clicker driving the page) who sees no free slot does not press book."""
        def view() -> tuple[int, str]:
            free = self.platform.run(catalog.session_view, session_id).free
            token = self.guard.issue_token(str(agent.account.id), BOOK, str(session_id)) \
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
                    patient_id=person.patient_id, need_token=BOOK, target=str(session_id),
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
                token = self.screen_token(agent, BOOK, str(session_id))
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
            token = self.screen_token(agent, PAY, str(booking_id))
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
                          payer=payer, need_token=PAY, target=str(booking_id), token=token,
                          exclusive=True)
                if person.category == SCALPER:
                    self._held_by_ring.append((person, booking_id))
                return
            except ActionTokenRefused:
                yield 2.0
                token = self.screen_token(agent, PAY, str(booking_id))
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


    def _cancel(self, agent: Agent, booking_id: int) -> None:
        self.call(agent, RouteGroup.BOOKING,
                  lambda: self.platform.run(booking.cancel, agent.account, booking_id,
                                         self.context(agent)))
        self._wake()

    def _session_of(self, booking_id: int | None) -> int:
        with self.platform.uow() as uow:
            found = uow.bookings.get(booking_id or 0)
            return found.session_id if found is not None else 0


    def _holds_hot_slot(self, patient_id: int) -> bool:
        with self.platform.uow() as uow:
            return uow.db.execute(
                sa.select(sa.func.count()).select_from(t.bookings)
                .where(t.bookings.c.patient_id == patient_id,
                       t.bookings.c.session_id.in_(self.hot_sessions),
                       t.bookings.c.status.in_(ACTIVE))).scalar_one() > 0


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


    # -- what the hospital's side does (hospital.py) ---------------------------------------

    def _wake(self) -> None:
        raise NotImplementedError

    def _dispatch_offers(self) -> None:
        raise NotImplementedError
