"""The guard's rules as data: route groups, guard levels, and the default limit table.

Every limit here is far above what a person does by hand (a patient books a handful of
times a day, searches a few dozen times); they are set where automation starts. Operators
override single entries with ``FAIRSLOT_GUARD_LIMITS`` (see docs/guard.md) rather than by
editing code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import limits

__all__ = [
    "DEFAULT_LIMITS",
    "LEVEL_RULES",
    "GroupPolicy",
    "GuardLevel",
    "KeyKind",
    "LevelRule",
    "PowMode",
    "RouteGroup",
    "build_policies",
]


class RouteGroup(enum.StrEnum):
    BROWSING = "browsing"
    SEARCH = "search"
    LOGIN = "login"
    REGISTRATION = "registration"
    SCREENS = "screens"
    """Screens that issue an action token: the booking screen, the order (payment) page,
    a booking's page with its cancel button."""
    ENTERING = "entering"
    BOOKING = "booking"
    PAYMENT = "payment"


class GuardLevel(enum.StrEnum):
    NORMAL = "normal"
    ELEVATED = "elevated"
    UNDER_ATTACK = "under_attack"


class KeyKind(enum.StrEnum):
    """What a limit counts by. ``ip`` is the IPv4 address or IPv6 /64; ``prefix`` the IPv4
    /24 or IPv6 /48; the others are identifiers the route supplies."""

    IP = "ip"
    PREFIX = "prefix"
    ACCOUNT = "account"
    DEVICE = "device"
    PATIENT = "patient"
    PAYER = "payer"


class PowMode(enum.StrEnum):
    NEVER = "never"
    RISKY = "risky"
    """Only requesters with a risk score of at least one solve a challenge."""
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class LevelRule:
    cost: int
    """Each request counts this many times against every limit: a level halves or quarters
    the limits without starting new counters."""
    pow: PowMode
    difficulty_factor: int


LEVEL_RULES: Mapping[GuardLevel, LevelRule] = {
    GuardLevel.NORMAL: LevelRule(cost=1, pow=PowMode.NEVER, difficulty_factor=1),
    GuardLevel.ELEVATED: LevelRule(cost=2, pow=PowMode.RISKY, difficulty_factor=2),
    GuardLevel.UNDER_ATTACK: LevelRule(cost=4, pow=PowMode.ALWAYS, difficulty_factor=4),
}

# group -> key -> "limit[;limit...]" in the `limits` notation. Keys absent from a group are
# not limited there (the route need not supply them).
DEFAULT_LIMITS: Mapping[RouteGroup, Mapping[KeyKind, str]] = {
    RouteGroup.BROWSING: {
        KeyKind.IP: "600/minute",
        KeyKind.PREFIX: "3000/minute",
        KeyKind.DEVICE: "300/minute",
    },
    RouteGroup.SEARCH: {
        KeyKind.IP: "120/minute",
        KeyKind.PREFIX: "600/minute",
        KeyKind.DEVICE: "60/minute",
        KeyKind.ACCOUNT: "60/minute",
    },
    RouteGroup.LOGIN: {
        KeyKind.IP: "20/minute;200/day",
        KeyKind.PREFIX: "100/minute",
        KeyKind.DEVICE: "20/minute",
        KeyKind.ACCOUNT: "10/minute;50/day",
    },
    RouteGroup.REGISTRATION: {
        KeyKind.IP: "10/hour;30/day",
        KeyKind.PREFIX: "40/hour",
        KeyKind.DEVICE: "5/day",
    },
    # A person opens a booking or payment screen a few times per booking; a bot collecting
    # tokens opens dozens in a burst. The account and device limits stop a burst after ten.
    RouteGroup.SCREENS: {
        KeyKind.IP: "30/minute;600/day",
        KeyKind.PREFIX: "150/minute",
        KeyKind.DEVICE: "10/minute",
        KeyKind.ACCOUNT: "10/minute;120/day",
        KeyKind.PATIENT: "10/minute",
    },
    RouteGroup.ENTERING: {
        KeyKind.IP: "30/minute;300/day",
        KeyKind.PREFIX: "150/minute",
        KeyKind.DEVICE: "20/minute",
        KeyKind.ACCOUNT: "20/minute;100/day",
        KeyKind.PATIENT: "10/minute;60/day",
    },
    RouteGroup.BOOKING: {
        KeyKind.IP: "20/minute;300/day",
        KeyKind.PREFIX: "100/minute",
        KeyKind.DEVICE: "12/minute",
        KeyKind.ACCOUNT: "12/minute;100/day",
        KeyKind.PATIENT: "8/minute;50/day",
    },
    RouteGroup.PAYMENT: {
        KeyKind.IP: "30/minute",
        KeyKind.PREFIX: "150/minute",
        KeyKind.DEVICE: "20/minute",
        KeyKind.ACCOUNT: "12/minute;100/day",
        KeyKind.PAYER: "10/hour;40/day",
    },
}

# Groups whose requests may be asked to solve a proof of work. Page views and screens are
# not: a GET of a page cannot carry a solution (the action the screen leads to is checked).
CHALLENGEABLE: frozenset[RouteGroup] = frozenset(RouteGroup) - {RouteGroup.BROWSING,
                                                                RouteGroup.SCREENS}

# The load shedder's tiers: browsing goes first, what a patient is in the middle of last.
SHED_TIER: Mapping[RouteGroup, int] = {
    RouteGroup.BROWSING: 0,
    RouteGroup.SEARCH: 1,
    RouteGroup.LOGIN: 1,
    RouteGroup.REGISTRATION: 1,
    RouteGroup.SCREENS: 2,
    RouteGroup.ENTERING: 2,
    RouteGroup.BOOKING: 2,
    RouteGroup.PAYMENT: 2,
}


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    group: RouteGroup
    limits: tuple[tuple[KeyKind, limits.RateLimitItem], ...]
    challengeable: bool
    shed_tier: int


def build_policies(
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    *,
    login_attempts_per_minute: int | None = None,
) -> dict[RouteGroup, GroupPolicy]:
    """The effective table: defaults with ``overrides`` laid over them, limits parsed.

    ``login_attempts_per_minute`` (``FAIRSLOT_LOGIN_ATTEMPTS_PER_MINUTE``) replaces the
    per-minute part of the log-in limit per account; an override of ``login``/``account``
    in ``overrides`` replaces the whole entry and wins. An override of ``""`` or ``"none"``
    removes that key's limit for the group. Unknown group or key names are an error, so a
    typo in the environment fails at start-up.
    """
    table: dict[RouteGroup, dict[KeyKind, str]] = {
        group: dict(keys) for group, keys in DEFAULT_LIMITS.items()
    }
    if login_attempts_per_minute is not None:
        if login_attempts_per_minute < 1:
            raise ValueError("login_attempts_per_minute must be at least 1")
        table[RouteGroup.LOGIN][KeyKind.ACCOUNT] = f"{login_attempts_per_minute}/minute;50/day"
    for group_name, keys in (overrides or {}).items():
        group = RouteGroup(group_name)
        for key_name, spec in keys.items():
            kind = KeyKind(key_name)
            if spec.strip().lower() in {"", "none"}:
                table[group].pop(kind, None)
            else:
                table[group][kind] = spec
    policies: dict[RouteGroup, GroupPolicy] = {}
    for group, group_limits in table.items():
        items = tuple(
            (kind, item) for kind, spec in group_limits.items()
            for item in limits.parse_many(spec)
        )
        policies[group] = GroupPolicy(
            group=group,
            limits=items,
            challengeable=group in CHALLENGEABLE,
            shed_tier=SHED_TIER[group],
        )
    return policies
