"""The jobs that run on the clock, in the order a scheduler pass runs them. The server's
scheduler (``fairslot.scheduler``) runs them every few seconds; the demo's history runs
them at every moment its moving clock stops at, as the scheduler would have."""

from __future__ import annotations

from collections.abc import Callable

from fairslot.services import booking, notifications, outbox, release
from fairslot.services.deps import Deps, Units

__all__ = ["JOBS"]

JOBS: list[tuple[str, Callable[[Units, Deps], int]]] = [
    ("propose_draw_policy", release.propose_draw_policy),
    ("open_due_rounds", release.open_due_rounds),
    ("draw_due_rounds", release.draw_due_rounds),
    ("expire_overdue", booking.expire_overdue),
    ("record_no_shows", booking.record_no_shows),
    ("send_reminders", notifications.send_reminders),
    ("outbox", outbox.run_due),
]
