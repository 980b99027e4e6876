"""The discrete-event simulation: one hospital release, one policy, in virtual time, over the
real services on a throw-away database.

Agents are generator functions that yield how long they wait before their next step; the
event loop keeps them in a heap ordered by virtual time and moves the injected clock to each
event before resuming its agent. Every step an agent takes goes through ``Simulation.call``,
which asks the real request guard (``fairslot.guard.Guard.decide``) first and then calls the
real service (accounts, booking, release). The rules — the draw, the waitlist, quotas, credit,
identity checks, rate limits, tokens, proof of work — are never re-implemented here; the
simulator only decides what each agent tries and when, and reads the outcome back from the
database.

The one shortcut: accounts are inserted directly with one precomputed password hash, because
Argon2 costs about 0.2 s per account; adding patients (the real-name check), entering,
booking, paying, cancelling and checking in all run through the services.

Time and randomness are injected everywhere, the guard included: the platform and the guard
get the simulation's ``FixedClock`` and a ``SeededRandomness``, so a limit of 20 a minute
means 20 per virtual minute and the same seed gives the same run. Nothing is patched.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

from fairslot.bootstrap import bootstrap
from fairslot.guard import Guard, MemoryLedger
from fairslot.randomness import SeededRandomness
from fairslot.services import booking
from fairslot.simulation import attackers
from fairslot.simulation.front_door import FrontDoor
from fairslot.simulation.genuine import GenuinePatients
from fairslot.simulation.hospital import Hospital
from fairslot.simulation.outcome import Outcome, RunResult
from fairslot.simulation.scalpers import Scalpers
from fairslot.simulation.world import Agent, PermissiveVerifier, Person, Process
from fairslot.storage.migrate import upgrade

__all__ = ["Agent", "Person", "Process", "RunResult", "Simulation"]


class Simulation(Hospital, GenuinePatients, Scalpers, Outcome):
    """One policy over one scenario. ``run()`` builds the world and plays it out.

    The parts: the world and its virtual time (world.py), the steps every agent takes
    through the front door (actions.py), genuine patients (genuine.py), the ring's agents
    (scalpers.py, and the rest of the catalogue in attackers.py), the hospital's side
    (hospital.py) and the outcome (outcome.py); this class only runs it."""

    # -- the run -------------------------------------------------------------------------

    def run(self) -> RunResult:
        started = time.perf_counter()
        with contextlib.ExitStack() as stack:
            settings = self._settings("sqlite://")
            self.platform = bootstrap(settings, clock=self.clock, engine=self._engine(),
                                      random=SeededRandomness(self.rng.getrandbits(64)))
            stack.callback(self.platform.engine.dispose)
            self.platform.on_commit.extend(self.commit_hooks)
            upgrade(self.platform.engine)
            if not self.defences["realname"]:
                self.platform.verifier = PermissiveVerifier()
            self.runner = stack.enter_context(asyncio.Runner())
            # What a server's web layer logs (requests, guard decisions, booking screens),
            # written to the event log and the commit hooks as a server writes it.
            self.front_door = FrontDoor(self.platform, seed=self.seed)
            stack.callback(self.front_door.flush)
            self.guard = None
            if self.defences["guard"]:
                # The guard runs in the simulation's virtual time and seeded randomness,
                # injected like everything else; spent tokens are kept in memory.
                self.guard = Guard(settings, clock=self.clock,
                                   randomness=SeededRandomness(self.rng.getrandbits(64)),
                                   ledger=MemoryLedger(self.clock),
                                   sink=self.front_door.guard_events)
                for group, level in self.sc.section("guard").get("levels", {}).items():
                    self.runner.run(self.guard.set_level(group, level))
            self._play()
        return RunResult(self.policy, self._outcome_cache, self.timeline,
                         time.perf_counter() - started, dict(self.defences), self._gains_cache)

    def _play(self) -> None:
        self._catalog(self.platform)
        self._populate()
        self._history()
        self.attackers = attackers.Attackers(self)
        self.attackers.populate()
        sc, rng = self.sc, self.rng
        self.clock.set(self.release_at - dt.timedelta(days=2))
        window = self.platform.settings.draw_window_hours * 3600.0
        last_start = max(e for _, e in self.session_times.values())
        end_s = (last_start - self.release_at).total_seconds() + 3 * 3600
        first_start = min(s for s, _ in self.session_times.values())
        day_s = (first_start - self.release_at).total_seconds()
        # Scheduler ticks: dense around the release and the payment deadlines, hourly later.
        ticks = ([-window + 1.0, -3600.0] + [float(k) for k in range(0, 600, 30)]
                 + [600.0 * k for k in range(1, 48)]
                 + [28800.0 + 3600 * k for k in range(int((end_s - 28800) // 3600) + 1)])
        self.spawn(ticks[0], self.scheduler(sorted(set(ticks))))
        samples = sorted({-60.0, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200,
                          4 * 3600, 8 * 3600, 86400, 3 * 86400, day_s - 13.5 * 3600,
                          day_s - 3600, end_s - 60})
        self.spawn(-3600.0, self.sampler(samples))
        arrive_mean = float(sc.knob("genuine", "arrival_mean_s", 300.0))
        t1_share = float(sc.knob("ring", "t1_share", 0.5))
        ring_split = int(len(self.ring) * t1_share)
        t1, t2 = self.ring[:ring_split] + self.farm, self.ring[ring_split:]
        if self.draw:
            for person in self.genuine:
                self.spawn(-window + 5.0 + rng.random() * (window - 3700.0),
                           self.genuine_draw(person))
            for group in (t1, t2, self.clients, self.crowd):
                if group:
                    self.spawn(-3000.0 + rng.random() * 600, self.bot_draw(group, 5e6))
            # The desk is open 08:00-17:00 on the window's first day; each elderly patient
            # comes once, at a random moment of it.
            share = float(sc.knob("genuine", "elderly_desk_entry", 1.0))
            comers = [e for e in self.elderly if rng.random() < share]
            comers.sort(key=lambda _: rng.random())
            if comers:
                self.spawn(-window + 120.0, self.desk_entries(comers))
        else:
            for person in self.genuine:
                self.spawn(rng.expovariate(1 / arrive_mean), self.genuine_fcfs(person))
            for group, skip, step in ((t1, True, 0.02), (t2, False, 0.3),
                                      (self.clients, False, 0.02)):
                for k in range(int(sc.knob("t1", "bots", 2))):
                    part = group[k::int(sc.knob("t1", "bots", 2))]
                    if part:
                        self.spawn(0.0, self.bot_fcfs(part, skip_screens=skip, step=step,
                                                      rate=5e6, multi=group is not self.clients))
            for person in self.crowd:  # T8: by hand, but at the exact release instant
                self.spawn(rng.uniform(0, 5), self.bot_fcfs([person], skip_screens=False,
                                                            step=15.0, rate=1e6))
        # Issue 18's speed agents: under a draw the early bots and re-holders enter the
        # window like the ring's other bots, and try their trick at the release anyway.
        if self.draw:
            for group in (self.early, self.reholders):
                if group:
                    self.spawn(-3000.0 + rng.random() * 600, self.bot_draw(group, 5e6))
        else:
            for person in self.reholders:
                self.spawn(0.0, self.reholder_start(person))
        if self.early:
            self.spawn(-12.0, self.early_tokens(self.early))
        if self.reholders:
            self.spawn(day_s - 14 * 3600, self.reholders_sell())
        if int(sc.knob("late", "capacity", 0)) > 0:
            self.spawn(float(sc.knob("late", "added_after_s", 3600.0)), self.late_clinic())
        self.attackers.start(window)
        self.spawn(0.0, self.launderer())
        self.spawn(day_s - 13.5 * 3600, self.unsold())
        self.spawn(day_s - 3 * 3600, self.desk())
        for sid, (starts, _) in self.session_times.items():
            self.spawn((starts - self.release_at).total_seconds() - 1800, self.check_ins(sid))
        self._loop(end_s)
        # A poller asks once every poll_s from the release to the visit: the looks the run
        # played only when something changed are its cost in requests all the same.
        self.costs.requests += len(self.pollers) * int(
            end_s / float(sc.knob("poller", "poll_s", 1.0)))
        self.clock.set(self.release_at + dt.timedelta(seconds=end_s + 86400))
        self.platform.run_job(booking.record_no_shows)
        self._outcome_cache = self._outcome()
        self._gains_cache = self._gains(self.clock.now())
