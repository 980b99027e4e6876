"""Fair release: request windows, the verifiable draw, the ranked waitlist and leftovers.

A *round* gathers the draw-policy sessions of one department released at one moment. Its
window opens ``draw_window_hours`` before the release time; then fairslot draws a 32-byte
seed and signs the round's *opening* (the seed's SHA-256, the capacities, and the drand
beacon round fixed in advance). Patients enter (one entry per patient, up to three ranked
sessions of the round) until the release time, and each entry, change and withdrawal
returns a signed receipt; the moment of entry does not matter. At the release time the
entry list is frozen (eligibility judged as of the close), rooted, signed and logged; once
the chain publishes the stated beacon, the draw runs (``fairslot.domain.draw``), winners
get held bookings and the seed is revealed, in one transaction: a draw interrupted
half-way has not happened at all, and the next scheduler tick runs it again. The format is
``docs/draw.md``. Every losing entry is on the waitlist in draw order; a slot freed later
goes to the next in line (``fairslot.services.waitlist``), never back to an open pool.

``entries`` is entering; ``rounds`` is opening, drawing and publishing; ``hot`` finds the
fcfs doctors people race for."""

from fairslot.services.release.entries import (
    EntryView,
    enter,
    enter_at_desk,
    entry_by_key,
    entry_proof,
    entry_receipt,
    my_entries,
    withdraw,
)
from fairslot.services.release.hot import propose_draw_policy
from fairslot.services.release.rounds import (
    DrawStage,
    RoundSession,
    RoundView,
    check_enterable_now,
    checkpoint_of,
    draw_due_rounds,
    draw_round,
    export_round_document,
    freeze_round,
    frozen_entries,
    inclusion_proof,
    log_document,
    open_due_rounds,
    open_rounds,
    round_view,
)

__all__ = [
    "DrawStage",
    "EntryView",
    "RoundSession",
    "RoundView",
    "check_enterable_now",
    "checkpoint_of",
    "draw_due_rounds",
    "draw_round",
    "enter",
    "enter_at_desk",
    "entry_by_key",
    "entry_proof",
    "entry_receipt",
    "export_round_document",
    "freeze_round",
    "frozen_entries",
    "inclusion_proof",
    "log_document",
    "my_entries",
    "open_due_rounds",
    "open_rounds",
    "propose_draw_policy",
    "round_view",
    "withdraw",
]
