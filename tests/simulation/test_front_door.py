"""The simulator's front door: a simulated run publishes what a server publishes for the
same requests (each request with the address and device the guard saw, the guard's own
decisions, booking screens, registration attempts, the age of each action's screen), so
the monitor reads a simulation as it reads a server."""

from __future__ import annotations

import collections

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.publish import PlatformPublisher
from fairslot.monitoring.stream import InProcessStream
from fairslot.simulation.engine import Simulation
from fairslot.simulation.scenario import load_scenario


def _published(policy: str) -> tuple[Simulation, list[MonitorEvent]]:
    stream = InProcessStream(capacity=1_000_000)
    sim = Simulation(load_scenario("tiny"), policy, 3)
    sim.commit_hooks.append(PlatformPublisher(stream))
    sim.run()
    return sim, stream.read(1_000_000, 0.01).events


def test_a_guarded_run_publishes_requests_guard_decisions_and_screen_ages() -> None:
    sim, events = _published("fairslot")
    kinds = collections.Counter(e.kind for e in events)
    assert kinds["access"] > 0 and kinds["guard.allow"] + kinds["guard.deny"] > 0
    access = [e for e in events if e.kind == "access"]
    # A genuine patient's requests come from their home address and device.
    for person in sim.genuine:
        mine = [e for e in access if e.account == str(person.agent.account.id)]
        assert mine, person
        assert {(e.ip, e.device) for e in mine} == {(person.agent.ips[0],
                                                     person.agent.device)}
    # The ring's software rotates through its proxies, request by request, and its actions
    # carry the address the guard saw for that request.
    ring = {str(p.agent.account.id) for p in sim.ring}
    ring_ips = {e.ip for e in access if e.account in ring}
    assert len(ring_ips) > 1 and ring_ips <= set(sim.proxies)
    entries = [e for e in events if e.kind == "entry.created" and e.account in ring]
    assert entries and {e.ip for e in entries} <= set(sim.proxies)
    # A patient pays through the payment screen's action token; the guard measured its
    # age, never under the token's minimum age.
    genuine = {str(p.agent.account.id) for p in sim.genuine}
    paid = [e for e in events if e.kind == "booking.paid" and e.account in genuine]
    assert paid and all(e.detail["screen_age_s"]
                        >= sim.platform.settings.guard_token_min_age_seconds for e in paid)
    # The farm's made-up identities: each attempt is a refused request and a refused
    # identity, from the account that tried it (none of them a genuine patient's).
    rejected = [e for e in events if e.kind == "identity.rejected"]
    assert len({e.account for e in rejected}) == int(sim.sc.knob("t3", "accounts", 0))
    assert not {e.account for e in rejected} & genuine
    refused = [e for e in access if e.detail["path"] == "/api/v1/me/patients"
               and e.detail["status"] >= 400]
    assert {e.account for e in refused} == {e.account for e in rejected}


def test_an_unguarded_run_publishes_booking_screens_with_their_release() -> None:
    sim, events = _published("fcfs")
    screens = [e for e in events if e.kind == "screen.booking"]
    assert screens
    # Every hot session of the scenario opens at its release instant.
    assert {e.release_ts for e in screens} == {sim.release_at.timestamp()}
    # No guard, no guard decisions and no token ages: only what such a server knows.
    assert not [e for e in events if e.kind.startswith("guard.")]
    assert not [e for e in events if "screen_age_s" in e.detail]
