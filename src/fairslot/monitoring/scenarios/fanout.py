"""Fan-out scenarios: one IP, device, account, phone or payer acting for more distinct
patients than a household has. A family books for its own few people; a ring books for its
customers, and each of them is a new patient behind the same IP, device or payer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fairslot.monitoring.events import MonitorEvent
from fairslot.monitoring.scenarios.base import (
    Entity,
    Finding,
    Platform,
    Scenario,
    counted,
    graded,
    span,
)
from fairslot.monitoring.windows import ADD, Op, Window

__all__ = ["Fanout"]

_ACTIONS = frozenset({"booking.created", "entry.created", "patient.linked"})
_TACTICS = {"ip": ("T7",), "device": ("T7", "T9"), "account": ("T9",),
            "phone": ("T3",), "payer": ("T6",)}


class Fanout(Scenario):
    """Distinct patients per ``entity_type`` within ``seconds``. The payer version
    (``payer_fanout``) reads payments; the others read bookings, draw entries and identity
    links.

    An address or a device can be shared by many people: a carrier's NAT or a campus puts
    hundreds behind one IP, a community clinic books on one terminal for its patients, each
    logged in with their own account. So with ``per_account`` set (IP and device), the
    patients must also outnumber the distinct accounts behind them by that factor: a ring
    books many identities from a few accounts, shared addresses carry an account or two per
    patient.

    A staff channel (desk, kiosk, call centre) acts for many patients by its nature, so the
    per-account, per-device and per-address versions leave its actions out; the payer version
    counts them: who pays is judged whatever the channel (a desk's cash is each patient's
    own), so a wallet paying a kiosk clerk's release-time bookings for dozens of buyers is a
    fan-out like any other."""

    def __init__(self, entity_type: str, patients: int, seconds: int,
                 platform: Platform, per_account: float | None = None) -> None:
        if entity_type not in _TACTICS:
            raise ValueError(f"no fan-out per {entity_type}")
        self.entity_type = entity_type
        self.name = "payer_fanout" if entity_type == "payer" else f"fanout_{entity_type}"
        self.tactics = _TACTICS[entity_type]
        self.kinds = frozenset({"booking.paid"}) if entity_type == "payer" else _ACTIONS
        self.patients = patients
        self.quiet_below = patients
        self.platform = platform
        self.window = Window(self.name, seconds)
        self.per_account = per_account
        self.accounts = Window(f"{self.name}_accounts", seconds)
        self.title = (f"one {entity_type} acting for many patients" if entity_type != "payer"
                      else "one payer paying for many patients")

    def windows(self) -> Sequence[Window]:
        return (self.window, self.accounts) if self.per_account else (self.window,)

    def thresholds(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"patients": self.patients,
                                   "window_s": self.window.seconds}
        if self.per_account:
            figures["patients_per_account"] = self.per_account
        return figures

    def _key(self, event: MonitorEvent) -> str | None:
        return getattr(event, self.entity_type)  # type: ignore[no-any-return]

    def plan(self, event: MonitorEvent, ops: list[Op]) -> bool:
        key = self._key(event)
        if key is None or event.patient is None:
            return False
        if self.entity_type != "payer" and self.platform.owns(event):
            return False
        ops.append((ADD, self.window, key, event.patient, event.ts, self.patients))
        if self.per_account:
            ops.append((ADD, self.accounts, key, event.account or "", event.ts, 0))
        return True

    def judge(self, event: MonitorEvent, results: Sequence[Any], start: int,
              out: list[Finding]) -> None:
        count, members = counted(results[start])
        if count < self.patients:
            return
        figures: dict[str, Any] = {"patients": count, "window_s": self.window.seconds,
                                   "threshold": self.patients}
        if self.per_account:
            accounts = int(results[start + 1])
            if count < self.per_account * accounts:
                return
            figures["accounts"] = accounts
        key = self._key(event)
        assert key is not None
        related = (Entity("account", event.account),) if event.account and \
            self.entity_type != "account" else ()
        out.append(Finding(
            self.name, graded(count, self.patients, high=3.0), Entity(self.entity_type, key),
            f"{self.entity_type} {key} acted for {count} distinct patients in "
            f"{span(self.window.seconds)} "
            f"(threshold {self.patients})" + (
                f" from {figures['accounts']} account(s)" if "accounts" in figures else ""),
            figures, event, related=related, members=members))
