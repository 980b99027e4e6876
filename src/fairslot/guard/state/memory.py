"""The guard's state in this process: for embedded mode (no Redis) and for the time Redis
is unreachable. Every expiry is judged on the injected clock; expired entries are dropped
lazily and by a sweep every ten seconds of that clock."""

from __future__ import annotations

from fairslot.clock import Clock
from fairslot.guard.state.types import Admission, LoginRecord, WindowHit
from fairslot.guard.windows import Hit, MovingWindows

__all__ = ["MemoryState"]

_SWEEP_SECONDS = 10.0


class MemoryState:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.windows = MovingWindows(clock)
        self._sets: dict[str, tuple[set[str], float]] = {}
        self._slots: dict[str, tuple[str, float]] = {}
        self._failures: dict[str, tuple[int, float, float]] = {}
        """scope -> (failures, last failure, forgotten at), epoch seconds."""
        self._known: dict[str, float] = {}
        """(account, device) -> known until, epoch seconds."""
        self.levels: dict[str, str] = {}
        self.decisions: dict[str, str] = {}
        """Decision id -> its JSON record (``fairslot.guard.decisions``)."""
        self.decisions_version = 0
        self._next_sweep = 0.0

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_SECONDS
        self._sets = {k: v for k, v in self._sets.items() if v[1] > now}
        self._slots = {k: v for k, v in self._slots.items() if v[1] > now}
        self._failures = {k: v for k, v in self._failures.items() if v[2] > now}
        self._known = {k: v for k, v in self._known.items() if v > now}

    # -- limits, device sets, slots -------------------------------------------------------

    def admit(self, hits: list[Hit], member: tuple[str, str, float] | None,
              slot: tuple[str, str, float] | None) -> Admission:
        refused = self.windows.admit(hits)
        if refused is not None:
            return Admission(refused, None, False, False)
        size = self.add_member(*member) if member is not None else None
        busy = slot is not None and not self.acquire(*slot)
        return Admission(None, size, busy, False)

    def window(self, hit: Hit) -> WindowHit:
        remaining, reset_in = self.windows.remaining(hit[0], hit[1])
        return WindowHit(remaining, reset_in)

    def add_member(self, key: str, member: str, ttl: float) -> int:
        now = self._now()
        self._sweep(now)
        members, expires = self._sets.get(key, (set(), 0.0))
        if expires <= now:
            members = set()
        members.add(member)
        self._sets[key] = (members, now + ttl)
        return len(members)

    def acquire(self, key: str, owner: str, ttl: float) -> bool:
        now = self._now()
        held = self._slots.get(key)
        if held is not None and held[1] > now:
            return False
        self._slots[key] = (owner, now + ttl)
        return True

    def release(self, key: str, owner: str) -> None:
        held = self._slots.get(key)
        if held is not None and held[0] == owner:
            del self._slots[key]

    # -- log-in failures ------------------------------------------------------------------

    def login_record(self, scope: str, pair: str | None) -> LoginRecord:
        now = self._now()
        self._sweep(now)
        known = pair is not None and self._known.get(pair, 0.0) > now
        failures, last, until = self._failures.get(pair if known and pair else scope,
                                                   (0, 0.0, 0.0))
        if until <= now:
            failures, last = 0, 0.0
        return LoginRecord(failures, last, known)

    def login_failed(self, scope: str, forget_after: float) -> None:
        now = self._now()
        failures, _, until = self._failures.get(scope, (0, 0.0, 0.0))
        if until <= now:
            failures = 0
        self._failures[scope] = (failures + 1, now, now + forget_after)

    def login_succeeded(self, scope: str, pair: str | None, known_for: float) -> None:
        self._failures.pop(scope, None)
        if pair is not None:
            self._known[pair] = self._now() + known_for

