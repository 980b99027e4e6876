"""Hot doctors of an fcfs hospital: a doctor whose session's slots all went within
``hot_sellout_minutes`` of its release is one people race for. The scheduler marks such a
doctor hot and records a ``doctor.draw_proposed`` event, the operator's prompt to move the
doctor to the draw policy (``catalog.set_release_policy``). Until the operator decides,
every release of a hot fcfs doctor opens with a short request window and a draw
(``RoundKind.OPENING``, opened by ``open_due_rounds``), so the race is gone at once."""

from __future__ import annotations

import datetime as dt

from fairslot.services.deps import Deps, Units

__all__ = ["propose_draw_policy"]

LOOKBACK = dt.timedelta(days=14)
"""How far back a sold-out release still makes a doctor hot."""


def propose_draw_policy(units: Units, deps: Deps) -> int:
    """Mark every fcfs doctor whose recent release sold out within the hot time, and
    propose the draw policy for them; returns how many doctors were proposed."""
    now = deps.clock.now()
    within = dt.timedelta(minutes=deps.settings.hot_sellout_minutes)
    proposed: set[int] = set()
    with units() as uow:
        for session_id, doctor_id, release_at, earliest, last in uow.schedule.fcfs_sellouts(
                now - LOOKBACK, now):
            # The race starts at the release; for a session nobody could book then (one
            # scheduled after its release time) or nobody wanted then, at its first booking.
            start = release_at if earliest - release_at <= within else earliest
            if doctor_id in proposed or last - start > within:
                continue
            doctor = uow.schedule.doctor(doctor_id)
            if doctor is None or doctor.hot:
                continue
            doctor.hot = True
            proposed.add(doctor_id)
            uow.events.append("doctor.draw_proposed", now, session_id=session_id, detail={
                "doctor": doctor_id, "policy": "draw",
                "sold_out_s": round((last - start).total_seconds(), 3),
                "why": f"every slot went within {deps.settings.hot_sellout_minutes} min of "
                       "the release; its releases now open with a request window"})
        uow.commit()
    return len(proposed)
