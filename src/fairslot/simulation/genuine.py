"""Genuine patients online (the elderly at the desk are the hospital's side, hospital.py;
patients who watch for freed slots use ``Actions._look``)."""

from __future__ import annotations

from fairslot.simulation.actions import Actions
from fairslot.simulation.world import Person, Process

__all__ = ["GenuinePatients"]


class GenuinePatients(Actions):
    """A genuine patient: one account, one address, one device; arrives, thinks, books
    (first come, first served) or enters the draw, and pays. A kiosk user (``kiosk_users``)
    does it at one of the lobby's kiosks, whose card reader fills the booking screen in."""

    def genuine_fcfs(self, person: Person) -> Process:
        rng = person.agent.rng
        yield 0.0
        person.agent.effort_s += 20.0  # log in and find the doctor
        yield 20.0
        for _ in range(int(self.sc.knob("genuine", "retries", 3)) + 1):
            for sid in person.wants:
                think = rng.uniform(8, 25)
                if person.patient_id in self.kiosk_users:
                    think = 1.6  # the kiosk's card reader fills the screen in
                outcome = yield from self._book(person, sid, skip_screens=False,
                                                think=think, rate=1e6)
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
