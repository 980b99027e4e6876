"""What the guard's state operations answer, the same whether Redis or memory answered."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Admission", "LoginRecord", "WindowHit"]


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of admitting one request."""

    refused: int | None
    """Index of the first limit without room (nothing was consumed), or None."""
    device_accounts: int | None
    """Size of the device's set of accounts after adding this one, when asked."""
    busy: bool
    """The one-at-a-time slot was asked for and another request holds it."""
    on_redis: bool
    """Where the slot (if any) was taken, so that it is released in the same place."""
    spent: bool | None = None
    """With a spend asked of Redis: True if this request spent the name (an action token),
    False if it was spent before; None when not asked, or memory answered."""


@dataclass(frozen=True, slots=True)
class WindowHit:
    """One limit's state, for the refusal headers."""

    remaining: int
    reset_in: float
    """Seconds until the limit has room again."""


@dataclass(frozen=True, slots=True)
class LoginRecord:
    """Failed log-ins of one scope (an account from unknown devices, or an account on one
    device it has signed in from before)."""

    failures: int
    last_failure: float
    """When the latest failure happened (seconds since the epoch), 0 if none."""
    known_device: bool
    """The device has signed in to this account successfully before."""
