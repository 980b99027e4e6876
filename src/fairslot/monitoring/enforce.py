"""The monitor's decisions, enforced by the guard.

``GuardDecisionSink`` hands each decision the monitor (or an operator) makes to the guard's
decision book (``fairslot.guard.decisions``): in production the book lives in Redis and
every web worker reloads it within a second; in embedded mode it is the server process's
own book. The mapping:

- ``block`` -> the guard's ``block`` (requests refused until the decision ends);
- ``require_pow`` -> ``challenge`` at ``elevated`` (proof of work on every challengeable
  request of the entity);
- ``raise_level=LEVEL`` -> ``challenge`` at that level;
- ``hold_bookings`` -> the guard's ``hold`` (requests pass; the pass names the hold).

The guard keys requests by IP address, IPv4 /24 or IPv6 /48, device, account, patient and
payer. A decision on another kind of entity (a phone's blind index, a session, a route
group) is kept in the monitor's store only and logged once as not enforceable by the
guard; so is a payer, which the monitor knows only by its blind index. Each guard record's
id is ``monitor-<decision id>``, so applying the same decision twice replaces it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from fairslot.clock import Clock
from fairslot.config import Settings
from fairslot.guard.decisions import DecisionBook, DecisionKind
from fairslot.guard.keys import GuardKeys
from fairslot.guard.policy import GuardLevel, KeyKind
from fairslot.guard.state import SharedState
from fairslot.monitoring.decisions import Decision
from fairslot.randomness import SystemRandomness

__all__ = ["GuardDecisionSink", "guard_record_id", "standalone_guard_sink"]

_log = logging.getLogger("fairslot.monitoring.enforce")

_KINDS = {"account": KeyKind.ACCOUNT, "patient": KeyKind.PATIENT, "device": KeyKind.DEVICE,
          "ip": KeyKind.IP, "ip_prefix": KeyKind.PREFIX}


def guard_record_id(decision: Decision) -> str:
    return f"monitor-{decision.id}"


class GuardDecisionSink:
    """Applies and lifts decisions in the guard's book. The book's calls are coroutines;
    this sink runs them on an event loop of its own (one at a time), so the monitor's
    thread and an operator's request thread can both call it. Failures are logged, never
    raised: the decision stays in the monitor's store and is applied again when the
    monitor restarts (``reapply``)."""

    def __init__(self, book: DecisionBook, clock: Clock, *,
                 state: SharedState | None = None) -> None:
        self.book = book
        self.clock = clock
        self._state = state
        """The book's state when this sink made it (closed with the sink)."""
        self._lock = threading.Lock()
        self._runner: asyncio.Runner | None = None
        self._unenforceable: set[str] = set()
        self.applied = 0
        self.failed = 0

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one of the book's coroutines to the end. Never from a thread that runs an
        event loop (the server's): call it from a worker thread there."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError("GuardDecisionSink is called from an event loop's thread")
        with self._lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coro)

    def close(self) -> None:
        if self._state is not None and self._runner is not None:
            try:
                self._run(self._state.close())
            except Exception as exc:
                _log.debug("closing the guard state failed (%s)", type(exc).__name__)
        with self._lock:
            if self._runner is not None:
                self._runner.close()
                self._runner = None

    def _target(self, decision: Decision) -> KeyKind | None:
        kind = _KINDS.get(decision.entity.type)
        if kind is None and decision.entity.type not in self._unenforceable:
            self._unenforceable.add(decision.entity.type)
            _log.info("decisions on %s entities are recorded, not enforced by the guard",
                      decision.entity.type)
        return kind

    def apply(self, decision: Decision) -> None:
        if decision.id is None:
            raise ValueError("a decision reaches the guard after the store gave it an id")
        kind = self._target(decision)
        if kind is None or not decision.active(self.clock.now()):
            return
        level: GuardLevel | None = None
        if decision.action == "block":
            action = DecisionKind.BLOCK
        elif decision.action == "hold_bookings":
            action = DecisionKind.HOLD
        elif decision.action == "require_pow":
            action, level = DecisionKind.CHALLENGE, GuardLevel.ELEVATED
        elif decision.action == "raise_level":
            action, level = DecisionKind.CHALLENGE, GuardLevel(decision.param or "elevated")
        else:
            return
        lifetime = decision.expires_at - self.clock.now()
        if lifetime <= dt.timedelta(0):
            return
        try:
            self._run(self.book.apply(
                action, kind, decision.entity.id, lifetime=lifetime,
                reason=decision.scenario or "operator", level=level,
                decision_id=guard_record_id(decision)))
            self.applied += 1
        except Exception as exc:
            self.failed += 1
            _log.warning("decision %s could not reach the guard (%s: %s)", decision.id,
                         type(exc).__name__, exc)

    def lift(self, decision: Decision) -> None:
        if decision.id is None or decision.entity.type not in _KINDS:
            return
        try:
            self._run(self.book.lift(guard_record_id(decision)))
        except Exception as exc:
            self.failed += 1
            _log.warning("lifting decision %s in the guard failed (%s)", decision.id,
                         type(exc).__name__)

    def reapply(self, decisions: list[Decision]) -> int:
        """Apply decisions in force (from the store, at start-up); returns how many."""
        before = self.applied
        for decision in decisions:
            self.apply(decision)
        return self.applied - before


def standalone_guard_sink(settings: Settings, clock: Clock) -> GuardDecisionSink | None:
    """For a process without a guard of its own (``fairslot monitor``, the CLI's ``decide``
    and ``lift``): the guard's decision book in the shared Redis every web worker reads, or
    None when no Redis is configured (embedded mode: only the server's own guard can
    enforce, and it reloads active decisions from the database when it starts)."""
    if not settings.redis_url:
        return None
    state = SharedState(settings.redis_url, settings.guard_redis_prefix,
                        settings.guard_redis_retry_seconds, clock)
    book = DecisionBook(state, GuardKeys(settings.secret_bytes()), clock, SystemRandomness())
    return GuardDecisionSink(book, clock, state=state)
