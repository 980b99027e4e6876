"""Who is asking, as the guard sees it, and what an allowed request carries onward."""

from __future__ import annotations

from dataclasses import dataclass

from fairslot.guard.policy import GuardLevel, RouteGroup

__all__ = ["GuardPass", "Requester"]


@dataclass(frozen=True, slots=True)
class Requester:
    """What the middleware learned about a request before any route ran."""

    client_ip: str
    device_id: str | None = None
    """A device the server minted and the client sent back, or None: no device (a risk,
    and its device-keyed limits are counted by the IP prefix)."""
    device_new: bool = False
    """The device was minted a short while ago (``guard_device_young_seconds``)."""


@dataclass(frozen=True, slots=True)
class GuardPass:
    """An allowed request: what the guard knew when it let it through."""

    group: RouteGroup
    level: GuardLevel
    risk: int
    client_ip: str
    device_accounts: int | None
    hold: tuple[str, str, bool] | None = None
    """The account's one-at-a-time slot (name, owner, on Redis) while ``exclusive``; give
    it back with ``Guard.release``."""
    held_for_review: tuple[str, ...] = ()
    """Ids of active hold-for-review decisions on this requester (an account, patient,
    payer, device or address of it). The guard lets the request through; the service must
    not confirm what it creates until an investigator approves."""
    screen_age_s: float | None = None
    """For a route that needs an action token: seconds from its screen (the token's issue)
    to this request. The services publish it for monitoring's screen-to-action timing."""
