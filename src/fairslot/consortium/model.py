"""What the consortium shares and decides, as plain values: the kinds of entries, the
identifiers an entry can name, an entry's state, the policy a hospital sets per kind, and
the ``Match`` a look-up returns. Pure: no I/O, no clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from fairslot.domain.errors import InvalidInput

__all__ = [
    "DEFAULT_POLICY",
    "Action",
    "Entry",
    "EntryKind",
    "Match",
    "Policy",
    "RingRole",
    "SubjectType",
    "check_member_code",
]


class EntryKind(StrEnum):
    NO_SHOW_SUSPENSION = "no_show_suspension"
    """The issuer suspended this patient for repeated no-shows (its credit rule)."""
    RING_MEMBER = "ring_member"
    """An investigator at the issuer confirmed this identifier as part of a scalper ring;
    the entry's ``role`` says which part it played."""


class RingRole(StrEnum):
    """The role an investigation gives a ring's identifier (docs/investigation.md)."""

    MEMBER = "member"
    PAYMENT_HUB = "payment_hub"
    PAYER = "payer"
    HOLDER = "holder"
    BOOKER = "booker"
    HELD_IDENTITY = "held_identity"
    BOOKED_IDENTITY = "booked_identity"
    BUYER = "buyer"


class SubjectType(StrEnum):
    IDENTITY = "identity"
    PHONE = "phone"
    PAYER = "payer"
    DEVICE = "device"


class Action(StrEnum):
    """What a hospital does when one of its patients matches an entry of a kind."""

    REFUSE = "refuse"
    HOLD = "hold"
    """Let the request wait for a member of staff to review it."""
    LOWER_QUOTA = "lower_quota"
    IGNORE = "ignore"


# A hospital that has not decided yet refuses nothing on another hospital's word: ring
# members are held for review and suspensions are ignored until the operator says otherwise.
DEFAULT_POLICY: dict[str, Action] = {
    EntryKind.RING_MEMBER.value: Action.HOLD,
    EntryKind.NO_SHOW_SUSPENSION.value: Action.IGNORE,
}


@dataclass(frozen=True, slots=True)
class Policy:
    """Actions keyed by ``kind`` or, more specifically, ``kind:role``."""

    actions: dict[str, Action]

    @staticmethod
    def key(kind: EntryKind, role: RingRole | None = None) -> str:
        return kind.value if role is None else f"{kind.value}:{role.value}"

    @staticmethod
    def parse_key(text: str) -> str:
        kind, _, role = text.partition(":")
        try:
            EntryKind(kind)
            if role:
                RingRole(role)
        except ValueError:
            kinds = ", ".join(k.value for k in EntryKind)
            roles = ", ".join(r.value for r in RingRole)
            raise InvalidInput(f"{text!r} is not a kind ({kinds}) or kind:role "
                               f"(roles: {roles})", code="consortium_bad_kind") from None
        return text

    def action(self, kind: EntryKind, role: RingRole | None) -> Action:
        if role is not None and (found := self.actions.get(self.key(kind, role))):
            return found
        return self.actions.get(kind.value) or DEFAULT_POLICY.get(kind.value, Action.HOLD)


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry as it travels in a feed: a pseudonym and what the issuer says about it.
    ``entry_no`` is the issuer's own number for it; ``(issuer, entry_no)`` is its identity
    everywhere. Each change of an entry (re-keying, withdrawal) raises ``version``."""

    issuer: str
    entry_no: int
    version: int
    kind: EntryKind
    role: RingRole | None
    severity: int
    starts_at: dt.datetime
    expires_at: dt.datetime
    subject_type: SubjectType
    pseudonym: str
    epoch: int
    withdrawn: bool = False

    @property
    def ref(self) -> str:
        return f"{self.issuer}/{self.entry_no}"

    def in_force(self, now: dt.datetime) -> bool:
        return not self.withdrawn and self.starts_at <= now < self.expires_at


@dataclass(frozen=True, slots=True)
class Match:
    """An entry in force that names one of the identifiers looked up, and what this
    hospital's policy does about it. Carries no evidence: only what the issuer published."""

    issuer: str
    entry_no: int
    kind: EntryKind
    role: RingRole | None
    severity: int
    starts_at: dt.datetime
    expires_at: dt.datetime
    subject_type: SubjectType
    action: Action

    @property
    def ref(self) -> str:
        return f"{self.issuer}/{self.entry_no}"


def check_member_code(code: str) -> str:
    """A member's code names it in feeds and URLs: 2-32 of a-z, 0-9 and '-'."""
    ok = 2 <= len(code) <= 32 and all(c.isascii() and (c.isalnum() or c == "-")
                                       for c in code) and code == code.lower()
    if not ok or code.startswith("-"):
        raise InvalidInput(f"member code {code!r}: use 2-32 lower-case letters, digits or '-'",
                           code="consortium_bad_member")
    return code
