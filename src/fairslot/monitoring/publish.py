"""From the platform's event log to the monitor's stream.

The platform appends events to its log inside each unit of work (``uow.events.append``) and
writes the access log and the guard's decisions in batches (``Platform.write_events``).
``PlatformPublisher`` is the hook both call once those rows are committed: it turns each
row the monitor reads into a ``MonitorEvent`` (``to_monitor_event``) and hands the batch to
the stream, without blocking and without ever raising into the request that committed.

A row's fields are the log's columns (``account_id``, ``patient_id``, ``session_id``,
``booking_id``, ``ip``, ``device_id``) and its ``detail``; the services put in ``detail``
the few things the scenarios need and the columns lack: the department and doctor of a
booking or entry, when its slots were released (and, for a booking, when the slot it took
last re-opened: ``freed_at``, published as ``freed_ts``), the payer's blind index, the
channel, the seconds since the booking screen or the waitlist offer. Rows the monitor has
no scenario for (an operator's change of a policy, a beacon) are left out.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from fairslot.monitoring.events import KINDS, Channel, EventIds, MonitorEvent
from fairslot.monitoring.stream import EventPublisher

__all__ = ["PlatformPublisher", "to_monitor_event"]

_log = logging.getLogger("fairslot.monitoring.publish")

# The platform's booking channels, as the monitor names them (a desk books at the window).
_CHANNELS: Mapping[str, str] = {
    "window": Channel.DESK.value, "desk": Channel.DESK.value, "kiosk": Channel.KIOSK.value,
    "call_centre": Channel.CALL_CENTRE.value, "draw": Channel.DRAW.value,
    "waitlist": Channel.WAITLIST.value, "web": Channel.WEB.value, "app": Channel.APP.value,
}

# Detail keys that become top-level fields of the event rather than staying in ``detail``.
_LIFTED = ("channel", "department", "doctor", "payer_index", "phone_index", "release_at")


class _Row(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def at(self) -> dt.datetime: ...

    @property
    def fields(self) -> dict[str, Any]: ...


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return dt.datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def to_monitor_event(kind: str, at: dt.datetime, fields: Mapping[str, Any], event_id: str,
                     ) -> MonitorEvent | None:
    """The monitor's event for one row of the platform's log, or None for a kind no
    scenario reads. ``event_id`` stays with the event through every redelivery."""
    if kind not in KINDS:
        return None
    detail = dict(fields.get("detail") or {})
    lifted = {key: detail.pop(key, None) for key in _LIFTED}
    if "freed_at" in detail:
        # Seconds since the epoch, as every time the scenarios compute with.
        freed = _timestamp(detail.pop("freed_at"))
        if freed is not None:
            detail["freed_ts"] = freed
    channel = _CHANNELS.get(str(lifted["channel"] or "web"), Channel.WEB.value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return MonitorEvent(
        id=event_id, kind=kind, ts=at.timestamp(),
        account=_text(fields.get("account_id")), patient=_text(fields.get("patient_id")),
        session=_text(fields.get("session_id")), doctor=_text(lifted["doctor"]),
        department=_text(lifted["department"]), booking=_text(fields.get("booking_id")),
        ip=_text(fields.get("ip")), device=_text(fields.get("device_id")),
        payer=_text(lifted["payer_index"]), phone=_text(lifted["phone_index"]),
        channel=channel, release_ts=_timestamp(lifted["release_at"]), detail=detail)


class PlatformPublisher:
    """The commit hook: committed rows in, monitor events out to ``publisher``."""

    def __init__(self, publisher: EventPublisher, ids: EventIds | None = None) -> None:
        self.publisher = publisher
        self._ids = ids or EventIds()
        self.published = 0

    def __call__(self, rows: Sequence[_Row]) -> None:
        self.publish_rows((row.kind, row.at, row.fields) for row in rows)

    def publish_log_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows as the access log writes them (``kind`` and ``at`` among the columns)."""
        self.publish_rows((row["kind"], row["at"], row) for row in rows)

    def publish_rows(self, rows: Iterable[tuple[str, dt.datetime, Mapping[str, Any]]]) -> None:
        try:
            events = [event for kind, at, fields in rows
                      if (event := to_monitor_event(kind, at, fields, self._ids()))
                      is not None]
            if events:
                self.publisher.publish(events)
                self.published += len(events)
        except Exception:  # monitoring must never fail a request that has committed
            _log.exception("monitor events could not be published")
