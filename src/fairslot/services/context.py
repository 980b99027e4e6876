"""What the server knows about the request behind an action (never what the client claims)."""

from __future__ import annotations

import dataclasses

from fairslot.domain.booking import Channel

__all__ = ["RequestContext"]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str | None = None
    device_id: str | None = None
    channel: Channel = Channel.WEB
    held_for_review: tuple[str, ...] = ()
    """The guard's hold-for-review decisions on this request (from monitoring): a booking
    made under one waits for an investigator before it can be paid."""
    screen_age_s: float | None = None
    """Seconds from the screen that led to this action (its action token) to the action,
    when the guard checked one: monitoring's screen-to-action timing."""

    def event_fields(self) -> dict[str, str | None]:
        return {"ip": self.ip, "device_id": self.device_id}

    def timing(self) -> dict[str, float]:
        """The detail an action's event carries about its screen (nothing without one)."""
        if self.screen_age_s is None:
            return {}
        return {"screen_age_s": round(self.screen_age_s, 3)}


SYSTEM = RequestContext(channel=Channel.WEB)
