"""The events the monitor reads: one flat record per thing that happened on the platform.

Everything the detectors need is in the event itself, so a monitor never queries the
database on the hot path. Identifiers are the platform's internal ids as text (accounts,
patients, sessions, bookings), blind indexes (payers, phones) or network facts (IP address,
device id); never an ID number, a name or a phone number in clear. The ``detail`` of each
kind carries the few extra figures a scenario needs (see ``KINDS``).

Times are seconds since the epoch (``ts``), which is UTC by definition and what the sliding
windows compute with; ``at`` gives the same moment as an aware datetime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import ipaddress
import itertools
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "KINDS",
    "Channel",
    "EventIds",
    "MonitorEvent",
    "decode",
    "encode",
    "ip_prefix",
    "make_event",
]


class Channel(enum.StrEnum):
    """Where an action came from. The first five are the platform's own: staff at a desk, a
    hospital kiosk, the call centre, and the draw and waitlist acting for a patient."""

    DESK = "desk"
    KIOSK = "kiosk"
    CALL_CENTRE = "call_centre"
    DRAW = "draw"
    WAITLIST = "waitlist"
    WEB = "web"
    APP = "app"


# What each kind means and which detail keys it carries. Publishers fill the top-level
# fields they know; the scenarios read only these keys.
KINDS: Mapping[str, str] = {
    "access": "one HTTP request: detail method, path, status",
    "guard.allow": "aggregated guard allows: detail group, count",
    "guard.challenge": "the guard asked for proof of work: detail reason, group, key, key_hash",
    "guard.deny": "the guard refused: detail reason, group, key, key_hash, limit",
    "account.registered": "a new patient account (phone = blind index of its phone)",
    "auth.login": "a log-in",
    "auth.login_failed": "a failed log-in",
    "identity.rejected": "a failed real-name check or malformed identity: detail reason "
                         "(invalid_id_number, invalid_name, identity_not_verified), "
                         "tried (blind index of the ID number tried, if it parsed), "
                         "name_tried (blind index of the name tried), "
                         "name_plausible (bool)",
    "patient.linked": "an identity linked to an account: detail id_valid, name_plausible",
    "patient.unlinked": "an identity unlinked from an account",
    "screen.booking": "a booking screen (an action token) was issued; release_ts is the "
                      "session's release",
    "entry.created": "a draw entry: session = first choice, release_ts = the window's opening",
    "entry.changed": "a draw entry's choices changed",
    "entry.withdrawn": "a draw entry withdrawn",
    "booking.created": "a booking held: release_ts = when its session's slots were "
                       "released; detail screen_age_s (seconds since its booking screen, "
                       "if one was issued), freed_ts (when the slot it took last re-opened "
                       "to the public: a booking cancelled, a hold or an offer lapsing; "
                       "absent for a slot free since its release)",
    "booking.paid": "a booking paid: payer = blind index; detail screen_age_s (seconds "
                    "since its payment screen, if one was issued), since_offer_s for a "
                    "waitlist offer (seconds from the offer to the payment)",
    "booking.cancelled": "a booking cancelled",
    "booking.expired": "an unpaid hold expired",
    "booking.checked_in": "a booking checked in at the desk",
    "checkin.identity_mismatch": "at check-in, the person presented is not the booking's "
                                 "patient",
    "booking.no_show": "a paid booking not attended",
    "desk.action": "a registration-desk action (account = the desk account): detail action "
                   "(book, enter, check_in, pay, cancel, lookup), id_source (card, typed), "
                   "reason_given, method (payment), how (a cancel: desk_own, "
                   "patient_present, approved_by:<account>), refused (the code, if refused)",
    "waitlist.offered": "a freed slot offered to the next waitlisted entry",
    "round.opened": "a draw round's window opened",
    "round.drawn": "a draw round was drawn",
    "consortium.matched": "the consortium's shared list named the request's identity, phone, "
                          "payer or device: detail point (registration, identity_link, "
                          "draw_entry, booking, payment), outcome (refuse, hold, lower_quota, "
                          "ignore), entries (issuer/number)",
    "consortium.appealed": "a patient appealed another hospital's entry: detail entry, status",
}


@dataclasses.dataclass(frozen=True, slots=True)
class MonitorEvent:
    """One event. ``id`` is unique per event and stays the same when the stream delivers it
    again, which is what makes every window and alert idempotent."""

    id: str
    kind: str
    ts: float
    account: str | None = None
    patient: str | None = None
    """The platform's patient id (or another pseudonym), never the ID number."""
    session: str | None = None
    doctor: str | None = None
    department: str | None = None
    booking: str | None = None
    ip: str | None = None
    device: str | None = None
    payer: str | None = None
    """Blind index of the payment account."""
    phone: str | None = None
    """Blind index of the account's mobile number."""
    channel: str = Channel.WEB.value
    release_ts: float | None = None
    """When the session (or the draw window) opened, if it matters. When the slot a booking
    took re-opened later (a cancellation, a lapsed hold) is its detail's ``freed_ts``."""
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.ts, dt.UTC)

    def summary(self) -> dict[str, Any]:
        """The event as evidence: its non-empty fields, time as ISO 8601 UTC."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind,
                               "at": self.at.isoformat(timespec="milliseconds")}
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["channel"] = self.channel
        if self.release_ts is not None:
            out["after_release_s"] = round(self.ts - self.release_ts, 3)
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


_OPTIONAL = ("account", "patient", "session", "doctor", "department", "booking", "ip",
             "device", "payer", "phone")


class EventIds:
    """Event ids: a random per-process prefix and a counter. Unique without coordination and
    far cheaper than a UUID per event; a publisher that has its own ids (a database row's)
    may use those instead."""

    def __init__(self, prefix: str | None = None) -> None:
        self._prefix = prefix if prefix is not None else os.urandom(6).hex()
        self._counter: Iterator[int] = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


_default_ids = EventIds()


def make_event(kind: str, at: dt.datetime, *, id: str | None = None,
               channel: Channel | str = Channel.WEB, release_at: dt.datetime | None = None,
               detail: Mapping[str, Any] | None = None, **fields: str | int | None,
               ) -> MonitorEvent:
    """Build an event from the platform's values: an aware ``at``, integer ids allowed
    (they become text), an optional ``release_at``. Unknown kinds and naive datetimes are
    programming errors and raise ``ValueError``."""
    if kind not in KINDS:
        raise ValueError(f"unknown monitor event kind {kind!r}")
    if at.tzinfo is None or (release_at is not None and release_at.tzinfo is None):
        raise ValueError("monitor events need timezone-aware times")
    unknown = set(fields) - set(_OPTIONAL)
    if unknown:
        raise ValueError(f"unknown monitor event field(s): {', '.join(sorted(unknown))}")
    values = {name: None if value is None else str(value) for name, value in fields.items()}
    return MonitorEvent(
        id=id or _default_ids(), kind=kind, ts=at.timestamp(),
        channel=Channel(channel).value,
        release_ts=None if release_at is None else release_at.timestamp(),
        detail=dict(detail or {}), **values)


_VERSION = 1


def encode(event: MonitorEvent) -> str:
    """Compact JSON (a positional array) for the stream."""
    return json.dumps(
        [_VERSION, event.id, event.kind, event.ts, event.account, event.patient,
         event.session, event.doctor, event.department, event.booking, event.ip,
         event.device, event.payer, event.phone, event.channel, event.release_ts,
         event.detail or None],
        ensure_ascii=False, separators=(",", ":"))


def decode(data: str | bytes) -> MonitorEvent:
    """The inverse of ``encode``; ``ValueError`` on anything else."""
    try:
        row = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError("not a monitor event") from exc
    if not isinstance(row, list) or len(row) != 17 or row[0] != _VERSION:
        raise ValueError("not a monitor event of a known version")
    (_v, id_, kind, ts, account, patient, session, doctor, department, booking, ip, device,
     payer, phone, channel, release_ts, detail) = row
    return MonitorEvent(id_, kind, float(ts), account, patient, session, doctor, department,
                        booking, ip, device, payer, phone, channel,
                        None if release_ts is None else float(release_ts), detail or {})


@functools.lru_cache(maxsize=65_536)
def ip_prefix(ip: str) -> str | None:
    """The /24 of an IPv4 address or the /48 of an IPv6 one (what one site or one carrier
    NAT usually holds); None for something that is not an address."""
    # Most requests come from IPv4 addresses written plainly: cut those without parsing (a
    # tenth of the cost), and leave anything else to the ipaddress module.
    if _IPV4.fullmatch(ip):
        return ip.rsplit(".", 1)[0] + ".0/24"
    return _parsed_prefix(ip)


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def _parsed_prefix(ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
