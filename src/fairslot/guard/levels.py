"""Guard levels per route group, switched at run time and shared through Redis.

Every worker reads the levels at most once a second (on the injected clock), so a switch
reaches all of them within a second without costing a round trip per request.
"""

from __future__ import annotations

import math

from fairslot.clock import Clock
from fairslot.guard.policy import GuardLevel, RouteGroup
from fairslot.guard.state import SharedState

__all__ = ["CACHE_SECONDS", "LevelBook"]

CACHE_SECONDS = 1.0


class LevelBook:
    def __init__(self, state: SharedState, clock: Clock, default: GuardLevel) -> None:
        self._state = state
        self._clock = clock
        self.default = default
        self._raw: dict[str, str] = {}
        self._read_at = -math.inf
        self._parsed: dict[RouteGroup, GuardLevel] | None = None

    async def all(self) -> dict[RouteGroup, GuardLevel]:
        """The level of every group (read again when the last read is a second old)."""
        now = self._clock.monotonic()
        if now - self._read_at >= CACHE_SECONDS:
            self._raw = await self._state.get_levels()
            self._read_at = now
            self._parsed = None
        if self._parsed is None:
            parsed: dict[RouteGroup, GuardLevel] = {}
            for group in RouteGroup:
                try:
                    parsed[group] = GuardLevel(self._raw.get(group.value, self.default))
                except ValueError:
                    parsed[group] = self.default
            self._parsed = parsed
        return self._parsed

    async def of(self, group: RouteGroup | str) -> GuardLevel:
        return (await self.all())[RouteGroup(group)]

    async def set(self, group: RouteGroup | str, level: GuardLevel | str) -> bool:
        """Switch a group's level. True when stored in Redis (every worker follows within a
        second); False when only this process holds it (no Redis, or Redis down)."""
        group, level = RouteGroup(group), GuardLevel(level)
        shared = await self._state.set_level(group.value, level.value)
        self._raw[group.value] = level.value
        self._read_at = self._clock.monotonic()
        self._parsed = None
        return shared
