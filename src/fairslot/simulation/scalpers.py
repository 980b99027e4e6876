"""Scalper agents: the ring's bots, the launderer, the unsold holds and the speed agents."""

from __future__ import annotations

import contextlib
import functools
import random

from fairslot.domain.errors import FairslotError
from fairslot.guard import RouteGroup
from fairslot.simulation.actions import Actions
from fairslot.simulation.metrics import (
    BUYER,
    SCALPER,
)
from fairslot.simulation.world import BOOK, Agent, Person, Process

__all__ = ["Scalpers"]


class Scalpers(Actions):
    """The ring's own agents: its bots (T1/T2/T5/T8/T9 at the release or in the draw
    window), its launderer (T4), its cancelling of unsold holds, and issue 18's speed
    agents (early tokens, free re-holders). The rest of the attack catalogue's agents are
    in attackers.py."""

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
                self.screen_token(agent, BOOK, str(session_id))
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


    # -- issue 18: the speed agents -------------------------------------------------------

    def early_tokens(self, people: list[Person]) -> Process:
        """API bots that open each identity's booking screen 12 s before the release (the
        action token is then old enough) and fire 30 ms after it."""
        tokens: dict[int, tuple[int, str]] = {}
        for person in people:
            sid = person.wants[0]
            with contextlib.suppress(FairslotError):
                tokens[person.patient_id] = (sid, self.screen_token(person.agent, BOOK,
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
                    patient_id=person.patient_id, need_token=BOOK, target=str(sid),
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
