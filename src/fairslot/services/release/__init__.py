"""Fair release: request windows, the verifiable draw, the ranked waitlist and leftovers.

A *round* gathers the draw-policy sessions of one department released at one moment. Its
window opens ``draw_window_hours`` before the release time; then fairslot draws a 32-byte
seed and publishes its SHA-256. Patients enter (one entry per patient, up to three ranked
sessions of the round) until the release time; the moment of entry does not matter. At the
release time the entry list is frozen, its digest published, the draw run
(``fairslot.domain.draw``), winners given held bookings and the seed revealed, all in one
transaction: a draw interrupted half-way has not happened at all, and the next scheduler
tick runs it again. Every losing entry is on the waitlist in draw order; a slot freed later
goes to the next in line (``fairslot.services.waitlist``), never back to an open pool.

``entries`` is entering; ``rounds`` is opening, drawing and publishing; ``hot`` finds the
fcfs doctors people race for."""

from fairslot.services.release.entries import (
    EntryView,
    enter,
    enter_at_desk,
    entry_by_key,
    my_entries,
    withdraw,
)
from fairslot.services.release.hot import propose_draw_policy
from fairslot.services.release.rounds import (
    RoundSession,
    RoundView,
    draw_due_rounds,
    draw_round,
    export_round_document,
    frozen_entries,
    open_due_rounds,
    open_rounds,
    round_view,
    set_beacon,
)

__all__ = [
    "EntryView",
    "RoundSession",
    "RoundView",
    "draw_due_rounds",
    "draw_round",
    "enter",
    "enter_at_desk",
    "entry_by_key",
    "export_round_document",
    "frozen_entries",
    "my_entries",
    "open_due_rounds",
    "open_rounds",
    "propose_draw_policy",
    "round_view",
    "set_beacon",
    "withdraw",
]
