"""The rows the front door writes to the event log for monitoring: one per request
(``access``), one per guard decision (``guard.*``) and one per booking screen shown
(``screen.booking``).

The web layer (``fairslot.web.access_log`` and the booking screens) and the simulator's
front door (``fairslot.simulation.front_door``) both build their rows here, so what the
monitor reads from a simulated run is what it reads from a server: the same kinds, columns
and detail keys, written through ``Platform.write_events`` to the log and the commit hooks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fairslot.guard.events import GuardEvent

__all__ = ["access_row", "guard_row", "screen_row"]


def access_row(at: dt.datetime, *, account_id: int | str | None, ip: str | None,
               device_id: str | None, method: str, path: str, status: int,
               user_agent: str = "") -> dict[str, Any]:
    """One request as the access log stores it."""
    return {"at": at, "kind": "access", "account_id": account_id, "ip": ip,
            "device_id": device_id, "patient_id": None, "session_id": None,
            "booking_id": None,
            "detail": {"method": method, "path": path[:300], "status": status,
                       "user_agent": user_agent[:300]}}


def guard_row(event: GuardEvent) -> dict[str, Any]:
    """One guard decision (allows aggregated by the guard) as the event log stores it."""
    account = int(event.account_id) if event.account_id and event.account_id.isdigit() \
        else None
    return {
        "at": event.at, "kind": f"guard.{event.decision}", "account_id": account,
        "ip": event.client_ip, "device_id": event.device_id, "patient_id": None,
        "session_id": None, "booking_id": None,
        "detail": {"reason": event.reason, "group": event.group, "level": event.level,
                   "key": event.key, "key_hash": event.key_hash, "limit": event.limit,
                   "risk": event.risk, "degraded": event.degraded, "count": event.count},
    }


def screen_row(at: dt.datetime, *, account_id: int | None, ip: str | None,
               device_id: str | None, session_id: int, release_at: dt.datetime,
               patient_id: int | None = None) -> dict[str, Any]:
    """A booking screen shown (its action token issued): when, to whom, for which session
    (and patient, when the screen is for one) and when that session's slots open. The
    monitor's ``early_tokens`` scenario reads it."""
    return {"at": at, "kind": "screen.booking", "account_id": account_id, "ip": ip,
            "device_id": device_id, "patient_id": patient_id, "session_id": session_id,
            "booking_id": None, "detail": {"release_at": release_at.isoformat()}}
