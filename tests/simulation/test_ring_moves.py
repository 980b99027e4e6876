"""The simulator's ring-moves scenario: a ring that took hospital A's hot slots moves to
hospital B. With the consortium, A's published ring is refused at B (its new phones do not
help: its identities are listed) and B's genuine patients get the slots; without it, the
ring takes B's slots as it took A's."""

from __future__ import annotations

import pathlib

from fairslot.simulation.ring_moves import render_ring_moves, run_ring_moves

SMALL = {"ring_accounts": 2, "genuine": 16, "days_at_a": 2, "days_at_b": 2, "capacity": 3}


def test_a_ring_published_at_a_gets_nothing_at_b_and_takes_everything_without_the_list(
        tmp_path: pathlib.Path) -> None:
    off = run_ring_moves(3, consortium=False, workdir=tmp_path, **SMALL)
    on = run_ring_moves(3, consortium=True, workdir=tmp_path, **SMALL)
    for r in (off, on):  # the same story at A either way: the ring outruns the patients
        assert r.at_a.ring_bookings == r.at_a.slots == 12 and r.at_a.genuine_bookings == 0
        assert r.published == 2 * 5 + 2 + 2  # identities, phones, payers
    assert off.at_b.ring_bookings == off.at_b.slots and off.at_b.genuine_bookings == 0
    assert on.at_b.ring_bookings == 0 and on.at_b.ring_paid == 0
    assert on.at_b.ring_refusals == {"consortium_refused": 10}  # each identity, at linking
    assert on.at_b.genuine_bookings == on.at_b.genuine_wanting > 0
    assert on.at_b.genuine_refused_by_list == 0
    table = render_ring_moves([off, on], 1.0)
    assert "B, consortium on" in table and "consortium_refused 10" in table
